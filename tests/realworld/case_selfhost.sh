#!/usr/bin/env bash
# case_selfhost.sh snapshot SRC DEST: copies hakmem's source tree SRC (without build/ and .git) to
#   DEST, so that every run of the build below compiles the same sources even while SRC changes
#   (the fixture realworld_selfhost_snapshot).
# case_selfhost.sh build DEST: configures DEST with cmake (Ninja, Release) into a scratch build
#   directory and builds libhakmem.so, libhakmem.a, three test programs and a C++ program with
#   ninja -j2, then prints the exported symbols of the library (nm -D), the sha256 of everything
#   built, and the output of the test programs and of the C++ program run with the library it
#   just built preloaded. run_modes.sh runs it plain and with hakmem preloaded into cmake, ninja
#   and every compiler, assembler and linker they start: the build must give the same bits.
set -u
export LC_ALL=C

case ${1:-} in
  snapshot)
    [ $# -eq 3 ] || { echo "usage: case_selfhost.sh snapshot SRC DEST" >&2; exit 2; }
    rm -rf "$3" && mkdir -p "$3" || exit 1
    tar -C "$2" --exclude=./build --exclude=./.git -cf - . | tar -C "$3" -xf - || exit 1
    echo "snapshot of $2 in $3: $(find "$3" -type f | wc -l) files"
    exit 0
    ;;
  build)
    [ $# -eq 2 ] || { echo "usage: case_selfhost.sh build DEST" >&2; exit 2; }
    src=$2
    ;;
  *)
    echo "usage: case_selfhost.sh snapshot SRC DEST | build DEST" >&2
    exit 2
    ;;
esac

for tool in cmake ninja cc c++ nm sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not installed"; exit 77; }
done
[ -f "$src/CMakeLists.txt" ] || { echo "FAIL: no source snapshot in $src" >&2; exit 1; }
work=${HAK_TEST_WORKDIR:-$(pwd)}
build=$work/build
programs=(tests/unit/unit_tls_sll tests/unit/unit_ptr_bridge tests/api_align
          tests/preload_cxx_prog)

# step NAME LOG CMD...: runs CMD with its output in LOG, prints NAME's exit status, and on a
# failure shows the end of LOG on stderr.
step() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1
  local rc=$?
  echo "$name exit status: $rc"
  if [ "$rc" -ne 0 ]; then
    echo "--- $name, last 30 lines of $log ---" >&2
    tail -n 30 "$log" >&2
  fi
  return "$rc"
}

step configure "$work/configure.log" \
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=cc -DCMAKE_CXX_COMPILER=c++ || exit 1
step build "$work/build.log" \
  ninja -C "$build" -j2 hakmem hakmem_static unit_tls_sll unit_ptr_bridge api_align \
    preload_cxx_prog || exit 1

cd "$build" || exit 1
echo "-- exported symbols of libhakmem.so"
nm -D --defined-only libhakmem.so
echo "-- sha256 of what was built"
sha256sum "$(readlink -f libhakmem.so | xargs basename)" libhakmem.a "${programs[@]}"
echo "-- the test programs, without hakmem preloaded"
for prog in "${programs[@]:0:3}"; do
  env -u LD_PRELOAD "./$prog" >"$work/prog.out" 2>&1
  echo "$prog exit status: $?"
done
echo "-- the C++ program with the library just built preloaded"
env LD_PRELOAD="$build/libhakmem.so" HAKMEM_STATS=0 ./tests/preload_cxx_prog
echo "preload_cxx_prog exit status: $?"
