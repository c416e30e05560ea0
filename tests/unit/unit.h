/* Helpers shared by the unit tests of tests/unit/: one test file per box.
 *
 * Unit tests include the allocator's internal headers (hakmem_internal puts src/ on the
 * include path and defines the HAKMEM_* build macros) and call internal functions directly.
 * They use the hak_* API only, never the libc names, so the same test runs in every preset;
 * in override builds libc itself allocates through hakmem, so tests never assume that a class
 * or a counter moves only because of them unless they own it.
 *
 * A failed check prints one line, `FAIL: file:line: condition: message`, and _exit(1)s, so a
 * failing thread does not run atexit handlers under the other threads. Nothing here allocates. */
#ifndef HAKMEM_UNIT_H
#define HAKMEM_UNIT_H

#include <pthread.h>
#include <stdarg.h>
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

/* U_CHECK(cond, fmt, ...): fails the test unless cond holds, naming the condition first. */
#define U_CHECK T_CHECK

#define U_LOG(...) fprintf(stderr, __VA_ARGS__)

/* ---- the allocator's view of a block ----------------------------------------------------- */

/* A request size that lands in class c (its usable size), checked against the class table. */
static inline size_t u_size_of_class(int c) {
  size_t n = t_class_request(c);
  if (n == 0) t_fail("hak_size_class(hak_class_size(c)) != c for class %d", c);
  return n;
}

static inline hak_stats_t u_stats(void) {
  hak_stats_t s;
  hak_stats_get(&s);
  return s;
}

/* Makes sure the calling thread has a live cache (its first allocation creates it). */
static inline hak_tcache_t *u_thread_cache(void) {
  void *p = hak_malloc(1);
  U_CHECK(p != NULL, "hak_malloc(1) failed");
  hak_free(p);
  U_CHECK(hak_tc->state == HAK_TC_LIVE, "thread cache state %d after the first malloc",
          hak_tc->state);
  return hak_tc;
}

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

/* ---- deterministic random numbers --------------------------------------------------------- */

static inline uint64_t u_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* ---- threads ------------------------------------------------------------------------------- */

static inline void u_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  int rc = pthread_create(t, NULL, fn, arg);
  U_CHECK(rc == 0, "pthread_create: %d", rc);
}

static inline void u_join(pthread_t t) {
  int rc = pthread_join(t, NULL);
  U_CHECK(rc == 0, "pthread_join: %d", rc);
}

static inline void u_run_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  u_start(&t, fn, arg);
  u_join(t);
}

#endif /* HAKMEM_UNIT_H */
