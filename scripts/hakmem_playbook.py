"""What scripts/hakmem-triage and scripts/hakmem-bisect share: running a command under a
preloaded library with a time limit, naming the outcome the way the debug playbook does, the
build presets of CMakePresets.json and their build folders, and what a crashing run leaves
behind (its core, wherever the system's core_pattern puts it).

Outcomes, one vocabulary for both commands:
  pass             exit status 0
  crash (SIGSEGV)  killed by a signal (its name)
  hang             still running at the time limit (sent SIGTERM, then SIGKILL after a grace)
  fail (exit N)    non-zero exit status
Repeated runs are named by their rates: "pass 3/3", "crash (SIGSEGV) 2/5, hang 1/5" (the
failures in the order they first came; passes are named only when every run passed).
"""

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import time

# Seconds between SIGTERM and SIGKILL when a run overstays its time limit.
KILL_GRACE = 5


def run_limited(cmd, env, timeout, out_path, cwd=None):
    """Runs cmd with stdout and stderr into out_path, in its own process group so that a hang
    is killed with all its children. Returns the outcome string."""
    return run_process(cmd, env, timeout, out_path, cwd)[0]


def run_process(cmd, env, timeout, out_path, cwd=None, core_limit=None):
    """run_limited that also sets the run's core size limit (None: inherited) and returns
    (outcome, pid)."""
    preexec = None if core_limit is None else (lambda: set_core_limit(core_limit))
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=preexec)
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc, KILL_GRACE)
            return "hang", proc.pid
        except BaseException:
            kill_group(proc, 1)
            raise
    return outcome(status), proc.pid


def kill_group(proc, grace):
    """SIGTERM to the process group of proc, SIGKILL if it is still there after grace s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def outcome(status):
    """The outcome of a finished process from its Popen return code."""
    if status == 0:
        return "pass"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "signal %d" % -status
        return "crash (%s)" % name
    return "fail (exit %d)" % status


def rates(outcomes):
    """The outcomes of repeated runs as rates: "crash (SIGSEGV) 2/5, hang 1/5", "pass 3/3"."""
    failures = [o for o in outcomes if o != "pass"]
    counts = {}
    for o in failures or outcomes:
        counts[o] = counts.get(o, 0) + 1
    return ", ".join("%s %d/%d" % (o, n, len(outcomes)) for o, n in counts.items())


def tail_lines(path, count):
    """The last count lines of a file (decoded leniently: a crashing program may write
    anything)."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:]


def keep_tail(path, count):
    """Cuts a log down to its last count lines, in place."""
    lines = tail_lines(path, count)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


# ---- presets and their build folders ------------------------------------------------------------


def preset_cache_variables(presets_text, name):
    """The cache variables of configure preset name with those it inherits (nearest wins), and
    its generator. Raises KeyError when the preset is not defined."""
    presets = {p["name"]: p for p in json.loads(presets_text).get("configurePresets", [])}
    if name not in presets:
        raise KeyError(name)
    variables, generator = {}, None
    chain = [name]
    while chain:
        preset = presets[chain.pop(0)]
        generator = generator or preset.get("generator")
        for key, value in preset.get("cacheVariables", {}).items():
            if isinstance(value, dict):
                value = value.get("value", "")
            variables.setdefault(key, str(value))
        parents = preset.get("inherits", [])
        chain.extend([parents] if isinstance(parents, str) else parents)
    return variables, generator or "Ninja"


DEFINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:[A-Z]+)?=")


def define_tag(defines):
    """A folder-name tag for extra cache variables ("VAR=VALUE" each): "" for none, else the
    sorted definitions joined by "+", each "VAR-VALUE"; characters a path (or LD_PRELOAD)
    should not carry become "_", and then (or when the tag grows long) a short hash of the
    definitions keeps two tags apart."""
    unsafe = re.compile(r"[^A-Za-z0-9_.,=-]")
    defines = sorted(defines)
    tag = "+".join(unsafe.sub("_", d).replace("=", "-", 1) for d in defines)
    if any(unsafe.search(d) or "=" in d.split("=", 1)[1] for d in defines) or len(tag) > 80:
        tag = tag[:60] + "." + hashlib.sha1("\n".join(defines).encode()).hexdigest()[:10]
    return tag


def build_dir(repo, preset, defines=()):
    """build/<preset>, or build/<preset>+<tag> for a build with extra cache variables (never
    the preset's own folder, which the normal builds and tests use)."""
    tag = define_tag(defines)
    return os.path.join(repo, "build", preset + ("+" + tag if tag else ""))


# ---- cores --------------------------------------------------------------------------------------

# The signals whose default action dumps core.
CORE_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE", "SIGQUIT", "SIGTRAP",
                "SIGSYS", "SIGXCPU", "SIGXFSZ"}
