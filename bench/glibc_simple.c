/* glibc_simple THREADS [SCALE]: glibc bench-malloc-simple-shaped tight loops.
 *
 * Each of THREADS threads does ROUNDS (40,000 at SCALE 1) rounds; a round, for each size of
 * 16, 32, 48 and 64 bytes and each count of 25, 100 and 400 blocks, allocates that many blocks
 * of that size and frees them in allocation order. At most 400 blocks live per thread: the
 * per-thread cache's fast path, nothing shared.
 *
 * Checks: every block is stamped when allocated and checked before it is freed.
 * ops = mallocs + frees. */
#include "bench.h"

#define ROUNDS 40000.0
#define MAXCOUNT 400

static const size_t sizes[] = {16, 32, 48, 64};
static const int counts[] = {25, 100, 400};

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  long rounds;
} worker_t;

static void loop(void **slot, size_t size, int count) {
  for (int i = 0; i < count; i++) {
    slot[i] = bench_malloc(size);
    bench_stamp(slot[i], size);
  }
  for (int i = 0; i < count; i++) bench_free(slot[i], size);
}

static void *work(void *arg) {
  worker_t *w = arg;
  void *slot[MAXCOUNT];
  for (long r = 0; r < w->rounds; r++)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) loop(slot, sizes[s], counts[c]);
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "glibc_simple");
  int n = bench_cfg.threads;
  long rounds = bench_scaled(ROUNDS);
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) w[t].rounds = rounds;
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  for (int t = 0; t < n; t++) bench_join(w[t].thread);
  free(w);
  unsigned long long per_round = 0;
  for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) per_round += (unsigned)counts[c];
  per_round *= 2 * sizeof sizes / sizeof *sizes;
  bench_report(per_round * (unsigned long long)rounds * (unsigned long long)n, NULL);
  return 0;
}
