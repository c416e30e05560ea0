#!/usr/bin/env bash
# Proof that a perturbed replay turns a race into a seed: run_perturb_replay.sh SOURCE_DIR WORK_DIR
#
# The planted bug remote_touch_after_push makes a remote free read its run after the push that
# may let the run be released and its SuperSlab unmapped. Replayed in the recorded order that
# never happens (threads take turns), so a recorded trace replays clean; a schedule that parks
# the freeing thread after its push while the owner releases the run and a trim unmaps the
# SuperSlab faults.
#  1. Builds a normal tree (libhakmem.so to record with, hakmem-replay for the control) and one
#     with the bug planted (its hakmem-replay), headerless with the hint, plain CMake.
#  2. Records the triage churn workload (tests/triage/churn.c) under LD_PRELOAD into a trace;
#     the planted replay in the recorded order must be clean.
#  3. hakmem-replay --perturb-search 200 with the planted build must name a failing seed (a
#     trace without one is replaced by a fresh recording, three traces at most); that seed must
#     crash the same way three times in a row (reproducible) and replay clean with the normal
#     build (the schedule alone is no failure).
#  4. --minimize under that seed (a 60 s budget: on a loaded machine one replay of the whole
#     trace takes seconds) must write a smaller trace that still crashes under it.
# Prints how many seeds it took and "proof holds", or "PROOF FAILED: why"; exit 0 when it holds.
set -euo pipefail

src=$1 work=$2
mkdir -p "$work"
ulimit -c 0
mode=(-DHAKMEM_TINY_HEADERLESS=1 -DHAKMEM_TINY_SS_TLS_HINT=1)
seeds=200

say() { echo "planted perturb_replay: $*"; }
fail() { say "PROOF FAILED: $*"; exit 1; }
# replay LOG CMD...: runs CMD with its output in LOG; sets status. The subshell (two commands,
# so it cannot exec CMD) reaps it: a crash is not announced on this script's stderr.
replay() {
  local log=$1
  shift
  status=0
  (
    "$@" >"$log" 2>&1
    rc=$?
    exit $rc
  ) 2>/dev/null || status=$?
}

# ---- 1. builds ---------------------------------------------------------------------------------
build() { # build DIR PLANT TARGET...
  local dir=$1 plant=$2
  shift 2
  rm -rf "$dir"
  cmake -S "$src" -B "$dir" -G Ninja -DHAKMEM_PLANT_BUG="$plant" "${mode[@]}" \
    >"$dir.configure.log" 2>&1 || fail "configure failed (see $dir.configure.log)"
  cmake --build "$dir" --target "$@" >"$dir.build.log" 2>&1 \
    || fail "build failed (see $dir.build.log)"
}
build "$work/normal" "" hakmem hakmem-replay
build "$work/planted" remote_touch_after_push hakmem-replay
"${CC:-cc}" -O2 -pthread -I"$src/tests/support" "$src/tests/triage/churn.c" -o "$work/churn" \
  || fail "cannot build churn"

# ---- 2 and 3. a trace that replays clean in the recorded order; the search ----------------------
# hakmem's decay clock is the one input of a replay that a seed does not fix; replays take well
# under a second, and an hour of decay makes sure it never runs.
export HAKMEM_DECAY_MS=3600000
trace=$work/churn.trace
# record: a fresh trace of the churn workload under the normal library.
record() {
  local attempt
  for attempt in 1 2 3; do
    rm -f "$trace"*
    if HAKMEM_TRACE=$trace LD_PRELOAD=$work/normal/libhakmem.so "$work/churn" 0.1 \
      >"$work/churn.log" 2>&1; then
      return 0
    fi
  done
  fail "churn failed three times under the normal library (see $work/churn.log)"
}
# Each recording interleaves the churn's threads differently, and some traces hold fewer of the
# windows the bug needs: a search that finds nothing in one trace is tried on a fresh one (at
# most three). The proof is that some trace turns into a reproducible seed, checked below.
for trace_no in 1 2 3; do
  record
  ops=$("$work/normal/hakmem-replay" --info "$trace" | sed -n 's/^ops //p')
  replay "$work/recorded-order.log" "$work/planted/hakmem-replay" "$trace"
  ((status == 0)) || fail "the recorded order already fails (exit $status, see $work/recorded-order.log)"
  say "trace $trace_no of $ops calls replays clean in the recorded order with the bug planted"
  start=$SECONDS
  replay "$work/search.log" "$work/planted/hakmem-replay" --perturb-search "$seeds" --timeout 60 \
    "$trace"
  cat "$work/search.log"
  ((status == 1)) && break
  ((status == 0)) || fail "--perturb-search $seeds: exit $status (see $work/search.log)"
  say "trace $trace_no: no failing seed in $seeds"
done
((status == 1)) || fail "--perturb-search $seeds found no failing seed in three traces"
seed=$(sed -n 's/^hakmem-replay: seed \([0-9]*\) fails: .*/\1/p' "$work/search.log")
tried=$(sed -n 's/.*(\([0-9]*\) seeds tried.*/\1/p' "$work/search.log")
grep -q "fails: crash (SIGSEGV)" "$work/search.log" || fail "seed $seed does not fail by SIGSEGV"
grep -q "not reproducible" "$work/search.log" && fail "seed $seed failed after a stall"
say "seed $seed fails after $tried of $seeds seeds ($((SECONDS - start)) s)"
for run in 1 2 3; do
  replay "$work/repro$run.log" "$work/planted/hakmem-replay" --perturb "$seed" "$trace"
  ((status == 139)) || fail "seed $seed, run $run: exit $status, not SIGSEGV (see $work/repro$run.log)"
done
replay "$work/control.log" "$work/normal/hakmem-replay" --perturb "$seed" "$trace"
((status == 0)) || fail "seed $seed fails without the bug too (exit $status, see $work/control.log)"
say "seed $seed: SIGSEGV in 3 of 3 replays with the bug, clean without it"

# ---- 4. minimized under the seed ---------------------------------------------------------------
small=$work/churn.min.trace
replay "$work/minimize.log" "$work/planted/hakmem-replay" --minimize -o "$small" \
  --perturb "$seed" --budget 60 "$trace"
((status == 0)) || fail "--minimize --perturb $seed: exit $status (see $work/minimize.log)"
left=$("$work/normal/hakmem-replay" --info "$small" | sed -n 's/^ops //p')
((left < ops)) || fail "--minimize kept all $ops calls"
replay "$work/min-repro.log" "$work/planted/hakmem-replay" --perturb "$seed" "$small"
((status == 139)) || fail "the minimized trace does not crash under seed $seed (exit $status)"
say "--minimize --perturb $seed: $ops calls -> $left, still SIGSEGV"
say "proof holds (found by --perturb-search in $tried seeds)"