COREDUMPCTL_WAIT = 15  # seconds systemd-coredump may take to file a core


def set_core_limit(limit):
    """In the child before exec: the soft core size limit, at most the hard one."""
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    if hard != resource.RLIM_INFINITY and (limit == resource.RLIM_INFINITY or limit > hard):
        limit = hard
    resource.setrlimit(resource.RLIMIT_CORE, (limit, hard))


def core_pattern():
    try:
        with open("/proc/sys/kernel/core_pattern", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def core_method(choice, pattern=None):
    """How the cores of failing runs are got: (method, why), method one of kernel (the kernel
    writes them: into HAKMEM_CRASH_DIR for a relative core_pattern, else where the pattern
    says), coredumpctl, gcore (the crash handler runs gcore on its own process) or off. The
    pattern is the system's unless given."""
    if choice != "auto":
        return choice, "--cores " + choice
    pattern = core_pattern() if pattern is None else pattern
    if pattern.startswith("|"):
        handler = pattern[1:].split()[0] if pattern[1:].split() else "?"
        if "systemd-coredump" in handler and shutil.which("coredumpctl"):
            return "coredumpctl", "core_pattern pipes to systemd-coredump"
        if shutil.which("gcore"):
            return "gcore", "core_pattern pipes to %s" % handler
        return "off", "core_pattern pipes to %s and gdb's gcore is not installed" % handler
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        return "gcore", "the hard core size limit is 0"
    return "kernel", "core_pattern %r" % pattern


def crashed_with_core(result):
    return result.startswith("crash (") and result[len("crash ("):-1] in CORE_SIGNALS


def collect_core(method, crash_dir, pid, started, cwd=None):
    """The core of process pid (which crashed), moved into crash_dir if it was written
    elsewhere (an absolute core_pattern, or a relative one when the crash handler did not get
    as far as entering crash_dir: the core is then in the run's working directory cwd): its
    path, or None."""
    if method == "coredumpctl":
        dump_coredumpctl(pid, crash_dir)
    elif method == "kernel" and largest_file(crash_dir) is None:
        fetch_core(core_pattern(), pid, crash_dir, started, cwd or os.getcwd())
    return largest_file(crash_dir)


def largest_file(folder):
    """The largest file of a run's own crash folder (only its core goes there)."""
    try:
        paths = [os.path.join(folder, n) for n in os.listdir(folder)]
    except OSError:
        return None
    paths = [p for p in paths if os.path.isfile(p)]
    return max(paths, key=os.path.getsize) if paths else None


def dump_coredumpctl(pid, crash_dir):
    """coredumpctl dump, retried while systemd-coredump is still filing the core."""
    out = os.path.join(crash_dir, "core.%d" % pid)
    deadline = time.monotonic() + COREDUMPCTL_WAIT
    while time.monotonic() < deadline:
        status = subprocess.call(["coredumpctl", "--no-pager", "-q", "dump", str(pid), "-o",
                                  out], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        if status == 0 and os.path.isfile(out):
            return
        time.sleep(1)


def fetch_core(pattern, pid, crash_dir, started, cwd):
    """Moves a core the kernel wrote elsewhere into crash_dir: the newest file of the
    pattern's folder (relative to cwd) written since the run started whose name begins as the
    pattern's does, one naming the pid if any does."""
    folder = os.path.join(cwd, os.path.dirname(pattern))
    prefix = os.path.basename(pattern).split("%")[0]
    if "%" in folder or not prefix or not os.path.isdir(folder):
        return
    fresh = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(prefix) and os.path.isfile(path) and \
                os.path.getmtime(path) >= started:
            fresh.append(path)
    named = [p for p in fresh if re.search(r"(^|\D)%d(\D|$)" % pid, os.path.basename(p))]
    candidates = named or ([] if "%p" in pattern else fresh)
    if candidates:
        newest = max(candidates, key=os.path.getmtime)
        try:
            shutil.move(newest, os.path.join(crash_dir, os.path.basename(newest)))
        except OSError:
            pass


# ---- gdb ----------------------------------------------------------------------------------------

# What gdb says about threads starting and ending, and its libthread_db banner: tens of
# thousands of lines for a program that starts many threads, none of them about the crash.
GDB_CHATTER = re.compile(r"^\[New (Thread|LWP) [^\]]*\]$|^\[Thread [^\]]* exited\]$|"
                         r"^\[Thread debugging using libthread_db enabled\]$|"
                         r"^Using host libthread_db library |"
                         r"^warning: Section `\.reg-xstate/\d+' in core file too small\.$")


def without_gdb_chatter(lines):
    """(the lines without gdb's thread chatter, how many were left out)."""
    kept = [line for line in lines if not GDB_CHATTER.search(line)]
    return kept, len(lines) - len(kept)
