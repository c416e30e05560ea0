/* alloc_test THREADS [SCALE]: alloc-test-shaped random sizes with a working set per thread.
 *
 * THREADS threads in a ring. Each keeps a working set of 4,096 blocks of 8 B..4 KiB (sizes
 * log-uniform: a power of two 2^3..2^12 drawn first, then a size up to it) and does STEPS
 * (16,000,000 at SCALE 1) steps: replace a random block by a new one of a random size. The
 * old block is freed by this thread, or, one time in seven (about 14%), handed to the next
 * thread in the ring, which frees it (it drains its hand-offs every 64 steps).
 *
 * Checks: every block is stamped when allocated and checked before it is freed, by whichever
 * thread frees it. ops = mallocs + frees. */
#include "bench.h"

#define SET 4096
#define STEPS 16000000.0
#define HANDOFF 7 /* one old block in HANDOFF goes to the next thread */

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  int index;
  long steps;
  bench_mbox_t *inbox; /* blocks the previous thread hands to this one */
  bench_mbox_t *next;  /* the next thread's inbox */
  bench_blk_t set[SET];
} worker_t;

static void put(bench_blk_t *b, bench_rng_t *r) {
  size_t top = (size_t)1 << bench_range(r, 3, 12);
  b->n = bench_range(r, 8, top);
  b->p = bench_malloc(b->n);
  bench_stamp(b->p, b->n);
}

static void step(worker_t *w, bench_rng_t *r) {
  bench_blk_t *b = &w->set[bench_below(r, SET)];
  if (bench_below(r, HANDOFF) == 0)
    bench_mbox_send(w->next, w->inbox, b->p, b->n);
  else
    bench_free(b->p, b->n);
  put(b, r);
}

static void *work(void *arg) {
  worker_t *w = arg;
  bench_rng_t r = bench_rng((uint64_t)w->index);
  for (int k = 0; k < SET; k++) put(&w->set[k], &r);
  for (long s = 0; s < w->steps; s++) {
    step(w, &r);
    if (s % 64 == 63) bench_mbox_drain(w->inbox);
  }
  for (int k = 0; k < SET; k++) bench_free(w->set[k].p, w->set[k].n);
  bench_mbox_close(w->next);
  bench_mbox_finish(w->inbox);
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "alloc_test");
  int n = bench_cfg.threads;
  long steps = bench_scaled(STEPS);
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  bench_mbox_t *box = bench_zalloc_lines((size_t)n, sizeof *box);
  for (int t = 0; t < n; t++)
    w[t] = (worker_t){.index = t, .steps = steps, .inbox = &box[t], .next = &box[(t + 1) % n]};
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  for (int t = 0; t < n; t++) bench_join(w[t].thread);
  free(box);
  free(w);
  bench_report(2ull * (unsigned long long)n * (SET + (unsigned long long)steps), NULL);
  return 0;
}
