#!/usr/bin/env bash
# Proof that a planted bug is caught: run_planted.sh BUG SOURCE_DIR WORK_DIR
#
# BUG is one of the HAKMEM_PLANT_BUG names, or "none" for the control run.
#  1. Regression tests: `cmake -S SOURCE_DIR -B WORK_DIR/regress -DHAKMEM_PLANT_BUG=BUG` plus
#     the pointer mode where the bug can occur (plain CMake, the default compiler, no preset),
#     build the regress tests, `ctest -L regress`: it must fail with the bug, pass with none.
#     A bug that names its tests below builds and runs only those, and each must fail.
#  2. Fuzzing (not for none): the same with HAKMEM_SANITIZER=fuzz (clang, libFuzzer); the
#     harness of the bug's box, then alloc_ops, fuzz from the checked-in corpus for at most
#     60 s each: one of them must find the bug. A bug no harness reaches (no box below) is
#     proven by its tests alone.
# Prints one verdict line "planted BUG: ..." and exits 0 when the proof holds.
set -euo pipefail

bug=$1 src=$2 work=$3
mkdir -p "$work"
budget=${HAKMEM_PLANT_FUZZ_SECONDS:-60}

case $bug in
  sll_userptr|magazine_userptr|double_offset) modes=("-DHAKMEM_TINY_HEADERLESS=0") ;;
  stale_hint|registry_late_unregister|class_drift|remote_double_drain|remote_touch_after_push|\
  stale_notify|orphan_stale_count|uncarved_free|fork_no_takeover|large_grow_late_unregister)
    modes=("-DHAKMEM_TINY_HEADERLESS=1 -DHAKMEM_TINY_SS_TLS_HINT=1") ;;
  none) modes=("-DHAKMEM_TINY_HEADERLESS=0" "-DHAKMEM_TINY_HEADERLESS=1 -DHAKMEM_TINY_SS_TLS_HINT=1") ;;
  *) echo "run_planted.sh: unknown bug '$bug'" >&2; exit 2 ;;
esac
case $bug in
  stale_hint) box=hint ;;
  sll_userptr) box=tls_sll ;;
  registry_late_unregister) box=registry ;;
  class_drift) box=superslab ;;
  magazine_userptr) box=magazine ;;
  remote_double_drain) box=remote_queue ;;
  double_offset) box=ptr_bridge ;;
  remote_touch_after_push|stale_notify|orphan_stale_count|uncarved_free|fork_no_takeover)
    box=interleave ;; # the windows need a parked thread, the rest a fork
  large_grow_late_unregister) box="" ;; # a stale lookup while a grow is parked: no harness
  none) box="" ;;
esac
# The tests that must fail, when the bug names them: only they are built and run.
case $bug in
  large_grow_late_unregister) tests=(regress_large_grow) ;;
  *) tests=() ;;
esac
targets=("${tests[@]}")
((${#tests[@]})) || targets=(hakmem_regress)
select=()
((${#tests[@]})) && select=(-R "^($(IFS='|'; echo "${tests[*]}"))\$")
plant=$bug
hang_s=15 # a scenario the bug hangs is ended sooner than the everyday 60 s
[[ $bug == none ]] && plant="" && hang_s=60

fail() { echo "planted $bug: PROOF FAILED: $*"; exit 1; }

# ---- 1. regression tests -----------------------------------------------------------------
for i in "${!modes[@]}"; do
  dir=$work/regress$i
  read -r -a mode <<<"${modes[$i]}"
  rm -rf "$dir"
  cmake -S "$src" -B "$dir" -G Ninja -DHAKMEM_PLANT_BUG="$plant" "${mode[@]}" \
    -DHAKMEM_REGRESS_CHILD_SECONDS=$hang_s \
    >"$work/configure$i.log" 2>&1 || fail "configure failed (see $work/configure$i.log)"
  cmake --build "$dir" --target "${targets[@]}" >"$work/build$i.log" 2>&1 \
    || fail "build failed (see $work/build$i.log)"
  status=0
  ctest --test-dir "$dir" -L regress "${select[@]}" --timeout 120 >"$dir/ctest.log" 2>&1 \
    || status=$?
  failed=$(sed -n 's/^[[:space:]]*[0-9]* - \(regress_[a-z_]*\) .*/\1/p' "$dir/ctest.log" | tr '\n' ' ')
  echo "planted $bug: ${modes[$i]}: ctest -L regress exit $status${failed:+, failed: $failed}"
  if [[ $bug == none ]]; then
    ((status == 0)) || fail "regress tests fail without a planted bug (see $dir/ctest.log)"
  else
    ((status != 0)) || fail "every regress test passes with the bug planted"
    for t in "${tests[@]}"; do
      [[ " $failed " == *" $t "* ]] || fail "$t passes with the bug planted"
    done
  fi
done
if [[ $bug == none ]]; then
  echo "planted none: regress tests pass in both pointer modes"
  exit 0
fi
if [[ -z $box ]]; then
  echo "planted $bug: proof holds (${tests[*]} fails; no fuzz harness reaches the bug)"
  exit 0
fi

# ---- 2. fuzzing ----------------------------------------------------------------------------
dir=$work/fuzz
read -r -a mode <<<"${modes[0]}"
rm -rf "$dir"
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DHAKMEM_SANITIZER=fuzz -DHAKMEM_OVERRIDE=OFF -DHAKMEM_DEBUG=ON -DHAKMEM_PLANT_BUG="$bug" \
  "${mode[@]}" >"$work/fuzz-configure.log" 2>&1 || fail "fuzz configure failed (see $work/fuzz-configure.log)"
cmake --build "$dir" --target "fuzz_$box" fuzz_alloc_ops >"$work/fuzz-build.log" 2>&1 \
  || fail "fuzz build failed (see $work/fuzz-build.log)"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for h in "$box" alloc_ops; do
  mkdir -p "$dir/run-$h/scratch" "$dir/run-$h/artifacts"
  start=$SECONDS
  status=0
  "$dir/fuzz/fuzz_$h" -max_total_time="$budget" -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$dir/run-$h/artifacts/" "$dir/run-$h/scratch" "$src/fuzz/corpus/$h" \
    >"$dir/run-$h/log" 2>&1 || status=$?
  if ((status != 0)); then
    what=$(grep -m1 -E 'fuzz invariant broken|hakmem: |ERROR: AddressSanitizer|runtime error|ERROR: libFuzzer' "$dir/run-$h/log" || true)
    echo "planted $bug: found by fuzz_$h in $((SECONDS - start)) s: ${what:0:160}"
    echo "planted $bug: proof holds (regress fails, fuzz_$h finds it)"
    exit 0
  fi
  echo "planted $bug: fuzz_$h found nothing in $((SECONDS - start)) s"
done
fail "no harness found the bug within ${budget} s"
