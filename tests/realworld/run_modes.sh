#!/usr/bin/env bash
# run_modes.sh NAME [--also MODE VAR=VALUE]... -- CMD [ARGS...]
#
# Like tests/preload/run_same.sh, for programs whose children must not see hakmem's statistics
# on their stderr (a compiler check that reads its compiler's output, a test suite that asserts
# a child printed nothing there). Runs CMD without hakmem, then with LD_PRELOAD=$HAKMEM_LIB for
# the whole process tree ("preload"), then once more preloaded for every --also, with VAR=VALUE
# added to the environment (PYTHONMALLOC=malloc sends every Python object through hakmem).
# Passes only if every preloaded run prints the same stdout and exits with the same status as the
# plain run, and its HAKMEM_STATS=json:FILE document (written by the last process of the tree to
# exit, CMD itself in practice) counts a nonzero number of allocations, which proves the preload
# took effect.
#
# Each run gets a fresh scratch directory, exported as HAK_TEST_WORKDIR and made the current
# directory; HAKMEM_LIB itself is removed from CMD's environment. Exits 77 (CTest
# SKIP_RETURN_CODE) if CMD is not installed or if the plain run exits 77.
set -u

usage() {
  echo "usage: run_modes.sh NAME [--also MODE VAR=VALUE]... -- CMD [ARGS...]" >&2
  exit 2
}

[ $# -ge 3 ] || usage
name=$1
shift
modes=(preload)
declare -A mode_env=([preload]="")
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --also)
      [ $# -ge 3 ] && [[ $3 == *=* ]] || usage
      modes+=("$2")
      mode_env[$2]=$3
      shift 3
      ;;
    *) usage ;;
  esac
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
root=$(pwd)/run_modes.$name
rm -rf "$root"
mkdir -p "$root/plain" || exit 1

# run MODE CMD...: runs CMD in $root/MODE, stdout/stderr into $root/MODE.{out,err}; every mode
# but "plain" preloads hakmem and adds its variable.
run() {
  local mode=$1
  shift
  mkdir -p "$root/$mode" || return 1
  (
    cd "$root/$mode" || exit 1
    export HAK_TEST_WORKDIR="$root/$mode"
    if [ "$mode" != plain ]; then
      export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
      export HAKMEM_STATS="json:$root/$mode.stats.json"
      [ -z "${mode_env[$mode]}" ] || export "${mode_env[$mode]}"
    fi
    exec "$@"
  ) >"$root/$mode.out" 2>"$root/$mode.err"
}

show() {
  echo "--- $1 (last 40 lines) ---" >&2
  tail -n 40 "$2" >&2
}

start=$SECONDS
run plain "$@"
plain_rc=$?
if [ "$plain_rc" -eq 77 ]; then
  echo "SKIP: $name: the plain run asked to skip"
  cat "$root/plain.out"
  exit 77
fi
echo "plain: exit status $plain_rc, $(wc -l <"$root/plain.out") lines, $((SECONDS - start)) s"

status=0
for mode in "${modes[@]}"; do
  start=$SECONDS
  run "$mode" "$@"
  rc=$?
  label=$mode
  [ -z "${mode_env[$mode]}" ] || label="$mode (${mode_env[$mode]})"
  echo "$label: exit status $rc, $((SECONDS - start)) s"
  failed=0
  if [ "$rc" -ne "$plain_rc" ]; then
    echo "FAIL: $name: exit status $plain_rc without hakmem, $rc in mode $label" >&2
    failed=1
  fi
  if ! cmp -s "$root/plain.out" "$root/$mode.out"; then
    echo "FAIL: $name: stdout of mode $label differs from the plain run" >&2
    diff "$root/plain.out" "$root/$mode.out" | head -n 40 >&2
    failed=1
  fi
  stats=$root/$mode.stats.json
  if ! grep -Eq '"totals": \{"allocs": [1-9]' "$stats" 2>/dev/null; then
    echo "FAIL: $name: $stats does not count any allocation (preload not effective?)" >&2
    failed=1
  fi
  if [ "$failed" -eq 1 ]; then
    show "stderr of mode $label" "$root/$mode.err"
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "PASS: $name: same stdout ($(wc -c <"$root/plain.out") bytes) and exit status" \
       "($plain_rc) in modes plain ${modes[*]}"
fi
exit "$status"
