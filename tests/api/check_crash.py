#!/usr/bin/env python3
"""check_crash.py API_CRASH WORKDIR: the crash report (HAKMEM_CRASH_REPORT, src/crash.c).

Runs api_crash in each mode with the report on and checks: the process still dies by the same
signal; the report names the signal, says what the address is to hakmem, shows a backtrace
from the crashing frame, the debug ring, and its end line; with HAKMEM_CRASH_DIR the core
lands in that folder (where the core_pattern is relative) and gdb finds main in it; with
HAKMEM_CRASH_GCORE=1 gcore writes DIR/core.<pid> (where gdb can attach). Without the option
there is no report and the same signal. A second thread that faults while the first one's
report is under way (held there by a full stderr pipe) gets no report of its own and does not
cut the first one short. Prints `crash check ok` at the end.
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def run(prog, mode, env_extra, crash_dir):
    env = dict(os.environ)
    for key in ("HAKMEM_CRASH_REPORT", "HAKMEM_CRASH_DIR", "HAKMEM_CRASH_GCORE"):
        env.pop(key, None)
    env.update(env_extra)
    os.makedirs(crash_dir, exist_ok=True)
    for name in os.listdir(crash_dir):
        os.unlink(os.path.join(crash_dir, name))
    proc = subprocess.run([prog, mode], env=env, capture_output=True, text=True,
                          errors="replace", preexec_fn=unlimited_core, timeout=120)
    print("--- %s %s (exit %d) ---\n%s" % (mode, " ".join(sorted(env_extra)), proc.returncode,
                                          proc.stderr))
    return proc


def expect_in_order(text, patterns, what):
    pos = 0
    for pat in patterns:
        m = re.compile(pat, re.M).search(text, pos)
        if m is None:
            fail("%s: no line matching %r after offset %d" % (what, pat, pos))
        pos = m.end()


def gdb_bt(prog, core):
    gdb = shutil.which("gdb")
    if gdb is None:
        return None
    out = subprocess.run([gdb, "-batch", "-nx", "-ex", "bt", prog, core], capture_output=True,
                         text=True, errors="replace", timeout=120)
    return out.stdout + out.stderr


def core_pattern():
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            return f.read().strip()
    except OSError:
        return ""


def check_core_in_dir(prog, crash_dir, mode):
    pattern = core_pattern()
    if pattern.startswith("|") or pattern.startswith("/"):
        print("core in HAKMEM_CRASH_DIR: not checked (core_pattern is %r)" % pattern)
        return
    cores = [n for n in os.listdir(crash_dir) if n.startswith(pattern.split("%")[0] or "core")]
    if not cores:
        fail("%s: no core in %s (core_pattern %r)" % (mode, crash_dir, pattern))
    bt = gdb_bt(prog, os.path.join(crash_dir, cores[0]))
    if bt is not None and not re.search(r"\bmain\b", bt):
        fail("%s: gdb finds no main in the core:\n%s" % (mode, bt))
    print("core %s kept in the crash folder; gdb bt names main" % cores[0])


CASES = [  # mode, signal, what the address line must say (None: no address line)
    ("null", signal.SIGSEGV, r"null pointer dereference"),
    ("unmapped", signal.SIGSEGV, r"unmapped SuperSlab 0x[0-9a-f]+ .*a use after the region "
                                 r"was released"),
    ("invalid", signal.SIGABRT, None),
]


def check_report(prog, work, mode, sig, address):
    crash_dir = os.path.join(work, mode)
    proc = run(prog, mode, {"HAKMEM_CRASH_REPORT": "1", "HAKMEM_CRASH_DIR": crash_dir},
               crash_dir)
    if proc.returncode != -sig:
        fail("%s: exit %d, expected death by %s" % (mode, proc.returncode, sig.name))
    name = sig.name
    patterns = [r"^hakmem: crash report: %s \(" % name]
    if address:
        patterns.append(r"^hakmem: address 0x[0-9a-f]+: .*" + address)
    patterns += [r"^hakmem: backtrace \(the interrupted frame first\):$",
                 r"^hakmem:   #0 0x[0-9a-f]+",
                 r"^hakmem: debug ring",
                 r"^hakmem: crash report end: %s re-raised$" % name]
    if mode == "invalid":
        patterns.insert(0, r"^hakmem: invalid free")
    expect_in_order(proc.stderr, patterns, mode)
    frames = re.findall(r"^hakmem:   #\d+ .*$", proc.stderr, re.M)
    want = "abort" if sig == signal.SIGABRT else "api_crash"
    if not any(want in f for f in frames[:4]):
        fail("%s: the first frames do not name %s: %s" % (mode, want, frames[:4]))
    check_core_in_dir(prog, crash_dir, mode)


def check_two(prog, work):
    """A second thread's fault while the first one reports: one report, of the first fault,
    complete, and the process still dies by SIGSEGV (the second thread waits in its handler)."""
    crash_dir = os.path.join(work, "two")
    proc = run(prog, "two", {"HAKMEM_CRASH_REPORT": "1", "HAKMEM_CRASH_DIR": crash_dir},
               crash_dir)
    if proc.returncode != -signal.SIGSEGV:
        fail("two: exit %d, expected death by SIGSEGV" % proc.returncode)
    starts = re.findall(r"^hakmem: crash report: .*$", proc.stderr, re.M)
    if len(starts) != 1 or " at 0x10 " not in starts[0]:
        fail("two: expected one report, of the fault at 0x10; found %s" % starts)
    expect_in_order(proc.stderr, [r"^hakmem: crash report: SIGSEGV .* at 0x10 ",
                                  r"^hakmem: address 0x10: .*null pointer dereference",
                                  r"^hakmem: backtrace", r"^hakmem: debug ring",
                                  r"^hakmem: crash report end: SIGSEGV re-raised$"], "two")
    if "0x20" in proc.stderr.split("threads fault at 0x10, 0x20", 1)[-1]:
        fail("two: the second fault (0x20) shows in the report")


def check_off(prog, work):
    proc = run(prog, "null", {}, os.path.join(work, "off"))
    if proc.returncode != -signal.SIGSEGV:
        fail("report off: exit %d, expected SIGSEGV" % proc.returncode)
    if "crash report" in proc.stderr:
        fail("report off: a crash report was printed")


def ptrace_allowed(work):
    """Whether gcore can attach to a process here at all (containers may forbid ptrace)."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        out = subprocess.run(["gcore", "-o", os.path.join(work, "probe"), str(sleeper.pid)],
                             capture_output=True, timeout=60)
        return out.returncode == 0
    finally:
        sleeper.kill()
        sleeper.wait()


