/* The one family of check macros and helpers of hakmem's tests and fuzz harnesses: every test
 * folder (tests/api, stress, unit, regress, checked, trace, triage) and fuzz/ include it, and
 * the folders' own headers add only what is theirs (regress.h: the scenario runner; fuzz.h:
 * input decoding). Helpers that need hakmem's internal headers live in hak_block.h.
 *
 * Every test drives the allocator through the T_* macros, which always name the prefixed hak_*
 * API: the same test then runs unchanged in every preset, including asan and tsan where the
 * sanitizer owns malloc and only hak_* reaches hakmem. Tests that need the libc names include
 * this header too but call malloc/free directly.
 *
 * Failure reporting: one line on stderr starting with "FAIL: ", then _exit(1) (not exit(), so
 * a failing thread does not run atexit handlers under the feet of the others). The fuzz
 * harnesses' T_INVARIANT prints "fuzz invariant broken: " instead and aborts, so that libFuzzer
 * keeps the input as a crash (fuzz/run and tests/planted/run_planted.sh grep for that line). */
#ifndef HAK_TEST_H
#define HAK_TEST_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hakmem.h"

/* ---- the allocator under test ---------------------------------------------------------- */

#define T_MALLOC(n) hak_malloc(n)
#define T_FREE(p) hak_free(p)
#define T_CALLOC(c, n) hak_calloc((c), (n))
#define T_REALLOC(p, n) hak_realloc((p), (n))
#define T_REALLOCARRAY(p, c, n) hak_reallocarray((p), (c), (n))
#define T_MEMALIGN(a, n) hak_memalign((a), (n))
#define T_ALIGNED_ALLOC(a, n) hak_aligned_alloc((a), (n))
#define T_POSIX_MEMALIGN(pp, a, n) hak_posix_memalign((pp), (a), (n))
#define T_VALLOC(n) hak_valloc(n)
#define T_PVALLOC(n) hak_pvalloc(n)
#define T_USABLE(p) hak_usable_size(p)

/* ---- failure reporting ----------------------------------------------------------------- */

/* Prints "<what>: file:line: [cond: ]message" on stderr, file without its directories. */
__attribute__((format(printf, 5, 0), unused)) static void t_report_v(const char *what,
                                                                     const char *file, int line,
                                                                     const char *cond,
                                                                     const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  const char *base = strrchr(file, '/');
  fflush(stdout);
  fprintf(stderr, "%s: %s:%d: %s%s%s\n", what, base ? base + 1 : file, line, cond ? cond : "",
          cond ? ": " : "", msg);
  fflush(stderr);
}

__attribute__((noreturn, format(printf, 3, 4), unused)) static void
t_fail_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  t_report_v("FAIL", file, line, NULL, fmt, ap);
  va_end(ap);
  _exit(1);
}

/* A broken invariant of a fuzz harness: the report, then abort(). */
__attribute__((noreturn, format(printf, 4, 5), unused)) static void
t_invariant_at(const char *file, int line, const char *cond, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  t_report_v("fuzz invariant broken", file, line, cond, fmt, ap);
  va_end(ap);
  abort();
}

/* t_fail(fmt, ...): report and exit 1. t_check(cond, fmt, ...): t_fail unless cond holds. */
#define t_fail(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define t_check(cond, ...)                                                                         \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      t_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                                  \
  } while (0)

/* T_CHECK(cond, fmt, ...): like t_check, naming the failed condition on a line of its own. */
#define T_CHECK(cond, ...)                                                                         \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "condition: %s\n", #cond);                                                   \
      t_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                                  \
    }                                                                                              \
  } while (0)

/* T_INVARIANT(cond, fmt, ...): for the fuzz harnesses, unless cond holds one line
 * "fuzz invariant broken: file:line: cond: message" and abort(). Its test costs a branch hint
 * only: the harnesses check after every operation. */
#define T_INVARIANT(cond, ...)                                                                     \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0))                                                              \
      t_invariant_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                                      \
  } while (0)

/* ---- fill patterns ----------------------------------------------------------------------- */

