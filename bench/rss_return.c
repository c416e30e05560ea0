/* rss_return THREADS [SCALE]: does freed memory go back to the OS once the program is idle?
 *
 * THREADS threads together allocate 1 GiB (times SCALE) of requested bytes in blocks of
 * 64..256 B, each thread an equal share, chaining its blocks into a list through the blocks
 * themselves (no pointer array to skew the RSS). With every thread's blocks live, the main
 * thread reads VmRSS (rss_before_free_kb); then each thread frees all of its own blocks and
 * exits; the main thread joins them, sleeps 2 s (fixed, whatever SCALE) without any allocator
 * call, and reads VmRSS (rss_after_idle_kb) and VmHWM (rss_peak_kb) from /proc/self/status
 * with open/read, which do not allocate. An allocator that returns freed memory at once, or in
 * the background within 2 s, ends near its start-up RSS; one that keeps it ends near the peak.
 *
 * Checks: blocks describe themselves (size mixed with the address in the head word, its
 * complement in the tail word), checked before every free. ops = mallocs + frees; bytes= is
 * the total requested. */
#include <fcntl.h>

#include "bench.h"

#define GIB ((double)(1ull << 30))
#define IDLE_SECONDS 2

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  int index;
  size_t budget;            /* bytes to request */
  unsigned long long count; /* blocks allocated */
  unsigned long long bytes; /* bytes requested: budget, rounded up to a whole block */
  pthread_barrier_t *live;  /* passed once every thread's blocks are allocated... */
  pthread_barrier_t *go;    /* ...and again once the main thread has read the RSS */
} worker_t;

/* The list link sits in the second word; the first and last words hold the stamp. */
static void **link_of(void *p) {
  return (void **)((char *)p + 8);
}

static void *allocate(worker_t *w) {
  bench_rng_t r = bench_rng((uint64_t)w->index);
  void *head = NULL;
  size_t got = 0;
  for (; got < w->budget; w->count++) {
    size_t n = bench_range(&r, 64, 256);
    void *p = bench_malloc(n);
    bench_stamp_self(p, n);
    *link_of(p) = head;
    head = p;
    got += n;
  }
  w->bytes = got;
  return head;
}

static void *work(void *arg) {
  worker_t *w = arg;
  void *head = allocate(w);
  pthread_barrier_wait(w->live);
  pthread_barrier_wait(w->go);
  while (head != NULL) {
    void *next = *link_of(head);
    bench_check_self(head);
    free(head);
    head = next;
  }
  return NULL;
}

/* The value in kB of KEY ("VmRSS:", "VmHWM:") in /proc/self/status; no allocator calls. */
static long status_kb(const char *key) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) bench_fail("cannot open /proc/self/status");
  ssize_t len = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (len <= 0) bench_fail("cannot read /proc/self/status");
  buf[len] = '\0';
  char *at = strstr(buf, key);
  if (at == NULL) bench_fail("no %s in /proc/self/status", key);
  return strtol(at + strlen(key), NULL, 10);
}

static void idle(void) {
  struct timespec t = {IDLE_SECONDS, 0};
  while (nanosleep(&t, &t) != 0) continue;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "rss_return");
  int n = bench_cfg.threads;
  size_t total = (size_t)bench_scaled(GIB);
  pthread_barrier_t live, go;
  pthread_barrier_init(&live, NULL, (unsigned)n + 1);
  pthread_barrier_init(&go, NULL, (unsigned)n + 1);
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++)
    w[t] = (worker_t){.index = t, .budget = total / (size_t)n, .live = &live, .go = &go};
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  pthread_barrier_wait(&live);
  long before = status_kb("VmRSS:");
  pthread_barrier_wait(&go);
  unsigned long long count = 0, bytes = 0;
  for (int t = 0; t < n; t++) {
    bench_join(w[t].thread);
    count += w[t].count;
    bytes += w[t].bytes;
  }
  idle();
  long after = status_kb("VmRSS:"), peak = status_kb("VmHWM:");
  free(w);
  char extra[160];
  snprintf(extra, sizeof extra, "bytes=%llu rss_peak_kb=%ld rss_before_free_kb=%ld "
           "rss_after_idle_kb=%ld", bytes, peak, before, after);
  bench_report(2 * count, extra);
  return 0;
}
