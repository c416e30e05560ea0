#!/usr/bin/env bash
# run_install.sh BUILD_DIR SOURCE_DIR WORK_DIR [LIB_NAME]: installs the build into
# WORK_DIR/prefix, then builds a consumer with find_package (with and without a version) and
# with pkg-config, and runs each. Checks the installed files: SOVERSIONed .so, .a, header, .pc,
# CMake package. LIB_NAME is the library's name (hakmem, or hakmem_checked ... for a build with
# HAKMEM_LIB_SUFFIX).
set -euo pipefail
build=$1 src=$2 work=$3 lib=${4:-hakmem}
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name "lib$lib.so.0" | head -n 1)")
for f in "$libdir/lib$lib.so.0" "$libdir/lib$lib.a" "$prefix/include/hakmem.h" \
         "$libdir/pkgconfig/hakmem.pc" "$libdir/cmake/hakmem/hakmemConfig.cmake" \
         "$libdir/cmake/hakmem/hakmemConfigVersion.cmake"; do
  [[ -e $f ]] || { echo "FAIL: not installed: $f"; exit 1; }
done
cmake -S "$src/tests/install/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH=$libdir "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
# A version the package does not have is refused.
mkdir -p "$work/badver"
printf 'cmake_minimum_required(VERSION 3.25)\nproject(b LANGUAGES C)\nfind_package(hakmem 9.0 REQUIRED)\n' \
  > "$work/badver/CMakeLists.txt"
if cmake -S "$work/badver" -B "$work/badver/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
  echo "FAIL: find_package(hakmem 9.0) succeeded"; exit 1
fi
if command -v pkg-config >/dev/null; then
  flags=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs hakmem)
  # shellcheck disable=SC2086
  cc -o "$work/consumer_pc" "$src/tests/install/consumer/main.c" $flags
  LD_LIBRARY_PATH=$libdir "$work/consumer_pc"
fi
echo "install ok"