/* A block's pattern is a function of a 64-bit key and the byte offset. The key normally
 * comes from the block's address and a seed, so two blocks never share a pattern and a write
 * that lands in the wrong block is caught. When contents move (realloc) the caller keeps the
 * old key: t_fill_key / t_verify_key. */
static inline uint64_t t_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static inline uint64_t t_key_addr(uintptr_t addr, uint64_t seed) {
  return t_mix64((uint64_t)addr ^ (seed * 0x9e3779b97f4a7c15ull) ^ 0x5bd1e995ull);
}

/* A macro, so that only the address is taken (no "uninitialised memory" warning at -O0). */
#define t_key(p, seed) t_key_addr((uintptr_t)(const void *)(p), (seed))

#define T_PATTERN_STEP 0x9e3779b97f4a7c15ull

/* Byte i of the pattern of key. */
static inline unsigned char t_expected_byte(uint64_t key, size_t i) {
  uint64_t w = key + (uint64_t)(i / 8) * T_PATTERN_STEP;
  return (unsigned char)(w >> ((i & 7) * 8));
}

/* Writes bytes [lo, hi) of the pattern of key at the same offsets of p, eight at a time. */
static inline void t_fill_range(void *p, size_t lo, size_t hi, uint64_t key) {
  unsigned char *b = (unsigned char *)p;
  size_t i = lo;
  for (; i < hi && (i & 7); i++)
    b[i] = t_expected_byte(key, i);
  for (uint64_t w = key + (uint64_t)(i / 8) * T_PATTERN_STEP; i + 8 <= hi;
       i += 8, w += T_PATTERN_STEP)
    memcpy(b + i, &w, 8);
  for (; i < hi; i++)
    b[i] = t_expected_byte(key, i);
}

/* Offset of the first byte of [lo, hi) of p that differs from the pattern, or SIZE_MAX. */
static inline size_t t_find_bad_range(const void *p, size_t lo, size_t hi, uint64_t key) {
  const unsigned char *b = (const unsigned char *)p;
  size_t i = lo;
  for (; i < hi && (i & 7); i++)
    if (b[i] != t_expected_byte(key, i))
      return i;
  for (uint64_t w = key + (uint64_t)(i / 8) * T_PATTERN_STEP; i + 8 <= hi;
       i += 8, w += T_PATTERN_STEP) {
    uint64_t got;
    memcpy(&got, b + i, 8);
    if (got != w)
      break; /* the byte loop below finds which */
  }
  for (; i < hi; i++)
    if (b[i] != t_expected_byte(key, i))
      return i;
  return SIZE_MAX;
}

static inline void t_fill_key(void *p, size_t n, uint64_t key) { t_fill_range(p, 0, n, key); }

/* Offset of the first byte that differs from the pattern, or SIZE_MAX if all match. */
static inline size_t t_find_bad_key(const void *p, size_t n, uint64_t key) {
  return t_find_bad_range(p, 0, n, key);
}

__attribute__((unused)) static void t_verify_key_at(const char *file, int line, const void *p,
                                                    size_t n, uint64_t key) {
  size_t bad = t_find_bad_key(p, n, key);
  if (bad != SIZE_MAX)
    t_fail_at(file, line, "block %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x", p, n, bad,
              ((const unsigned char *)p)[bad], t_expected_byte(key, bad));
}

#define t_fill(p, n, seed) t_fill_key((p), (n), t_key((p), (seed)))
#define t_verify(p, n, seed) t_verify_key_at(__FILE__, __LINE__, (p), (n), t_key((p), (seed)))
#define t_verify_key(p, n, key) t_verify_key_at(__FILE__, __LINE__, (p), (n), (key))

/* A block that carries its size in its first 8 bytes and the pattern of seed after them: p, just
 * returned by an allocation of n bytes (n >= 16), is checked for NULL and written; t_sized_check
 * reads the size back, checks it is in 16..max and the pattern intact, and returns it. */
