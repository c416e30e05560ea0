/* bench.h: what every workload in bench/ shares.
 *
 * The interface (`<name> THREADS [SCALE]`), the seeded xorshift rng, a timer, the checks that
 * make a broken allocator fail the run (stamps written into each block and verified before it
 * is freed; every failure prints one `<name>: ERROR ...` line to stderr and exits 1), a
 * single-producer single-consumer mailbox for handing blocks to another thread, and the one
 * `bench: name=... threads=N scale=S ops=N ...` line on stdout.
 *
 * Invariants: the work a workload does depends only on THREADS and SCALE, never on time or on
 * the allocator; the helpers here never call malloc themselves (the workloads own every
 * allocator call they make). Header only, everything `static inline`, one program per file. */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- arguments, errors, the result line ---- */

typedef struct bench_s {
  const char *name; /* workload name, the first word of every message */
  int threads;      /* THREADS, >= 1 */
  double scale;     /* SCALE, > 0; multiplies the fixed amount of work */
  double t0;        /* bench_now() at bench_init */
} bench_t;

static bench_t bench_cfg;

static inline double bench_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Reports a wrong result and ends the process at once: other threads may still be inside the
 * allocator, so no exit handlers run. */
__attribute__((format(printf, 1, 2), noreturn, cold)) static inline void bench_fail(
    const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: ERROR %s\n", bench_cfg.name, line);
  fflush(stderr);
  _exit(1);
}

__attribute__((noreturn, cold)) static inline void bench_usage(void) {
  fprintf(stderr, "usage: %s THREADS [SCALE]  (THREADS >= 1, SCALE > 0, default 1.0)\n",
          bench_cfg.name);
  exit(2);
}

static inline void bench_init(int argc, char **argv, const char *name) {
  bench_cfg.name = name;
  if (argc < 2 || argc > 3) bench_usage();
  char *end;
  errno = 0;
  long t = strtol(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || t < 1 || t > 4096) bench_usage();
  double s = 1.0;
  if (argc == 3) {
    s = strtod(argv[2], &end);
    if (*end != '\0' || !(s > 0) || !isfinite(s)) bench_usage();
  }
  bench_cfg.threads = (int)t;
  bench_cfg.scale = s;
  bench_cfg.t0 = bench_now();
}

/* BASE units of work at SCALE 1, scaled; at least 1. */
static inline long bench_scaled(double base) {
  double v = base * bench_cfg.scale;
  return v < 1 ? 1 : (long)(v + 0.5);
}

/* The result line; EXTRA ("key=value ...", or NULL) is appended after the common keys. */
static inline void bench_report(unsigned long long ops, const char *extra) {
  printf("bench: name=%s threads=%d scale=%g ops=%llu secs=%.3f%s%s\n", bench_cfg.name,
         bench_cfg.threads, bench_cfg.scale, ops, bench_now() - bench_cfg.t0,
         extra ? " " : "", extra ? extra : "");
}

/* ---- rng: xorshift64*, seeded from a thread (or stream) index ---- */

typedef struct bench_rng_s {
  uint64_t s; /* never 0 */
} bench_rng_t;

static inline bench_rng_t bench_rng(uint64_t index) {
  uint64_t z = (index + 1) * 0x9E3779B97F4A7C15ull; /* splitmix64 finaliser spreads the seed */
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (bench_rng_t){z ? z : 1};
}

static inline uint64_t bench_next(bench_rng_t *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n), n <= 2^32. */
static inline size_t bench_below(bench_rng_t *r, size_t n) {
  return (size_t)(((bench_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static inline size_t bench_range(bench_rng_t *r, size_t lo, size_t hi) {
  return lo + bench_below(r, hi - lo + 1);
}

/* ---- allocation with checks ---- */

static inline void *bench_malloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) bench_fail("malloc(%zu) returned NULL", n);
  return p;
}

static inline void *bench_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL) bench_fail("realloc(%p, %zu) returned NULL", p, n);
  return q;
}

/* The first member of a per-thread record: records in one array never share a pair of cache
 * lines (the unit the adjacent-line prefetcher moves), so a thread's writes to its own record
 * (counters, state) never slow the thread next to it. Without it, where the allocator happens
 * to place the array decides whether two threads' counters share a line: a cost that shows up
 * as the allocator's. */
#define BENCH_OWN_LINES _Alignas(128)

/* COUNT zeroed elements of SIZE bytes aligned to 128 bytes (for BENCH_OWN_LINES records and
 * _Alignas(64) members, which calloc does not promise to align). */
static inline void *bench_zalloc_lines(size_t count, size_t size) {
  void *p = NULL;
  if (posix_memalign(&p, 128, count * size) != 0) bench_fail("posix_memalign failed");
  return memset(p, 0, count * size);
}

/* The stamp of block P of N bytes: depends on the address, so two live blocks that overlap
 * overwrite each other's stamps and the check catches it. */
static inline uint64_t bench_tag(const void *p, size_t n) {
  uint64_t t = ((uint64_t)(uintptr_t)p ^ (uint64_t)n) * 0x9E3779B97F4A7C15ull;
  return t ^ (t >> 29);
}

