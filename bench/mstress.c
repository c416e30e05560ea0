/* mstress THREADS [SCALE]: mstress-shaped churn with a shared pool and transient threads.
 *
 * 10 rounds; each round starts THREADS threads and joins them, so threads are short-lived.
 * A thread owns 5,000 slots and does STEPS (2,500,000 at SCALE 1) steps on random slots:
 * half allocate a new block into the slot (freeing what was there), three in ten free the
 * slot's block, and two in ten swap the slot with a random slot of a shared pool of 2,000
 * blocks (an atomic exchange), so a thread takes over and later frees blocks other threads,
 * some long exited, allocated. Sizes vary widely: 90% 16..256 B, 9% up to 4 KiB, 1% up to
 * 256 KiB. A thread frees its own slots before it exits; the pool lives on to the next round
 * and the main thread frees what is left in it at the end.
 *
 * Checks: blocks describe themselves (size mixed with the address in the head word, its
 * complement in the tail word), checked before every free; every block allocated is freed
 * exactly once (the counts must match). ops = mallocs + frees. */
#include "bench.h"

#define ROUNDS 10
#define SLOTS 5000
#define POOL 2000
#define STEPS 2500000.0

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  uint64_t stream;           /* rng stream: round * THREADS + thread */
  long steps;
  unsigned long long allocs; /* blocks allocated */
  unsigned long long frees;  /* blocks freed */
} worker_t;

static _Atomic(void *) pool[POOL];

static size_t mstress_size(bench_rng_t *r) {
  size_t pick = bench_below(r, 100);
  if (pick < 90) return bench_range(r, 16, 256);
  if (pick < 99) return bench_range(r, 257, 4096);
  return bench_range(r, 4097, 256 * 1024);
}

static void release(worker_t *w, void *p) {
  if (p == NULL) return;
  bench_check_self(p);
  free(p);
  w->frees++;
}

static void step(worker_t *w, bench_rng_t *r, void **slot) {
  size_t k = bench_below(r, SLOTS), pick = bench_below(r, 10);
  if (pick < 5) {
    release(w, slot[k]);
    size_t n = mstress_size(r);
    slot[k] = bench_malloc(n);
    bench_stamp_self(slot[k], n);
    w->allocs++;
  } else if (pick < 8) {
    release(w, slot[k]);
    slot[k] = NULL;
  } else {
    slot[k] = atomic_exchange(&pool[bench_below(r, POOL)], slot[k]);
  }
}

static void *work(void *arg) {
  worker_t *w = arg;
  bench_rng_t r = bench_rng(w->stream);
  void **slot = calloc(SLOTS, sizeof *slot);
  if (slot == NULL) bench_fail("slot array: NULL");
  for (long s = 0; s < w->steps; s++) step(w, &r, slot);
  for (int k = 0; k < SLOTS; k++) release(w, slot[k]);
  free(slot);
  return NULL;
}

static void round_of(worker_t *w, int n, int round, unsigned long long *allocs,
                     unsigned long long *frees) {
  for (int t = 0; t < n; t++) {
    w[t] = (worker_t){.stream = (uint64_t)round * (uint64_t)n + (uint64_t)t,
                      .steps = bench_scaled(STEPS)};
    bench_spawn(&w[t].thread, work, &w[t]);
  }
  for (int t = 0; t < n; t++) {
    bench_join(w[t].thread);
    *allocs += w[t].allocs;
    *frees += w[t].frees;
  }
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "mstress");
  int n = bench_cfg.threads;
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  unsigned long long allocs = 0, frees = 0;
  for (int round = 0; round < ROUNDS; round++) round_of(w, n, round, &allocs, &frees);
  free(w);
  for (int i = 0; i < POOL; i++) {
    void *p = atomic_exchange(&pool[i], NULL);
    if (p != NULL) {
      bench_check_self(p);
      free(p);
      frees++;
    }
  }
  if (allocs != frees) bench_fail("%llu blocks allocated, %llu freed", allocs, frees);
  bench_report(allocs + frees, NULL);
  return 0;
}
