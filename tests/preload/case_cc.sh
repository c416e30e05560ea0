#!/usr/bin/env bash
# case_cc.sh SOURCE: compiles SOURCE to an object twice (the two objects must be identical),
# prints the object's checksum, links it and runs the program. Run by run_same.sh, so the
# compiler driver, cc1, as and ld all run with and without hakmem preloaded.
set -eu
src=$1
command -v cc >/dev/null 2>&1 || { echo "cc not installed"; exit 77; }
cc -O2 -c "$src" -o first.o
cc -O2 -c "$src" -o second.o
if ! cmp -s first.o second.o; then
  echo "FAIL: two compilations of $src gave different objects" >&2
  exit 1
fi
echo "object: $(cksum <first.o)"
cc first.o -o hello
./hello
echo "hello exit status: $?"
