#!/usr/bin/env bash
# case_python.sh MODULE...: runs the named modules of CPython's own test suite (python3 -m test,
# two worker processes) and prints the modules that ran, then one line per test case with its
# verdict (from regrtest's JUnit XML, sorted, no timings) and regrtest's exit status, so a run
# under hakmem must print exactly what a plain run prints. run_modes.sh runs it plain, preloaded,
# and preloaded with PYTHONMALLOC=malloc. Modules this interpreter does not ship are left out
# (the same ones in every run); none at all, or no python3, exits 77.
set -u
command -v python3 >/dev/null 2>&1 || { echo "python3 not installed"; exit 77; }
work=${HAK_TEST_WORKDIR:-$(pwd)}
# python3 may be a pyenv shim (a shell script): run the interpreter it resolves to.
py=$(python3 -c 'import sys; print(sys.executable)') || exit 1

present=$("$py" - "$@" <<'EOF'
import importlib.util
import sys

for name in sys.argv[1:]:
    try:
        found = importlib.util.find_spec("test." + name) is not None
    except ImportError:
        found = False
    if found:
        print(name)
EOF
)
if [ -z "$present" ]; then
  echo "this python3 ships none of the test modules: $*"
  exit 77
fi
echo "python: $("$py" -c 'import sys; print(sys.version.split()[0])')"
echo "test modules:" $present

# shellcheck disable=SC2086 # one word per module
# A module that hangs is ended after 120 s (its worker's process group killed) and fails.
"$py" -m test -j2 --timeout=120 --junit-xml="$work/junit.xml" $present >"$work/regrtest.log" 2>&1
rc=$?
echo "regrtest exit status: $rc"
if [ "$rc" -ne 0 ]; then
  echo "--- regrtest (exit status $rc), last 30 lines ---" >&2
  tail -n 30 "$work/regrtest.log" >&2
fi

"$py" - "$work/junit.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

# A test case's verdict: its failure/error/skipped element if it has one, else its result.
lines = []
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    verdict = case.get("result", "run")
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            verdict = child.tag
            break
    lines.append(f"{case.get('name')} {verdict}")
print(f"test cases: {len(lines)}")
print("\n".join(sorted(lines)))
EOF