/* Stamps block P of N >= 1 bytes: its first and last 8 bytes, or every byte below 16. */
static inline void bench_stamp(void *p, size_t n) {
  uint64_t t = bench_tag(p, n);
  if (n < 16) {
    memset(p, (int)(t & 0xff) | 1, n);
    return;
  }
  uint64_t u = ~t;
  memcpy(p, &t, 8);
  memcpy((char *)p + n - 8, &u, 8);
}

/* True if block P of N bytes still holds the stamp bench_stamp(P, N) wrote. */
static inline int bench_stamped(const void *p, size_t n) {
  uint64_t t = bench_tag(p, n), head, tail;
  if (n < 16) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
      if (b[i] != ((t & 0xff) | 1)) return 0;
    return 1;
  }
  memcpy(&head, p, 8);
  memcpy(&tail, (const char *)p + n - 8, 8);
  return head == t && tail == ~t;
}

static inline void bench_check(const void *p, size_t n) {
  if (!bench_stamped(p, n)) bench_fail("block %p of %zu bytes lost its contents", p, n);
}

/* Checks the stamp, then frees. */
static inline void bench_free(void *p, size_t n) {
  bench_check(p, n);
  free(p);
}

/* Self-describing blocks (N >= 16) for workloads that pass bare pointers around: the head
 * word is the size mixed with the address, the tail word its complement. */
#define BENCH_SELF_MAX ((size_t)1 << 40)

static inline void bench_stamp_self(void *p, size_t n) {
  uint64_t h = (uint64_t)n ^ bench_tag(p, 0), t = ~h;
  memcpy(p, &h, 8);
  memcpy((char *)p + n - 8, &t, 8);
}

/* Verifies a self-describing block and returns its size. */
static inline size_t bench_check_self(const void *p) {
  uint64_t h, t;
  memcpy(&h, p, 8);
  size_t n = (size_t)(h ^ bench_tag(p, 0));
  if (n < 16 || n > BENCH_SELF_MAX) bench_fail("block %p lost its head word", p);
  memcpy(&t, (const char *)p + n - 8, 8);
  if (t != ~h) bench_fail("block %p of %zu bytes lost its tail word", p, n);
  return n;
}

/* ---- threads ---- */

static inline void bench_spawn(pthread_t *t, void *(*fn)(void *), void *arg) {
  int e = pthread_create(t, NULL, fn, arg);
  if (e != 0) bench_fail("pthread_create: %s", strerror(e));
}

static inline void bench_join(pthread_t t) {
  int e = pthread_join(t, NULL);
  if (e != 0) bench_fail("pthread_join: %s", strerror(e));
}

/* ---- mailbox: one sender thread hands stamped blocks to one receiver thread ----
 * A ring of (pointer, size) pairs. The sender owns `head`, the receiver `tail`; a full ring
 * makes the sender drain its own mailbox while it waits, so a cycle of threads, each sending
 * to the next, cannot deadlock. `done` is set by the sender after its last send. */
#define BENCH_MBOX_CAP 1024 /* power of two */

typedef struct bench_blk_s {
  void *p;  /* the block */
  size_t n; /* its size, as stamped */
} bench_blk_t;

typedef struct bench_mbox_s {
  _Alignas(64) _Atomic size_t head; /* sends so far; written by the sender */
  _Alignas(64) _Atomic size_t tail; /* receives so far; written by the receiver */
  _Atomic int done;                 /* the sender has sent its last block */
  bench_blk_t slot[BENCH_MBOX_CAP]; /* slot[i % CAP] holds send i until received */
} bench_mbox_t;

/* Receiver: checks and frees every block waiting in M; returns how many. */
static inline size_t bench_mbox_drain(bench_mbox_t *m) {
  size_t tail = atomic_load_explicit(&m->tail, memory_order_relaxed);
  size_t head = atomic_load_explicit(&m->head, memory_order_acquire);
  for (size_t i = tail; i != head; i++) {
    bench_blk_t b = m->slot[i % BENCH_MBOX_CAP];
    bench_free(b.p, b.n);
  }
  atomic_store_explicit(&m->tail, head, memory_order_release);
  return head - tail;
}

/* Sender: puts a block into TO; while TO is full, drains OWN (the sender's own mailbox). */
static inline void bench_mbox_send(bench_mbox_t *to, bench_mbox_t *own, void *p, size_t n) {
  size_t head = atomic_load_explicit(&to->head, memory_order_relaxed);
  while (head - atomic_load_explicit(&to->tail, memory_order_acquire) >= BENCH_MBOX_CAP)
    if (bench_mbox_drain(own) == 0) sched_yield();
  to->slot[head % BENCH_MBOX_CAP] = (bench_blk_t){p, n};
  atomic_store_explicit(&to->head, head + 1, memory_order_release);
}

static inline void bench_mbox_close(bench_mbox_t *m) {
  atomic_store_explicit(&m->done, 1, memory_order_release);
}

/* Receiver, after its own last send: drains M until its sender has closed it and it is empty.
 * Returns the number of blocks freed. */
static inline size_t bench_mbox_finish(bench_mbox_t *m) {
  size_t total = 0;
  for (;;) {
    int done = atomic_load_explicit(&m->done, memory_order_acquire);
    size_t got = bench_mbox_drain(m);
    total += got;
    if (done && got == 0) return total;
    if (got == 0) sched_yield();
  }
}

#endif /* BENCH_H */
