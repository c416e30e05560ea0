/* xmalloc THREADS [SCALE]: one thread allocates, another frees (xmalloc-shaped).
 *
 * THREADS is the number of producer/consumer pairs (2 * THREADS threads). Each producer
 * allocates BLOCKS (24,000,000 at SCALE 1) blocks of 16..128 bytes in batches of 256 and hands
 * each batch to its consumer through a lock-free ring of 64 batches; the consumer frees every
 * block. Every block freed is one another thread allocated.
 *
 * Checks: the producer stamps every block, the consumer checks the stamp before freeing it.
 * ops = mallocs + frees. */
#include "bench.h"

#define BATCH 256
#define RING 64
#define BLOCKS 24000000.0

typedef struct pair_s {
  pthread_t prod, cons;
  int index;
  long batches;                     /* batches to pass */
  bench_blk_t batch[RING][BATCH];   /* batch b sits in batch[b % RING] */
  _Alignas(64) _Atomic long head;   /* batches produced; written by the producer */
  _Alignas(64) _Atomic long tail;   /* batches consumed; written by the consumer */
} pair_t;

static void *produce(void *arg) {
  pair_t *p = arg;
  bench_rng_t r = bench_rng((uint64_t)p->index);
  for (long b = 0; b < p->batches; b++) {
    while (b - atomic_load_explicit(&p->tail, memory_order_acquire) >= RING) sched_yield();
    bench_blk_t *slot = p->batch[b % RING];
    for (int i = 0; i < BATCH; i++) {
      slot[i].n = bench_range(&r, 16, 128);
      slot[i].p = bench_malloc(slot[i].n);
      bench_stamp(slot[i].p, slot[i].n);
    }
    atomic_store_explicit(&p->head, b + 1, memory_order_release);
  }
  return NULL;
}

static void *consume(void *arg) {
  pair_t *p = arg;
  for (long b = 0; b < p->batches; b++) {
    while (atomic_load_explicit(&p->head, memory_order_acquire) <= b) sched_yield();
    bench_blk_t *slot = p->batch[b % RING];
    for (int i = 0; i < BATCH; i++) bench_free(slot[i].p, slot[i].n);
    atomic_store_explicit(&p->tail, b + 1, memory_order_release);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "xmalloc");
  int n = bench_cfg.threads;
  long batches = (bench_scaled(BLOCKS) + BATCH - 1) / BATCH;
  pair_t *p = bench_zalloc_lines((size_t)n, sizeof *p);
  for (int i = 0; i < n; i++) {
    p[i].index = i;
    p[i].batches = batches;
    bench_spawn(&p[i].prod, produce, &p[i]);
    bench_spawn(&p[i].cons, consume, &p[i]);
  }
  for (int i = 0; i < n; i++) {
    bench_join(p[i].prod);
    bench_join(p[i].cons);
  }
  free(p);
  bench_report(2ull * BATCH * (unsigned long long)batches * (unsigned long long)n, NULL);
  return 0;
}