#define t_sized_init(p, n, seed) t_sized_init_at(__FILE__, __LINE__, (p), (n), (seed))
#define t_sized_check(p, max, seed) t_sized_check_at(__FILE__, __LINE__, (p), (max), (seed))
static inline void *t_sized_init_at(const char *file, int line, void *p, size_t n, uint64_t seed) {
  if (p == NULL) t_fail_at(file, line, "malloc(%zu) returned NULL", n);
  memcpy(p, &n, sizeof n);
  t_fill((unsigned char *)p + 8, n - 8, seed);
  return p;
}
static inline size_t t_sized_check_at(const char *file, int line, const void *p, size_t max,
                                      uint64_t seed) {
  size_t n;
  memcpy(&n, p, sizeof n);
  if (n < 16 || n > max) t_fail_at(file, line, "block %p carries a bad size %zu", p, n);
  t_verify_key_at(file, line, (const unsigned char *)p + 8, n - 8,
                  t_key((const unsigned char *)p + 8, seed));
  return n;
}

/* ---- random numbers (xorshift64*) --------------------------------------------------------- */

typedef struct t_rng_s {
  uint64_t s; /* never 0 */
} t_rng_t;

static inline void t_rng_seed(t_rng_t *r, uint64_t seed) {
  r->s = t_mix64(seed + 0x632be59bd9b4e019ull);
  if (r->s == 0)
    r->s = 1;
}

/* The generator's step on a bare state *s (never 0), for tests that keep their own seed. */
static inline uint64_t t_xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

static inline uint64_t t_rng_next(t_rng_t *r) { return t_xorshift(&r->s); }

/* Uniform in [0, n) (n > 0; the modulo bias is irrelevant here). */
static inline uint64_t t_rng_below(t_rng_t *r, uint64_t n) { return t_rng_next(r) % n; }

