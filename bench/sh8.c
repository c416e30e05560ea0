/* sh8 THREADS [SCALE]: sh8bench-shaped small-block churn with cross-thread frees.
 *
 * THREADS threads in a ring. Each does ROUNDS (8,000 at SCALE 1) rounds: it allocates BATCH
 * (2,048) blocks with sizes drawn from a histogram weighted to small sizes (70% 1..128 B, 25%
 * 129..512 B, 5% 513..1,000 B), frees half of them itself (every other block, walking back or
 * forth by round), and hands the other half to the next thread in the ring, which frees them;
 * meanwhile it frees the blocks its predecessor handed to it. Every block is stamped when
 * allocated and checked before it is freed, by whichever thread frees it.
 * ops = mallocs + frees. */
#include "bench.h"

#define BATCH 2048
#define ROUNDS 8000.0

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  int index;
  long rounds;
  bench_mbox_t *inbox; /* blocks the previous thread hands to this one */
  bench_mbox_t *next;  /* the next thread's inbox */
} worker_t;

static size_t sh8_size(bench_rng_t *r) {
  size_t pick = bench_below(r, 100);
  if (pick < 70) return bench_range(r, 1, 128);
  if (pick < 95) return bench_range(r, 129, 512);
  return bench_range(r, 513, 1000);
}

static void fill(bench_blk_t *b, bench_rng_t *r) {
  for (int i = 0; i < BATCH; i++) {
    b[i].n = sh8_size(r);
    b[i].p = bench_malloc(b[i].n);
    bench_stamp(b[i].p, b[i].n);
  }
}

/* Frees the odd blocks (forward or backward) and sends the even ones to the next thread. */
static void release(worker_t *w, bench_blk_t *b, long round) {
  for (int k = 0; k < BATCH / 2; k++) {
    int i = round & 1 ? 2 * k + 1 : BATCH - 1 - 2 * k;
    bench_free(b[i].p, b[i].n);
  }
  for (int i = 0; i < BATCH; i += 2) bench_mbox_send(w->next, w->inbox, b[i].p, b[i].n);
  bench_mbox_drain(w->inbox);
}

static void *work(void *arg) {
  worker_t *w = arg;
  bench_rng_t r = bench_rng((uint64_t)w->index);
  bench_blk_t *b = bench_malloc(BATCH * sizeof *b);
  for (long round = 0; round < w->rounds; round++) {
    fill(b, &r);
    release(w, b, round);
  }
  free(b);
  bench_mbox_close(w->next);
  bench_mbox_finish(w->inbox);
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "sh8");
  int n = bench_cfg.threads;
  long rounds = bench_scaled(ROUNDS);
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  bench_mbox_t *box = bench_zalloc_lines((size_t)n, sizeof *box);
  for (int t = 0; t < n; t++)
    w[t] = (worker_t){.index = t, .rounds = rounds, .inbox = &box[t], .next = &box[(t + 1) % n]};
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  for (int t = 0; t < n; t++) bench_join(w[t].thread);
  free(box);
  free(w);
  bench_report(2ull * BATCH * (unsigned long long)rounds * (unsigned long long)n, NULL);
  return 0;
}
