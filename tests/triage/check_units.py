#!/usr/bin/env python3
"""check_units.py SCRIPTS_DIR: the parts of scripts/hakmem-triage that no workload reaches on
demand, checked on made-up runs: the decision on rates (intermittent, the modes, a pattern
that does not nest like the modes with one run and with several), the rates themselves, the
build folders of --define, the core method for each kind of core_pattern, gdb's thread
chatter, the crash report read from a log (its debug ring shortened, a report cut short) and
the run that speaks for a configuration. Prints `units check ok` at the end."""

import importlib.machinery
import importlib.util
import os
import sys
import tempfile

from checklib import check, finish

SEGV = "crash (SIGSEGV)"
KEYS = ["tc1", "tc2", "tc3", "checked"]


def load(scripts):
    sys.dont_write_bytecode = True
    sys.path.insert(0, scripts)
    loader = importlib.machinery.SourceFileLoader("triage", os.path.join(scripts,
                                                                         "hakmem-triage"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("triage", loader))
    loader.exec_module(module)
    return module


def config(t, key, results, reports=None):
    runs = [{"i": i + 1, "result": r, "log": None, "diagnostic": None,
             "report": (reports or {}).get(i + 1, "complete" if r != "pass" else "none")}
            for i, r in enumerate(results)]
    failed = any(r != "pass" for r in results)
    return {"key": key, "runs": runs, "result": t.playbook.rates(results), "failed": failed,
            "mixed": failed and "pass" in results}


def decision(t, pattern, repeat):
    """The decision lines for one outcome per configuration, repeated."""
    configs = [config(t, k, [r] * repeat) for k, r in zip(KEYS, pattern)]
    return t.decide(configs, [], repeat)


def check_decisions(t):
    mode = dict(t.DECISIONS)
    check(decision(t, ["pass"] * 4, 3) == [t.DECISION_ALL_PASS], "all pass")
    check(decision(t, ["pass", SEGV, SEGV, SEGV], 3) == [mode["tc2"]], "a nested pattern")
    lines = decision(t, ["pass", SEGV, "pass", "pass"], 1)
    check(lines[0] == mode["tc2"] and "run again with --repeat" in lines[1],
          "not monotone with one run: %s" % lines)
    lines = decision(t, ["pass", SEGV, "pass", "pass"], 3)
    check(lines[0] == mode["tc2"] and "every run agreed" in lines[1],
          "not monotone with every run agreeing: %s" % lines)
    configs = [config(t, "tc1", ["pass"] * 3), config(t, "tc2", ["pass", SEGV, "hang"]),
               config(t, "tc3", [SEGV] * 3), config(t, "checked", ["pass"] * 3)]
    lines = t.decide(configs, [], 3)
    check(lines[:1] == [t.DECISION_INTERMITTENT] and "TC2 crash (SIGSEGV) 1/3, hang 1/3" in
          lines[1], "intermittent: %s" % lines)


def check_rates(playbook):
    check(playbook.rates(["pass"] * 3) == "pass 3/3", "pass 3/3")
    got = playbook.rates(["pass", SEGV, "hang", SEGV, "pass"])
    check(got == "crash (SIGSEGV) 2/5, hang 1/5", "rates: %r" % got)


def check_build_dirs(playbook):
    plain = playbook.build_dir("/r", "tc1-hdr")
    check(plain == "/r/build/tc1-hdr", "plain build dir %r" % plain)
    planted = playbook.build_dir("/r", "tc1-hdr", ["HAKMEM_PLANT_BUG=remote_touch_after_push"])
    check(planted == "/r/build/tc1-hdr+HAKMEM_PLANT_BUG-remote_touch_after_push",
          "planted build dir %r" % planted)
    odd = [playbook.define_tag(d) for d in (["A=b c"], ["A=b_c"], ["A=x+B=y"], ["A=x", "B=y"])]
    check(len(set(odd)) == 4 and all("/" not in o and " " not in o for o in odd),
          "tags must differ and be plain: %s" % odd)


def check_core_methods(playbook):
    check(playbook.core_method("off") == ("off", "--cores off"), "--cores off")
    for pattern in ("core", "core.%e.%p", "/var/crash/core.%p"):
        method = playbook.core_method("auto", pattern)[0]
        check(method in ("kernel", "gcore"), "%r -> %s" % (pattern, method))
    method = playbook.core_method("auto", "|/usr/share/apport/apport -p%p -s%s %c")[0]
    check(method in ("gcore", "off"), "apport pipe -> %s" % method)
    method = playbook.core_method("auto", "|/lib/systemd/systemd-coredump %P %u %g")[0]
    check(method in ("coredumpctl", "gcore", "off"), "systemd-coredump -> %s" % method)


def check_gdb_chatter(playbook):
    lines = ["[New Thread 0x7f (LWP 12)]", "[New LWP 13]", "[Thread 0x7f (LWP 12) exited]",
             "[Thread debugging using libthread_db enabled]",
             'Using host libthread_db library "/lib/libthread_db.so.1".',
             "#0  hak_rq_free_mt (m=0x1) at remote_queue.c:65", "[Inferior 1 (process 9) exited]"]
    kept, dropped = playbook.without_gdb_chatter(lines)
    check(dropped == 5 and kept == lines[5:], "gdb chatter: kept %s" % kept)


REPORT = ["workload: start", "hakmem: crash report: SIGSEGV (SEGV_MAPERR) at 0x10 thread 7 ip=0x1",
          "hakmem: address 0x10: unmapped SuperSlab 0x0", "hakmem: debug ring (last events):"] + \
         ["hakmem:   ring[%d] rq 0x0 0x0" % i for i in range(10)] + \
         ["hakmem: crash report end: SIGSEGV re-raised"]


def check_crash_report(t, work):
    log = os.path.join(work, "run.log")
    with open(log, "w") as f:
        f.write("\n".join(REPORT) + "\n")
    lines = t.crash_report_lines(log)
    check(lines == REPORT[1:] and t.report_state(lines) == "complete", "report: %s" % lines)
    short = t.shorten_ring(lines, log)
    check(len([x for x in short if "ring[" in x]) == t.RING_SHOW and
          "4 earlier ring lines" in short[3], "ring shortened: %s" % short[:5])
    check(t.report_state(lines[:2]) == "cut short" and t.report_state([]) == "none",
          "report states")
    runs = config(t, "tc1", [SEGV, "pass", SEGV], {1: "cut short"})["runs"]
    check(t.lead_run(runs)["i"] == 3, "the lead run is the first with a whole report")
    runs = config(t, "tc1", [SEGV, "pass"], {1: "cut short"})["runs"]
    check(t.lead_run(runs)["i"] == 1, "without a whole report, the first failing run leads")


def main():
    t = load(os.path.abspath(sys.argv[1]))
    check_decisions(t)
    check_rates(t.playbook)
    check_build_dirs(t.playbook)
    check_core_methods(t.playbook)
    check_gdb_chatter(t.playbook)
    with tempfile.TemporaryDirectory() as work:
        check_crash_report(t, work)
    return finish("units")


if __name__ == "__main__":
    sys.exit(main())
