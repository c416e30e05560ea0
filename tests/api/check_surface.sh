#!/bin/sh
# The shared library's dynamic symbol table names the whole malloc surface (DROPIN: a name
# left out is a call that reaches glibc's allocator with hakmem's pointer): the C allocation
# calls and glibc's aliases and tuning calls, and every operator new and delete of C++17
# (plain, array, nothrow, sized, aligned). Each missing name is printed; the test fails if any is.
# Usage: check_surface.sh LIBHAKMEM.so
set -u
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ {print $3}') || {
  echo "FAIL: nm -D $lib failed"
  exit 1
}
missing=0
for name in \
  malloc free calloc realloc reallocarray memalign aligned_alloc posix_memalign valloc \
  pvalloc malloc_usable_size cfree malloc_trim mallopt mallinfo mallinfo2 malloc_stats \
  __libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign __libc_valloc \
  __libc_pvalloc __libc_mallopt __libc_mallinfo __posix_memalign \
  _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t \
  _ZnwmSt11align_val_t _ZnamSt11align_val_t \
  _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t \
  _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t \
  _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t \
  _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t; do
  if ! printf '%s\n' "$syms" | grep -qx "$name"; then
    echo "FAIL: $lib does not export $name"
    missing=$((missing + 1))
  fi
done
[ "$missing" -eq 0 ] || exit 1
echo "check_surface ok: $(printf '%s\n' "$syms" | grep -c .) names exported, the whole surface among them"
