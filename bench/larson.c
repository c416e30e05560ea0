/* larson THREADS [SCALE]: larson-shaped server churn with cross-thread frees.
 *
 * THREADS workers each own an array of 1,000 slots filled with blocks of 16..1,024 bytes. A
 * worker does OPS (4,000,000 at SCALE 1) replacements (free a random slot's block, allocate a
 * new one of a random size into it) and exits; its array goes to the next round's worker,
 * so that worker frees blocks a thread that has now exited allocated. 20 rounds of THREADS
 * workers each, the work fixed by THREADS and SCALE.
 *
 * Checks: every block is stamped when allocated and checked before it is freed.
 * ops = mallocs + frees. */
#include "bench.h"

#define SLOTS 1000
#define ROUNDS 20
#define OPS 4000000.0

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  bench_rng_t rng; /* carried from round to round with the worker's index */
  long ops;
  bench_blk_t *slot; /* SLOTS blocks; the array moves to another worker between rounds */
} worker_t;

static void put(bench_blk_t *b, bench_rng_t *r) {
  b->n = bench_range(r, 16, 1024);
  b->p = bench_malloc(b->n);
  bench_stamp(b->p, b->n);
}

static void *work(void *arg) {
  worker_t *w = arg;
  for (long i = 0; i < w->ops; i++) {
    bench_blk_t *b = &w->slot[bench_below(&w->rng, SLOTS)];
    bench_free(b->p, b->n);
    put(b, &w->rng);
  }
  return NULL;
}

/* Worker t's array goes to worker t + 1 (the last one's to worker 0). */
static void rotate(worker_t *w, int n) {
  bench_blk_t *last = w[n - 1].slot;
  for (int t = n - 1; t > 0; t--) w[t].slot = w[t - 1].slot;
  w[0].slot = last;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "larson");
  int n = bench_cfg.threads;
  long ops = bench_scaled(OPS);
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) {
    w[t].rng = bench_rng((uint64_t)t);
    w[t].ops = ops;
    w[t].slot = bench_malloc(SLOTS * sizeof *w[t].slot);
    for (int k = 0; k < SLOTS; k++) put(&w[t].slot[k], &w[t].rng);
  }
  for (int round = 0; round < ROUNDS; round++) {
    for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
    for (int t = 0; t < n; t++) bench_join(w[t].thread);
    rotate(w, n);
  }
  for (int t = 0; t < n; t++) {
    for (int k = 0; k < SLOTS; k++) bench_free(w[t].slot[k].p, w[t].slot[k].n);
    free(w[t].slot);
  }
  free(w);
  bench_report(2ull * (unsigned long long)n * (SLOTS + (unsigned long long)ROUNDS * ops), NULL);
  return 0;
}
