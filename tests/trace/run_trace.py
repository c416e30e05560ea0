#!/usr/bin/env python3
"""Trace tests: record with HAKMEM_TRACE, then check the trace with hakmem-replay.

usage: run_trace.py CASE --replay BIN --record BIN --work DIR [--fuzz BIN] [--lib SO]

Cases:
  roundtrip  the replay ends with the recording program's final counters
  crash      a program that aborts / segfaults leaves every call up to its death in the trace
  minimize   --minimize shrinks a double free among thousands of calls to < 50 calls that
             fail with the same diagnostic
  corpus     --to-corpus writes an alloc_ops input that replays without a finding and
             performs as many allocations as the trace holds
  fork       a forked child records into PATH.<pid>; an exec'ed child does not truncate PATH
  python     python3 under LD_PRELOAD with HAKMEM_TRACE replays clean
  perturb    --perturb SEED: one seed gives one schedule (identical --schedule-log files),
             another seed another; every call is replayed (counters); the watchdog ends a
             stalled schedule unscheduled and says so
  perturb_search
             --perturb-search finds no failing seed where there is no bug
  realloc_window
             a moving realloc, its thread parked after its free while another thread is
             handed the old address, is recorded before that allocation and replays clean
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(cmd, env=None, check=True, **kw):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        fail("%s exited %d\nstdout: %s\nstderr: %s" % (cmd, r.returncode, r.stdout, r.stderr[-3000:]))
    return r


def info(a, trace):
    out = run([a.replay, "--info", trace]).stdout
    return {k: v for k, v in (line.split(" ", 1) for line in out.splitlines())}


def dump(a, trace):
    """(op, size, thread) of every call, in order."""
    ops = []
    for line in run([a.replay, "--dump", trace]).stdout.splitlines():
        f = line.split()
        ops.append((f[2], int(f[3].split("=")[1]), int(f[1].split("=")[1])))
    return ops


def fresh(a, name):
    d = os.path.join(a.work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def case_roundtrip(a):
    d = fresh(a, "roundtrip")
    trace, rec, rep = (os.path.join(d, n) for n in ("trace", "recorded.stats", "replayed.stats"))
    run([a.record, "roundtrip", rec], env={"HAKMEM_TRACE": trace})
    i = info(a, trace)
    if int(i["threads"]) < 5 or int(i["thread_exits"]) < 4:
        fail("expected 5 threads and 4 thread exits in the trace: %s" % i)
    if int(i["foreign_frees"]) != 0:
        fail("frees of pointers the trace never allocated: %s" % i)
    run([a.replay, "--stats", rep, trace])
    want, got = open(rec).read(), open(rep).read()
    print(want)
    if int(re.search(r"remote_frees (\d+)", want).group(1)) == 0:
        fail("the recording made no remote frees: the test lost its point")
    if want != got:
        fail("replayed counters differ from the recorded ones:\n--- recorded\n%s--- replayed\n%s"
             % (want, got))
    print("roundtrip ok: %s calls, counters equal" % i["ops"])


def case_crash(a):
    for how, sig in (("abort", 6), ("segv", 11)):
        d = fresh(a, "crash_" + how)
        trace = os.path.join(d, "trace")
        r = run([a.record, "crash", how], env={"HAKMEM_TRACE": trace}, check=False)
        if r.returncode != -sig:
            fail("crash %s: expected signal %d, got %d" % (how, sig, r.returncode))
        ops = dump(a, trace)
        mine = [o for o in ops if o[0] == "malloc" and o[1] == 24]
        if len(mine) != 1000:
            fail("crash %s: %d of 1000 malloc(24) calls in the trace" % (how, len(mine)))
        frees = sum(1 for o in ops if o[0] == "free" and o[2] == mine[0][2])
        if frees < 500:
            fail("crash %s: %d of 500 frees in the trace" % (how, frees))
        if ops[-1][:2] != ("malloc", 4242):
            fail("crash %s: the last call before the crash is missing: %s" % (how, ops[-3:]))
        run([a.replay, trace])
        print("crash %s ok: %d calls up to the signal, replayed clean" % (how, len(ops)))


def case_minimize(a):
    d = fresh(a, "minimize")
    trace, small = os.path.join(d, "trace"), os.path.join(d, "min")
    env = {"HAKMEM_TRACE": trace, "ASAN_OPTIONS": "handle_abort=0:detect_leaks=0"}
    r = run([a.record, "doublefree"], env=env, check=False)
    if r.returncode != -6 or "hakmem: double free" not in r.stderr:
        fail("the recording should abort with a double free: %d %s" % (r.returncode, r.stderr))
    n = int(info(a, trace)["ops"])
    if n < 2000:
        fail("only %d calls recorded" % n)
    t0 = time.time()
    env.pop("HAKMEM_TRACE")  # hakmem-replay ignores it; replaying must not record
    r = run([a.replay, "--minimize", "-o", small, trace], env=env)
    print(r.stdout.strip(), "(%.1f s)" % (time.time() - t0))
    m = info(a, small)
    if int(m["ops"]) >= 50:
        fail("minimized trace has %s calls (>= 50)" % m["ops"])
    if int(m["double_frees"]) != 1:
        fail("minimized trace lost its double free: %s" % m)
    r = run([a.replay, small], env=env, check=False)
    if r.returncode != -6 or "hakmem: double free" not in r.stderr:
        fail("minimized trace does not fail the same way: %d %s" % (r.returncode, r.stderr))
    # A budget too small for the whole search: the best trace so far, still failing, and said so.
    cut = os.path.join(d, "cut")
    r = run([a.replay, "--minimize", "-o", cut, "--budget", "0.05", trace], env=env)
    if "budget ran out" not in r.stderr:
        fail("a 0.05 s budget did not run out: %s" % r.stderr)
    c = info(a, cut)
    if int(c["double_frees"]) != 1 or int(c["ops"]) > n:
        fail("the budget-limited trace is not a failing subset: %s" % c)
    r = run([a.replay, cut], env=env, check=False)
    if r.returncode != -6 or "hakmem: double free" not in r.stderr:
        fail("the budget-limited trace does not fail the same way: %d" % r.returncode)
    print("minimize ok: %d -> %s calls, still 'hakmem: double free'; with a 0.05 s budget %s"
          % (n, m["ops"], c["ops"]))


def decode_alloc_ops(data):
    """Counts the allocations an alloc_ops input performs (format: top of fuzz/alloc_ops.c),
    for the operations --to-corpus writes."""
    args = {0: 4, 1: 5, 2: 5, 3: 6, 4: 1, 5: 2, 6: 6, 7: 1, 11: 0}
    allocs = ops = i = 0
    while i < len(data):
        op = data[i] % 14
        if op not in args:
            fail("unexpected alloc_ops opcode %d at byte %d" % (op, i))
        if op in (0, 1, 2, 3, 6):  # --to-corpus writes no realloc of size 0 (that is a FREE)
            allocs += 1
        ops += 1
        i += 1 + args[op]
    return ops, allocs


def case_corpus(a):
    d = fresh(a, "corpus")
    trace, out = os.path.join(d, "trace"), os.path.join(d, "input")
    run([a.record, "small"], env={"HAKMEM_TRACE": trace})
    i = info(a, trace)
    r = run([a.replay, "--to-corpus", out, trace])
    print(r.stdout.strip())
    ops, allocs = decode_alloc_ops(open(out, "rb").read())
    if ops > 1024:
        fail("the input has %d operations, alloc_ops runs 1024" % ops)
    if allocs != int(i["allocs"]):
        fail("the input performs %d allocations, the trace holds %s" % (allocs, i["allocs"]))
    run([a.fuzz, out])
    print("corpus ok: %d operations, %d allocations, replayed by alloc_ops" % (ops, allocs))


def case_fork(a):
    d = fresh(a, "fork")
    trace = os.path.join(d, "trace")
    r = run([a.record, "fork", a.record], env={"HAKMEM_TRACE": trace})
    pids = dict(line.split() for line in r.stdout.split("\n") if line)
    parent = dump(a, trace)
    sizes = [o[1] for o in parent if o[0] == "malloc"]
    if sizes.count(1111) != 10 or sizes.count(3333) != 5 or 2222 in sizes:
        fail("parent trace: %d x 1111, %d x 3333, %d x 2222" %
             (sizes.count(1111), sizes.count(3333), sizes.count(2222)))
    child = dump(a, trace + "." + pids["fork_child"])
    csizes = [o[1] for o in child if o[0] == "malloc"]
    if csizes.count(2222) != 7 or 1111 in csizes or 3333 in csizes:
        fail("forked child's trace: %s" % csizes)
    exe = info(a, trace + "." + pids["exec_child"])
    if int(exe["allocs"]) < 60 or exe["pid"] != pids["exec_child"]:
        fail("exec'ed child's trace: %s" % exe)
    for t in (trace, trace + "." + pids["fork_child"], trace + "." + pids["exec_child"]):
        run([a.replay, t])
    print("fork ok: parent, forked child and exec'ed child each in their own file")


def case_python(a):
    d = fresh(a, "python")
    trace = os.path.join(d, "trace")
    py = run(["python3", "-c", "import sys; print(sys.executable)"]).stdout.strip()
    code = ("import json, threading\n"
            "d = [{'k': i, 's': str(i) * 3} for i in range(20000)]\n"
            "def f(): json.loads(json.dumps(d))\n"
            "ts = [threading.Thread(target=f) for _ in range(3)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "print(len(json.dumps(d)))\n")
    r = run([py, "-c", code], env={"HAKMEM_TRACE": trace, "LD_PRELOAD": a.lib})
    i = info(a, trace)
    if int(i["ops"]) < 1000 or int(i["threads"]) < 4:
        fail("python trace too small: %s" % i)
    r = run([a.replay, trace])
    print(r.stderr.strip())
    print("python ok: %s calls of %s threads replayed clean" % (i["ops"], i["threads"]))


def record_perturb_traces(a, name):
    """A roundtrip trace with its recorded counters, and a handoff trace (remote frees into
    runs of exited owners while a trimmer trims)."""
    d = fresh(a, name)
    rt, stats, ho = (os.path.join(d, n) for n in ("roundtrip", "recorded.stats", "handoff"))
    run([a.record, "roundtrip", stats], env={"HAKMEM_TRACE": rt})
    run([a.record, "handoff"], env={"HAKMEM_TRACE": ho})
    i = info(a, ho)
    if int(i["threads"]) < 20 or int(i["thread_exits"]) < 20:
        fail("handoff trace: expected many threads and exits: %s" % i)
    return d, rt, stats, ho


def counts(text):
    """The counters a different interleaving leaves equal: calls made, blocks left."""
    return [l for l in text.splitlines() if l.split()[0] in ("allocs", "frees", "live_blocks")]


def case_perturb(a):
    d, rt, stats, ho = record_perturb_traces(a, "perturb")
    logs = [os.path.join(d, "log%d" % k) for k in range(3)]
    for log, seed in zip(logs, ("7", "7", "8")):
        r = run([a.replay, "--perturb", seed, "--schedule-log", log, ho])
        if "replayed clean under seed " + seed not in r.stderr:
            fail("--perturb %s: %s" % (seed, r.stderr))
    same, other = (open(l).read() for l in logs[:2]), open(logs[2]).read()
    first, second = same
    if first != second:
        fail("seed 7 gave two schedules: diff %s %s" % (logs[0], logs[1]))
    if first == other:
        fail("seeds 7 and 8 gave the same schedule (%s)" % logs[0])
    kinds = {l.split()[1] for l in first.splitlines()[1:]}
    if not {"call", "gone"} <= kinds or not kinds & {"before_push", "after_push", "drain"}:
        fail("the schedule log lacks call, exit or schedule-point decisions: %s" % sorted(kinds))
    print("perturb: seed 7 twice, %d decisions, identical; seed 8 differs; decisions: %s"
          % (len(first.splitlines()) - 1, " ".join(sorted(kinds))))

    want = counts(open(stats).read())
    got = os.path.join(d, "perturbed.stats")
    run([a.replay, "--perturb", "7", "--stats", got, rt])
    if counts(open(got).read()) != want:
        fail("perturbed replay counters differ:\n%s\n%s" % (want, counts(open(got).read())))

    # The thread about to run the middle call blocks outside any schedule point: the watchdog
    # must let the schedule go, and every call must still be made.
    mid = int(info(a, rt)["ops"]) // 2
    log = os.path.join(d, "stall.log")
    t0 = time.time()
    r = run([a.replay, "--perturb", "3", "--test-stall", str(mid), "--schedule-log", log,
             "--stats", got, rt])
    warn = [l for l in r.stderr.splitlines() if "perturbed schedule stalled" in l]
    if len(warn) != 1 or "running unscheduled (not reproducible)" not in warn[0]:
        fail("stall: expected one watchdog warning, stderr: %s" % r.stderr)
    if "unscheduled from here" not in open(log).read():
        fail("stall: the schedule log does not say where it stopped")
    if counts(open(got).read()) != want:
        fail("stall: counters differ after running unscheduled")
    print("perturb: stalled at call %d, %s; ended in %.1f s with every call made"
          % (mid, warn[0].split(": ", 1)[1], time.time() - t0))


def case_perturb_search(a):
    _, rt, _, ho = record_perturb_traces(a, "perturb_search")
    for trace, n in ((ho, 30), (rt, 30)):
        r = run([a.replay, "--perturb-search", str(n), trace], check=False)
        if r.returncode != 0 or "%d seeds replayed clean" % n not in r.stdout:
            fail("--perturb-search %d on %s: exit %d\n%s%s"
                 % (n, trace, r.returncode, r.stdout, r.stderr[-2000:]))
        print("%s: %s" % (os.path.basename(trace), r.stdout.strip()))
    r = run([a.replay, "--perturb-search", "3", "--perturb-from", "1000", ho])
    if "3 seeds replayed clean" not in r.stdout:
        fail("--perturb-from: %s" % r.stdout)


def case_realloc_window(a):
    d = fresh(a, "realloc_window")
    trace = os.path.join(d, "trace")
    run([a.record_window], env={"HAKMEM_TRACE": trace})
    ops = [o[0] for o in dump(a, trace)]
    if ops.count("realloc") != 1 or ops.count("malloc") < 2:
        fail("realloc_window: unexpected calls in the trace: %s" % ops)
    # The main thread's second malloc (L's address again) must come after the realloc.
    second_malloc = [i for i, o in enumerate(ops) if o == "malloc"][1]
    if ops.index("realloc") > second_malloc:
        fail("realloc_window: the realloc is recorded after the malloc that reused its old "
             "block: %s" % ops)
    r = run([a.replay, trace], check=False)
    if r.returncode != 0:
        fail("realloc_window: the replay failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    print("realloc_window ok: %s" % " ".join(ops))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--replay", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--fuzz")
    p.add_argument("--lib")
    p.add_argument("--record-window")
    a = p.parse_args()
    globals()["case_" + a.case](a)


if __name__ == "__main__":
    main()
