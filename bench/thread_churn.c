/* thread_churn THREADS [SCALE]: many short-lived threads, each allocating a little.
 *
 * The main thread creates TOTAL (25,000 at SCALE 1) threads in waves of THREADS, joining each
 * wave before starting the next. A thread allocates 300 blocks of 16..256 bytes: four in five
 * go through a ring of 16 live blocks (each freed by the thread when its slot comes round
 * again, the rest at the end), one in five is kept for the main thread, which frees it after
 * the join, so every thread's allocator state is set up, used, left with foreign frees
 * pending and torn down.
 *
 * Checks: every block is stamped when allocated and checked before it is freed, by the thread
 * itself or by the main thread. ops = mallocs + frees. */
#include "bench.h"

#define TOTAL 25000.0
#define ALLOCS 300
#define RING 16
#define KEEP (ALLOCS / 5) /* blocks left to the main thread */

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  uint64_t stream;        /* rng stream: the thread's number */
  bench_blk_t keep[KEEP]; /* freed by the main thread after the join */
} worker_t;

static void *work(void *arg) {
  worker_t *w = arg;
  bench_rng_t r = bench_rng(w->stream);
  bench_blk_t ring[RING] = {{NULL, 0}};
  int kept = 0, used = 0;
  for (int i = 0; i < ALLOCS; i++) {
    bench_blk_t *b = i % 5 == 4 ? &w->keep[kept++] : &ring[used++ % RING];
    if (b->p != NULL) bench_free(b->p, b->n);
    b->n = bench_range(&r, 16, 256);
    b->p = bench_malloc(b->n);
    bench_stamp(b->p, b->n);
  }
  for (int k = 0; k < RING; k++)
    if (ring[k].p != NULL) bench_free(ring[k].p, ring[k].n);
  return NULL;
}

static void wave(worker_t *w, int n, uint64_t first) {
  for (int t = 0; t < n; t++) {
    w[t].stream = first + (uint64_t)t;
    memset(w[t].keep, 0, sizeof w[t].keep);
    bench_spawn(&w[t].thread, work, &w[t]);
  }
  for (int t = 0; t < n; t++) {
    bench_join(w[t].thread);
    for (int k = 0; k < KEEP; k++) bench_free(w[t].keep[k].p, w[t].keep[k].n);
  }
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "thread_churn");
  int n = bench_cfg.threads;
  long total = bench_scaled(TOTAL);
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (long done = 0; done < total; done += n)
    wave(w, total - done < n ? (int)(total - done) : n, (uint64_t)done);
  free(w);
  char extra[64];
  snprintf(extra, sizeof extra, "threads_created=%ld", total);
  bench_report(2ull * ALLOCS * (unsigned long long)total, extra);
  return 0;
}
