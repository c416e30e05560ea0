#!/usr/bin/env python3
"""Runs scripts/hakmem-triage on one workload and checks what it reports.

  check_triage.py --triage SCRIPT --keep DIR --expect TC1 TC2 TC3 CHECKED
                  --decision PREFIX [--workload-config] -- CMD ARGS...

Each expected result is pass, hang, crash (any signal), crash (SIGxxx) or fail (exit N).
Checks: the exit status (0 when all pass, else 1), the four Result lines in their sections,
the first line of the Decision section, the artifacts (four logs, env.txt, summary.txt, and
for a failure gdb_bt.txt with a frame #0, shown in the GDB section too). --workload-config
also checks that each log begins with the configuration tests/triage/workload.c printed, so
that each run really preloaded the library of its configuration.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

from checklib import check, finish

SECTIONS = ["TC1 (Headerless OFF)", "TC2 (Headerless ON, hint OFF)",
            "TC3 (Headerless ON, hint ON)", "CHECKED"]
LOGS = ["tc1.log", "tc2.log", "tc3.log", "checked.log"]
# What workload.c prints first in each configuration: headerless, tls_hint.
WORKLOAD_CONFIG = ["headerless=0 tls_hint=0", "headerless=1 tls_hint=0",
                   "headerless=1 tls_hint=1", "headerless=1 tls_hint=1"]


def sections(text):
    """Section title -> its lines, from the '=== title ===' headers."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.fullmatch(r"=== (.*) ===", line)
        if m:
            current = m.group(1)
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def result_matches(got, expected):
    if expected == "crash":
        return re.fullmatch(r"crash \(SIG[A-Z0-9]+\)", got) is not None
    return got == expected


def check_results(parts, expect):
    for title, want in zip(SECTIONS, expect):
        lines = parts.get(title)
        check(lines is not None, "no section '=== %s ==='" % title)
        if lines is None:
            continue
        results = [line[len("Result: "):] for line in lines if line.startswith("Result: ")]
        check(len(results) == 1, "%s: %d Result lines" % (title, len(results)))
        if results:
            check(result_matches(results[0], want),
                  "%s: Result: %s, expected %s" % (title, results[0], want))


def check_artifacts(keep, failing, decision, workload_config):
    for name in LOGS + ["env.txt", "summary.txt", "triage.txt"]:
        check(os.path.isfile(os.path.join(keep, name)), "artifact %s missing" % name)
    summary = read(os.path.join(keep, "summary.txt"))
    check(decision in summary, "summary.txt lacks the decision")
    check("git HEAD: " in read(os.path.join(keep, "env.txt")), "env.txt lacks the git HEAD")
    if failing:
        bt = read(os.path.join(keep, "gdb_bt.txt"))
        check(re.search(r"^#0 ", bt, re.M) is not None, "gdb_bt.txt has no frame #0")
    if workload_config:
        for log, want in zip(LOGS, WORKLOAD_CONFIG):
            first = read(os.path.join(keep, log)).splitlines()[:1]
            check(first and first[0].endswith("hakmem=1 " + want),
                  "%s begins %r, expected the configuration %r" % (log, first, want))


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triage", required=True)
    parser.add_argument("--keep", required=True)
    parser.add_argument("--expect", nargs=4, required=True)
    parser.add_argument("--decision", required=True)
    parser.add_argument("--workload-config", action="store_true")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd

    shutil.rmtree(args.keep, ignore_errors=True)
    run = subprocess.run([sys.executable, args.triage, "--no-build", "--timeout", "3",
                          "--keep", args.keep, "--"] + cmd,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True)
    print(run.stdout)
    print(run.stderr, file=sys.stderr)

    failing = any(e != "pass" for e in args.expect)
    check(run.returncode == (1 if failing else 0),
          "exit status %d, expected %d" % (run.returncode, 1 if failing else 0))
    parts = sections(run.stdout)
    check_results(parts, args.expect)
    decision = parts.get("Decision", [])
    check(decision[:1] and decision[0].startswith(args.decision),
          "Decision %r does not start with %r" % (decision[:1], args.decision))
    gdb = parts.get("GDB (first crash)", [])
    if failing:
        check(any(line.strip().startswith("#0 ") for line in gdb),
              "GDB section shows no frame #0")
    check(("Artifacts: " + os.path.abspath(args.keep)) in run.stdout,
          "the artifacts path is not printed")
    check_artifacts(args.keep, failing, args.decision, args.workload_config)

    return finish("triage")


if __name__ == "__main__":
    sys.exit(main())
