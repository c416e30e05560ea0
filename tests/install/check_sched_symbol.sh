#!/usr/bin/env bash
# check_sched_symbol.sh CONTROL LIB...: the schedule points' hook is a test-only build option.
# CONTROL (the hakmem_sched library the schedule-point tests link) must define hak_sched_hook,
# so the check can fail; no LIB (the libraries that are built for users and installed) may.
set -euo pipefail
control=$1
shift
has_hook() { nm -A "$1" 2>/dev/null | grep -w 'hak_sched_hook' >/dev/null; }
if ! has_hook "$control"; then
  echo "FAIL: control $control does not define hak_sched_hook: the check sees nothing"
  exit 1
fi
status=0
for lib in "$@"; do
  if has_hook "$lib"; then
    echo "FAIL: $lib has the schedule points' hook (hak_sched_hook): a test-only option shipped"
    status=1
  else
    echo "ok: $lib has no schedule-point hook"
  fi
done
exit $status
