#!/usr/bin/env bash
# run_same.sh NAME [--any-allocs] -- CMD [ARGS...]
#
# Runs CMD twice, first as it is, then with LD_PRELOAD=$HAKMEM_LIB and HAKMEM_STATS=1, and
# passes only if both runs print the same stdout and exit with the same status, and the
# preloaded run's stderr holds hakmem's exit statistics with a nonzero allocation count
# ("hakmem: totals allocs=N ..."), which proves the preload took effect. With --any-allocs a
# statistics line is enough (for programs that may never call malloc, like /bin/true).
#
# Each run gets a fresh scratch directory, exported as HAK_TEST_WORKDIR and made the current
# directory. HAKMEM_LIB itself is removed from CMD's environment: hakmem warns about HAKMEM_*
# names it does not know. Exits 77 (CTest SKIP_RETURN_CODE) if CMD is not installed or if CMD
# itself exits 77 in the plain run.
set -u

usage() {
  echo "usage: run_same.sh NAME [--any-allocs] -- CMD [ARGS...]" >&2
  exit 2
}

[ $# -ge 3 ] || usage
name=$1
shift
any_allocs=0
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --any-allocs) any_allocs=1 ;;
    *) usage ;;
  esac
  shift
done
[ $# -ge 2 ] && [ "$1" = "--" ] || usage
shift

if [ -z "${HAKMEM_LIB:-}" ] || [ ! -f "$HAKMEM_LIB" ]; then
  echo "FAIL: $name: HAKMEM_LIB is not set to the built libhakmem (got '${HAKMEM_LIB:-}')" >&2
  exit 1
fi
if ! command -v "$1" >/dev/null 2>&1; then
  echo "SKIP: $name: '$1' is not installed"
  exit 77
fi

lib=$HAKMEM_LIB
unset HAKMEM_LIB
root=$(pwd)/run_same.$name
rm -rf "$root"
mkdir -p "$root/plain" "$root/preload" || exit 1

# run MODE: runs the command in $root/MODE, stdout/stderr into $root/MODE.{out,err}.
run() {
  local mode=$1
  shift
  (
    cd "$root/$mode" || exit 1
    export HAK_TEST_WORKDIR="$root/$mode"
    if [ "$mode" = preload ]; then
      export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
      export HAKMEM_STATS=1
    fi
    exec "$@"
  ) >"$root/$mode.out" 2>"$root/$mode.err"
}

run plain "$@"
plain_rc=$?
if [ "$plain_rc" -eq 77 ]; then
  echo "SKIP: $name: the plain run asked to skip"
  cat "$root/plain.out"
  exit 77
fi
run preload "$@"
preload_rc=$?

show() {
  echo "--- $1 (last 40 lines) ---" >&2
  tail -n 40 "$2" >&2
}

status=0
if [ "$plain_rc" -ne "$preload_rc" ]; then
  echo "FAIL: $name: exit status $plain_rc without hakmem, $preload_rc with LD_PRELOAD" >&2
  show "preloaded stderr" "$root/preload.err"
  status=1
fi
if ! cmp -s "$root/plain.out" "$root/preload.out"; then
  echo "FAIL: $name: stdout differs between the plain and the preloaded run" >&2
  diff "$root/plain.out" "$root/preload.out" | head -n 40 >&2
  show "preloaded stderr" "$root/preload.err"
  status=1
fi
if [ "$any_allocs" -eq 1 ]; then
  pattern='^hakmem: totals allocs=[0-9]'
else
  pattern='^hakmem: totals allocs=[1-9]'
fi
if ! grep -Eq "$pattern" "$root/preload.err"; then
  echo "FAIL: $name: no '$pattern' line on the preloaded run's stderr (preload not effective?)" >&2
  show "preloaded stderr" "$root/preload.err"
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "PASS: $name: same stdout ($(wc -c <"$root/plain.out") bytes) and exit status ($plain_rc)"
  grep -E '^hakmem: totals' "$root/preload.err" | head -n 3
fi
exit "$status"
