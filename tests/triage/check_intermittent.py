#!/usr/bin/env python3
"""Runs scripts/hakmem-triage on a planted race and checks that it is named as one.

  check_intermittent.py --triage SCRIPT --keep DIR --define VAR=VALUE [--repeat N]
                        [--timeout S] [--perturb-seeds N] -- CHURN

CHURN is tests/triage/churn.c (`churn SECONDS`); the libraries built with --define (the
fixture runs `hakmem-triage --build-only --define ...`) carry a race that crashes some runs
and not others. How often depends on the machine and its load, so the check first measures
it: it looks for the SECONDS that make about half of a few runs under the planted libraries
crash (with four configurations of five runs each, all twenty agree within their
configuration about once in 65,000 triages when each crashes half of its runs, once in 300
when each crashes a quarter or three quarters).

Checks: four Result lines of N runs each, at least one configuration failing with a crash,
the intermittent verdict (a configuration both passed and failed), the crash report of the
failing run naming the unmapped SuperSlab, gdb on that run's own core with hakmem's frames by
name, and the perturbed replay finding a failing seed with a command to reproduce it (while
the tree's hakmem-replay has no --perturb-search, its "skipped" line is accepted). A failure
prints the rates and the calibration.
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import time

from checklib import check, config_results, finish, read, section, sections

SECTIONS = ["TC1 (Headerless OFF)", "TC2 (Headerless ON, hint OFF)",
            "TC3 (Headerless ON, hint ON)", "CHECKED"]
LIBS = [("tc1-hdr", "libhakmem.so"), ("tc2-hdrless-nohint", "libhakmem.so"),
        ("tc3-hdrless-hint", "libhakmem.so"), ("checked", "libhakmem_checked.so")]
INTERMITTENT = ("intermittent: timing-dependent; suspect the cross-thread boxes (remote queue, "
                "ownership, publish/adopt); replay with perturbed schedules")
CAL_START = 0.05  # seconds of churn the calibration tries first
CAL_RUNS = 3  # per library and length tried
CAL_ROUNDS = 7
CAL_CLOSE = 0.15  # a share of crashing runs this close to one half is taken
CAL_MIN, CAL_MAX = 0.001, 20.0
# A frame of hakmem's in gdb's bt: "#0  hak_rq_free_mt (" or "#2  0x... in hak_free_remote_mt (".
HAK_FRAME = re.compile(r"^#\d+\s+(0x[0-9a-f]+ in )?hak_\w+ \(")


def crash_fraction(playbook, libs, churn, seconds, work):
    """The share of CAL_RUNS runs of `churn SECONDS` under each library that fail, run as
    triage runs them (recording a trace, which slows every call, and reporting the crash)."""
    log, trace = os.path.join(work, "calibrate.log"), os.path.join(work, "calibrate.trace")
    failed = 0
    for lib in libs:
        env = dict(os.environ, HAKMEM_TRACE=trace, HAKMEM_CRASH_REPORT="1", LD_PRELOAD=lib)
        for _ in range(CAL_RUNS):
            failed += playbook.run_limited([churn, "%g" % seconds], env, 60, log) != "pass"
            if os.path.exists(trace):
                os.unlink(trace)
    return failed / (CAL_RUNS * len(libs))


def calibrate(playbook, repo, defines, churn, work):
    """The seconds of churn that make about half of the runs crash, found by halving and
    doubling from CAL_START, then bisecting: the length decides less than one would think,
    as churn's end, when the last remote frees meet the trimmer, is its most racy part."""
    libs = [os.path.join(playbook.build_dir(repo, preset, defines), lib) for preset, lib in LIBS]
    tried, low, high = [], 0.0, None
    seconds = CAL_START
    for _ in range(CAL_ROUNDS):
        share = crash_fraction(playbook, libs, churn, seconds, work)
        tried.append((seconds, share))
        if abs(share - 0.5) <= CAL_CLOSE:
            break
        if share > 0.5:
            high = seconds
        else:
            low = seconds
        if high is None:
            seconds *= 2
        elif low == 0.0:
            seconds /= 2
        else:
            seconds = math.sqrt(low * high)
        if seconds < CAL_MIN or seconds > CAL_MAX:
            break
    best = min(tried, key=lambda t: abs(t[1] - 0.5))
    shown = ", ".join("churn %g: %.0f%%" % (s, 100 * f) for s, f in tried)
    return best[0], "calibration runs that crashed: " + shown


