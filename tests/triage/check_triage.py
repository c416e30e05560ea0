#!/usr/bin/env python3
"""Runs scripts/hakmem-triage on one workload and checks what it reports.

  check_triage.py --triage SCRIPT --keep DIR --expect TC1 TC2 TC3 CHECKED
                  --decision PREFIX [--workload-config] -- CMD ARGS...

Each expected result is pass, hang, crash (any signal), crash (SIGxxx) or fail (exit N), and is
expected of every one of the default 3 runs: the Result line must read "<result> 3/3".
Checks: the exit status (0 when all pass, else 1), the four Result lines in their sections,
the first line of the Decision section, that a deterministic failure is not called
intermittent and gets no perturbed replay, the first failing run's crash report (a crash
prints one, a hang or an exit says it has none) and its GDB section (gdb on the run's own core
for a crash, unless triage says cores are off; a live re-run otherwise), the artifacts (each
configuration's first run's log, env.txt, summary.txt with the rates, and for a failure
gdb_bt.txt with a frame #0, shown in the GDB section too). --workload-config also checks that
each kept log begins with the configuration tests/triage/workload.c printed, so that each run
really preloaded the library of its configuration.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

from checklib import check, config_results, finish, read, section, sections

REPEAT = 3  # hakmem-triage's default --repeat
SECTIONS = ["TC1 (Headerless OFF)", "TC2 (Headerless ON, hint OFF)",
            "TC3 (Headerless ON, hint ON)", "CHECKED"]
KEYS = ["tc1", "tc2", "tc3", "checked"]
# What workload.c prints first in each configuration: headerless, tls_hint.
WORKLOAD_CONFIG = ["headerless=0 tls_hint=0", "headerless=1 tls_hint=0",
                   "headerless=1 tls_hint=1", "headerless=1 tls_hint=1"]
INTERMITTENT = "intermittent: "


def outcome_matches(got, expected):
    if expected == "crash":
        return re.fullmatch(r"crash \(SIG[A-Z0-9]+\)", got) is not None
    return got == expected


def check_results(parts, expect):
    """Every run of a configuration had the expected outcome."""
    results = config_results(parts, SECTIONS)
    for title, want in zip(SECTIONS, expect):
        got = results.get(title)
        if got is None:
            continue
        check(len(got) == 1 and outcome_matches(got[0][0], want) and
              got[0][1] == got[0][2] == REPEAT,
              "%s: Result %s, expected %s %d/%d" % (title, got, want, REPEAT, REPEAT))


def check_first_failure(parts, first, cores_off):
    """The crash report and GDB sections of the first failing run."""
    report = section(parts, "CRASH REPORT") or []
    gdb = section(parts, "GDB") or []
    check(any(line.strip().startswith("#0 ") for line in gdb), "GDB section shows no frame #0")
    if first.startswith("crash"):
        check(any(line.strip().startswith("hakmem: crash report: SIG") for line in report) and
              any(line.strip().startswith("hakmem: crash report end: ") for line in report),
              "the CRASH REPORT section lacks the report's first or end line: %s" % report[:3])
        check(cores_off or gdb[:1] and gdb[0].startswith("From the core of the failing run"),
              "GDB did not read the failing run's core: %s" % gdb[:1])
    else:
        check(report[:1] and report[0].startswith("no crash report (the run ended by "),
              "the CRASH REPORT section does not say there is none: %s" % report[:1])
        check(gdb[:1] and gdb[0].startswith("No core of"),
              "GDB is not a live re-run: %s" % gdb[:1])


def check_artifacts(keep, failing, decision, workload_config):
    for name in ["%s-1.log" % k for k in KEYS] + ["env.txt", "summary.txt", "triage.txt"]:
        check(os.path.isfile(os.path.join(keep, name)), "artifact %s missing" % name)
    summary = read(os.path.join(keep, "summary.txt"))
    check(decision in summary, "summary.txt lacks the decision")
    check(re.search(r"^%s: .* %d/%d " % (re.escape(SECTIONS[0]), REPEAT, REPEAT), summary,
                    re.M) is not None, "summary.txt lacks the rates of %s" % SECTIONS[0])
    check("git HEAD: " in read(os.path.join(keep, "env.txt")), "env.txt lacks the git HEAD")
    if failing:
        bt = read(os.path.join(keep, "gdb_bt.txt"))
        check(re.search(r"^#0 ", bt, re.M) is not None, "gdb_bt.txt has no frame #0")
    if workload_config:
        for key, want in zip(KEYS, WORKLOAD_CONFIG):
            for log in sorted(glob.glob(os.path.join(keep, key + "-*.log"))):
                first = read(log).splitlines()[:1]
                check(first and first[0].endswith("hakmem=1 " + want),
                      "%s begins %r, expected the configuration %r" % (log, first, want))


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

    first = next((e for e in args.expect if e != "pass"), None)
    check(run.returncode == (1 if first else 0),
          "exit status %d, expected %d" % (run.returncode, 1 if first else 0))
    parts = sections(run.stdout)
    check_results(parts, args.expect)
    decision = parts.get("Decision", [])
    check(decision[:1] and decision[0].startswith(args.decision),
          "Decision %r does not start with %r" % (decision[:1], args.decision))
    check(not any(line.startswith(INTERMITTENT) for line in decision),
          "a deterministic failure called intermittent: %s" % decision)
    perturbed = parts.get("PERTURBED REPLAY", [])
    check(perturbed[:1] and perturbed[0].startswith("skipped: "),
          "the perturbed replay ran on a deterministic outcome: %s" % perturbed[:1])
    if first:
        cores_off = re.search(r"; cores: off ", run.stdout) is not None
        check_first_failure(parts, first, cores_off)
    check(("Artifacts: " + os.path.abspath(args.keep)) in run.stdout,
          "the artifacts path is not printed")
    check_artifacts(args.keep, first is not None, args.decision, args.workload_config)

    return finish("triage")


if __name__ == "__main__":
    sys.exit(main())
