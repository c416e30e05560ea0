"""What scripts/hakmem-triage and scripts/hakmem-bisect share: running a command under a
preloaded library with a time limit, naming the outcome the way the debug playbook does, and
the build presets of CMakePresets.json.

Outcomes, one vocabulary for both commands:
  pass             exit status 0
  crash (SIGSEGV)  killed by a signal (its name)
  hang             still running at the time limit (sent SIGTERM, then SIGKILL after a grace)
  fail (exit N)    non-zero exit status
"""

import json
import os
import signal
import subprocess

# Seconds between SIGTERM and SIGKILL when a run overstays its time limit.
KILL_GRACE = 5


def run_limited(cmd, env, timeout, out_path, cwd=None):
    """Runs cmd with stdout and stderr into out_path, in its own process group so that a hang
    is killed with all its children. Returns the outcome string."""
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc, KILL_GRACE)
            return "hang"
        except BaseException:
            kill_group(proc, 1)
            raise
    return outcome(status)


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