def check_gcore(prog, work):
    if shutil.which("gcore") is None:
        print("HAKMEM_CRASH_GCORE: not checked (gcore is not installed)")
        return
    crash_dir = os.path.join(work, "gcore")
    proc = run(prog, "null", {"HAKMEM_CRASH_REPORT": "1", "HAKMEM_CRASH_DIR": crash_dir,
                              "HAKMEM_CRASH_GCORE": "1"}, crash_dir)
    if proc.returncode != -signal.SIGSEGV:
        fail("gcore: exit %d, expected SIGSEGV" % proc.returncode)
    m = re.search(r"^hakmem: core written by gcore: (\S+)$", proc.stderr, re.M)
    if m is None:
        if re.search(r"^hakmem: gcore failed", proc.stderr, re.M) and not ptrace_allowed(work):
            print("HAKMEM_CRASH_GCORE: not checked (this machine does not let gcore attach)")
            return
        fail("gcore: no 'core written by gcore' line")
    core = m.group(1)
    if not os.path.isfile(core):
        fail("gcore: %s does not exist" % core)
    bt = gdb_bt(prog, core)
    if bt is not None and not re.search(r"\bmain\b", bt):
        fail("gcore: gdb finds no main in %s:\n%s" % (core, bt))
    print("gcore wrote %s; gdb bt names main" % core)


def main():
    if len(sys.argv) != 3:
        print("usage: check_crash.py API_CRASH WORKDIR")
        return 2
    prog, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(work, exist_ok=True)
    for mode, sig, address in CASES:
        check_report(prog, work, mode, sig, address)
    check_two(prog, work)
    check_off(prog, work)
    check_gcore(prog, work)
    print("crash check ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
