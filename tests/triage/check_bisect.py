#!/usr/bin/env python3
"""Checks scripts/hakmem-bisect on a synthetic repository.

  check_bisect.py HAKMEM_BISECT WORKDIR

Makes WORKDIR/repo: a tiny CMake project whose tc3-hdrless-hint preset builds libhakmem.so
from one C file, with seven commits: three good ones, one that does not build, one that fixes
the build, one whose library constructor crashes (the first bad commit) and one more after
it. The project configures only with the preset's cache variables (one of them inherited), so
a bisect that ignores the preset skips everything. Then checks:
  - the first bad commit found, the skipped commit and the verdict lines of bisect_log.txt;
  - git_bisect_log.txt, and HEAD back on the branch it was on;
  - a dirty work tree is refused and starts nothing;
  - SIGINT during a step ends the bisect and leaves the repository as found.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

from checklib import check, finish

CMAKELISTS = """cmake_minimum_required(VERSION 3.20)
project(synthetic C)
if(NOT SYNTH_MODE STREQUAL "tc3" OR NOT SYNTH_BASE STREQUAL "inherited")
  message(FATAL_ERROR "configure with the tc3-hdrless-hint preset's cache variables")
endif()
add_library(hakmem SHARED hakmem.c)
"""

PRESETS = """{
  "version": 6,
  "configurePresets": [
    {"name": "base", "hidden": true, "generator": "Ninja",
     "binaryDir": "${sourceDir}/build/${presetName}",
     "cacheVariables": {"SYNTH_BASE": "inherited", "SYNTH_MODE": "base"}},
    {"name": "tc3-hdrless-hint", "inherits": "base", "cacheVariables": {"SYNTH_MODE": "tc3"}}
  ]
}
"""

LIBRARY = """#include <signal.h>
static int version = %d;
__attribute__((constructor)) static void synthetic_init(void) {
  %s
}
int synthetic_version(void) { return version; }
"""

# (subject, constructor body or None for a file that does not compile)
COMMITS = [
    ("library with a constructor", "(void)version;"),
    ("second good commit", "(void)version;"),
    ("third good commit", "if (version < 0) raise(SIGTERM);"),
    ("typo that breaks the build", None),
    ("fix the build", "if (version < 0) raise(SIGTERM);"),
    ("constructor crashes", "raise(SIGSEGV);"),
    ("later commit", "raise(SIGSEGV);"),
]
FIRST_BAD, UNBUILDABLE = 5, 3


def git(repo, *argv, check=True):
    return subprocess.run(["git", "-C", repo] + list(argv), check=check, capture_output=True,
                          text=True).stdout.strip()


def make_repo(repo):
    os.makedirs(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "hakmem test")
    git(repo, "config", "user.email", "test@hakmem.invalid")
    for name, text in (("CMakeLists.txt", CMAKELISTS), ("CMakePresets.json", PRESETS)):
        with open(os.path.join(repo, name), "w") as f:
            f.write(text)
    shas = []
    for n, (subject, body) in enumerate(COMMITS):
        with open(os.path.join(repo, "hakmem.c"), "w") as f:
            f.write(LIBRARY % (n, body) if body else "int synthetic_version(void) { return }\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", subject)
        shas.append(git(repo, "rev-parse", "HEAD"))
    return shas


def bisect(script, repo, keep, cmd, **popen):
    return subprocess.Popen([sys.executable, script, "HEAD~6", "main", "--timeout", "10",
                             "--keep", keep, "--"] + cmd, cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)


def check_restored(repo, head, when):
    check(git(repo, "symbolic-ref", "HEAD", check=False) == "refs/heads/main",
          "%s: HEAD is not back on main" % when)
    check(git(repo, "rev-parse", "HEAD") == head, "%s: HEAD moved" % when)
    in_progress = subprocess.call(["git", "-C", repo, "bisect", "log"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
    check(not in_progress, "%s: a bisect is still in progress" % when)


def check_found(script, repo, work, shas):
    keep = os.path.join(work, "found")
    run = bisect(script, repo, keep, ["/bin/true"])
    out = run.communicate()[0]
    print(out)
    check(run.returncode == 0, "bisect exit status %d, expected 0" % run.returncode)
    bad, skipped = shas[FIRST_BAD], shas[UNBUILDABLE]
    check("First bad commit: %s constructor crashes" % bad in out,
          "first bad commit %s not reported" % bad)
    with open(os.path.join(keep, "bisect_log.txt")) as f:
        verdicts = f.read().splitlines()
    check("%s skip (build failed) typo that breaks the build" % skipped in verdicts,
          "no skip verdict for the unbuildable commit %s" % skipped)
    check("%s bad (crash (SIGSEGV)) constructor crashes" % bad in verdicts,
          "no bad verdict for the first bad commit")
    check(any(v.endswith(" good (pass) fix the build") for v in verdicts),
          "no good verdict for the commit that fixes the build")
    check(all(v.split(" ")[0] in shas[1:] for v in verdicts), "verdict on a commit outside")
    with open(os.path.join(keep, "git_bisect_log.txt")) as f:
        check("# first bad commit: [%s]" % bad in f.read(), "git_bisect_log.txt incomplete")
    check_restored(repo, shas[-1], "after the bisect")


def check_dirty(script, repo, work, shas):
    with open(os.path.join(repo, "hakmem.c"), "a") as f:
        f.write("/* local change */\n")
    run = bisect(script, repo, os.path.join(work, "dirty"), ["/bin/true"])
    out = run.communicate()[0]
    check(run.returncode == 2 and "has changes" in out,
          "a dirty work tree was not refused (exit %d): %s" % (run.returncode, out))
    git(repo, "checkout", "--", "hakmem.c")
    check_restored(repo, shas[-1], "after the refusal")


def check_interrupt(script, repo, work, shas):
    keep = os.path.join(work, "interrupt")
    run = bisect(script, repo, keep, ["sleep", "60"], start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        if os.path.isdir(keep) and any(n.endswith("-run.log") for n in os.listdir(keep)):
            break
        time.sleep(0.1)
    else:
        check(False, "the interrupted bisect never reached its first run")
    os.kill(run.pid, signal.SIGINT)
    try:
        out = run.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        out = run.communicate()[0]
        check(False, "bisect did not end within 30 s of SIGINT")
    print(out)
    check(run.returncode == 130, "interrupted bisect exit status %d" % run.returncode)
    check_restored(repo, shas[-1], "after SIGINT")


def main():
    script, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    repo = os.path.join(work, "repo")
    shas = make_repo(repo)
    for part in (check_found, check_dirty, check_interrupt):
        try:
            part(script, repo, work, shas)
        except Exception as e:  # a broken bisect may break the next part's assumptions
            check(False, "%s: %r" % (part.__name__, e))
    return finish("bisect")


if __name__ == "__main__":
    sys.exit(main())