def run_triage(args, seconds):
    cmd = [sys.executable, args.triage, "--no-build", "--repeat", str(args.repeat),
           "--timeout", "%g" % args.timeout, "--perturb-seeds", str(args.perturb_seeds),
           "--keep", args.keep]
    for d in args.define:
        cmd += ["--define", d]
    cmd += ["--", args.churn, "%g" % seconds]
    print("+ " + " ".join(cmd), flush=True)
    clock = time.monotonic()
    run = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    print(run.stdout)
    print(run.stderr, file=sys.stderr)
    print("triage took %.0f s" % (time.monotonic() - clock))
    return run


def check_rates(parts, repeat, calibration):
    """The rates of every configuration; some crashed, some passed and failed alike."""
    results = config_results(parts, SECTIONS)
    shown = "; ".join("%s: %s" % (t, results.get(t)) for t in SECTIONS)
    for title, got in results.items():
        check(got is None or all(total == repeat for _, _, total in got),
              "%s: rates %s are not of %d runs" % (title, got, repeat))
    crashed = [t for t, got in results.items()
               if got and any(o.startswith("crash (") for o, _, _ in got)]
    check(crashed, "no configuration crashed (%s; %s)" % (shown, calibration))
    mixed = [t for t, got in results.items()
             if got and got[0][0] != "pass" and sum(n for _, n, _ in got) < repeat]
    check(mixed, "no configuration both passed and failed: no intermittent pattern to name "
                 "(%s; %s)" % (shown, calibration))
    return bool(mixed)


def check_report_and_gdb(parts):
    report = section(parts, "CRASH REPORT") or []
    check(any("unmapped SuperSlab" in line for line in report),
          "the crash report does not name the unmapped SuperSlab: %s" % report[:3])
    gdb = section(parts, "GDB") or []
    check(gdb[:1] and gdb[0].startswith("From the core of the failing run itself"),
          "GDB did not read the failing run's own core: %s" % gdb[:1])
    frames = [line.strip() for line in gdb if line.strip().startswith("#")]
    check(any(HAK_FRAME.search(f) for f in frames),
          "the core's backtrace names no hakmem function: %s" % frames[:6])


def perturb_available(repo):
    """Whether the tree's hakmem-replay has --perturb-search (from its source)."""
    return "--perturb-search" in read(os.path.join(repo, "tools", "replay", "main.c"))


def check_perturbed(parts, repo):
    lines = parts.get("PERTURBED REPLAY", [])
    if not perturb_available(repo):
        check(lines[:1] and lines[0].startswith("skipped: this hakmem-replay has no "
                                                 "--perturb-search"),
              "perturbed replay: expected the 'skipped' line of a tool without the search: %s"
              % lines[:2])
        print("note: hakmem-replay has no --perturb-search yet; its 'skipped' line accepted")
        return
    check(any(re.match(r"Result: seed \d+ fails \(", line) for line in lines),
          "the perturbed replay found no failing seed: %s" % lines[-6:])
    check(any(re.match(r"Reproduce: \S*hakmem-replay --perturb \d+ \S+", line)
              for line in lines), "the perturbed replay gives no command to reproduce")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triage", required=True)
    parser.add_argument("--keep", required=True)
    parser.add_argument("--define", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--perturb-seeds", type=int, default=200)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    args.churn = (args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd)[0]
    scripts = os.path.dirname(os.path.abspath(args.triage))
    sys.dont_write_bytecode = True  # no __pycache__ in scripts/
    sys.path.insert(0, scripts)
    import hakmem_playbook as playbook
    repo = os.path.dirname(scripts)

    shutil.rmtree(args.keep, ignore_errors=True)
    os.makedirs(args.keep)
    seconds, calibration = calibrate(playbook, repo, args.define, args.churn, args.keep)
    print("calibration: %s -> churn %g" % (calibration, seconds))
    run = run_triage(args, seconds)

    check(run.returncode == 1, "exit status %d, expected 1" % run.returncode)
    parts = sections(run.stdout)
    if check_rates(parts, args.repeat, calibration):
        decision = parts.get("Decision", [])
        check(decision[:1] == [INTERMITTENT],
              "Decision %r is not the intermittent verdict" % decision[:1])
    check_report_and_gdb(parts)
    check_perturbed(parts, repo)
    return finish("intermittent")


if __name__ == "__main__":
    sys.exit(main())
