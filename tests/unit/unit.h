/* Helpers shared by the unit tests of tests/unit/: one test file per box.
 *
 * Unit tests include the allocator's internal headers (hakmem_internal puts src/ on the
 * include path and defines the HAKMEM_* build macros) and call internal functions directly.
 * They use the hak_* API only, never the libc names, so the same test runs in every preset;
 * in override builds libc itself allocates through hakmem, so tests never assume that a class
 * or a counter moves only because of them unless they own it.
 *
 * Checks, threads, random numbers and the allocator's view of a block come from
 * tests/support (hak_test.h, hak_block.h): a failed T_CHECK prints the condition and a line
 * `FAIL: file:line: message`, and _exit(1)s. What is here is the unit tests' own: sets of
 * pointers kept without allocating. Nothing here allocates. */
#ifndef HAKMEM_UNIT_H
#define HAKMEM_UNIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fast.h"
#include "hak_block.h"
#include "hak_test.h"
#include "hakmem.h"

/* libc's own allocations go through hakmem (the test executable exports malloc). */
#define U_LIBC_IS_HAKMEM (HAKMEM_OVERRIDE && !HAKMEM_ASAN && !HAKMEM_TSAN)

/* ---- pointer sets without allocating: heap sort and binary search ------------------------ */

static inline void u_sift(void **a, size_t start, size_t n) {
  size_t root = start;
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && (uintptr_t)a[child] < (uintptr_t)a[child + 1]) child++;
    if ((uintptr_t)a[root] >= (uintptr_t)a[child]) return;
    void *t = a[root];
    a[root] = a[child];
    a[child] = t;
    root = child;
  }
}

static inline void u_sort_ptrs(void **a, size_t n) {
  if (n < 2) return;
  for (size_t i = n / 2; i-- > 0;) u_sift(a, i, n);
  for (size_t end = n - 1; end > 0; end--) {
    void *t = a[0];
    a[0] = a[end];
    a[end] = t;
    u_sift(a, 0, end);
  }
}

/* Index of the first element >= p in sorted a[0..n). */
static inline size_t u_lower_bound(void *const *a, size_t n, const void *p) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)a[mid] < (uintptr_t)p) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static inline int u_contains(void *const *a, size_t n, const void *p) {
  size_t i = u_lower_bound(a, n, p);
  return i < n && a[i] == p;
}

/* Elements of sorted a[0..n) in [lo, hi). */
static inline size_t u_count_range(void *const *a, size_t n, const void *lo, const void *hi) {
  return u_lower_bound(a, n, hi) - u_lower_bound(a, n, lo);
}

#endif /* HAKMEM_UNIT_H */