/* Uniform in [lo, hi]. */
static inline size_t t_rng_range(t_rng_t *r, size_t lo, size_t hi) {
  return lo + (size_t)t_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* ---- small utilities --------------------------------------------------------------------- */

static inline int t_aligned(const void *p, size_t align) {
  return ((uintptr_t)p & (align - 1)) == 0;
}

static inline double t_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Run time of a stress program: argv[1] in seconds (default 2). */
static inline double t_seconds_arg(int argc, char **argv) {
  double s = argc > 1 ? strtod(argv[1], NULL) : 2.0;
  return s > 0 ? s : 0.0;
}

/* HAK_TEST_SCALE (default 1.0) multiplies iteration and thread counts; tsan uses 0.1. */
static inline double t_scale(void) {
  const char *s = getenv("HAK_TEST_SCALE");
  double v = s ? strtod(s, NULL) : 1.0;
  return v > 0 ? v : 1.0;
}

static inline size_t t_scaled(size_t n) {
  double v = (double)n * t_scale();
  return v < 1.0 ? 1 : (size_t)v;
}

/* hak_stats_get's counters, as a value. */
static inline hak_stats_t t_stats(void) {
  hak_stats_t st;
  hak_stats_get(&st);
  return st;
}

static inline uint64_t t_live_blocks(void) { return t_stats().live_blocks; }

/* ---- threads ------------------------------------------------------------------------------- */

/* pthread_create and pthread_join that fail the test when they fail. */
#define t_start(th, fn, arg) t_start_at(__FILE__, __LINE__, (th), (fn), (arg))
#define t_join(th) t_join_at(__FILE__, __LINE__, (th))

static inline void t_start_at(const char *file, int line, pthread_t *th, void *(*fn)(void *),
                              void *arg) {
  int rc = pthread_create(th, NULL, fn, arg);
  if (rc != 0)
    t_fail_at(file, line, "pthread_create: %d (%s)", rc, strerror(rc));
}

static inline void t_join_at(const char *file, int line, pthread_t th) {
  int rc = pthread_join(th, NULL);
  if (rc != 0)
    t_fail_at(file, line, "pthread_join: %d (%s)", rc, strerror(rc));
}

/* Runs fn(arg) in a thread of its own and waits for its end. */
#define t_run_thread(fn, arg)                                                                      \
  do {                                                                                             \
    pthread_t t_th_;                                                                               \
    t_start(&t_th_, (fn), (arg));                                                                  \
    t_join(t_th_);                                                                                 \
  } while (0)

/* Nonzero when the C library's own allocations (strdup here) land in hakmem, i.e. the
 * executable's malloc is hakmem's. Then glibc's private allocations (a thread's DTV kept with
 * its cached stack, stdio buffers) show up in live_blocks too. */
static inline int t_libc_is_hakmem(void) {
  char *s = strdup("hakmem");
  if (s == NULL)
    t_fail_at(__FILE__, __LINE__, "strdup failed");
  int owned = hak_owns(s);
  if (owned)
    hak_free(s);
  else
    free(s);
  return owned;
}

/* End-of-run check of a stress program, once all its threads have joined: every block it
 * allocated was freed, so live_blocks is back at its starting value. When libc allocates
 * through hakmem as well, glibc may keep (or release) a few private blocks per thread it
 * created, so a difference of at most `libc_slack` is tolerated in that case only. */
__attribute__((unused)) static void t_check_live_at(const char *file, int line, uint64_t start,
                                                    uint64_t libc_slack) {
  uint64_t now = t_live_blocks();
  uint64_t slack = t_libc_is_hakmem() ? libc_slack : 0;
  uint64_t diff = now > start ? now - start : start - now;
  if (diff > slack)
    t_fail_at(file, line,
              "live_blocks is %llu at the end, %llu at the start (tolerance %llu): blocks were "
              "lost or double counted",
              (unsigned long long)now, (unsigned long long)start, (unsigned long long)slack);
}

#define t_check_live(start, libc_slack) t_check_live_at(__FILE__, __LINE__, (start), (libc_slack))

/* The stats counters must move: a test that compares live_blocks cannot pass vacuously. */
__attribute__((unused)) static void
t_check_stats_moved_at(const char *file, int line, const hak_stats_t *before, uint64_t min_allocs) {
  hak_stats_t after;
  hak_stats_get(&after);
  if (after.allocs - before->allocs < min_allocs || after.frees - before->frees < min_allocs)
    t_fail_at(file, line,
              "hak_stats: allocs grew by %llu and frees by %llu, expected at least %llu each",
              (unsigned long long)(after.allocs - before->allocs),
              (unsigned long long)(after.frees - before->frees), (unsigned long long)min_allocs);
}

#define t_check_stats_moved(before, min_allocs)                                                    \
  t_check_stats_moved_at(__FILE__, __LINE__, (before), (min_allocs))

/* Each orphaning of a slab ends in one adoption or one last-free release once all its blocks
 * are back (with adoption off: a last-free release); blocks that libc keeps in hakmem may hold
 * back up to slack of them. */
__attribute__((unused)) static void t_check_orphans_at(const char *file, int line,
                                                       const hak_stats_t *before,
                                                       const hak_stats_t *after, uint64_t slack) {
  uint64_t orphaned = after->orphaned_slabs - before->orphaned_slabs;
  uint64_t adopted = after->adoptions - before->adoptions;
  uint64_t last_free = after->last_free_releases - before->last_free_releases;
  if (adopted + last_free > orphaned)
    t_fail_at(file, line, "adoptions %llu + last-free releases %llu exceed the %llu slabs orphaned",
              (unsigned long long)adopted, (unsigned long long)last_free,
              (unsigned long long)orphaned);
  if (adopted + last_free + slack < orphaned)
    t_fail_at(file, line,
              "%llu slabs were orphaned, but only %llu adopted and %llu released by their last "
              "free (tolerance %llu): orphans lost",
              (unsigned long long)orphaned, (unsigned long long)adopted,
              (unsigned long long)last_free, (unsigned long long)slack);
  if (hak_option_get("HAKMEM_TINY_SS_ADOPT") == 0 && adopted != 0)
    t_fail_at(file, line, "HAKMEM_TINY_SS_ADOPT=0, yet %llu slabs were adopted",
              (unsigned long long)adopted);
}

#define t_check_orphans(before, after, slack)                                                      \
  t_check_orphans_at(__FILE__, __LINE__, (before), (after), (slack))

#endif /* HAK_TEST_H */
