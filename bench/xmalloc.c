/* xmalloc PAIRS [BLOCKS]: one thread allocates, another frees (xmalloc-shaped).
 *
 * PAIRS producer/consumer pairs. Each producer allocates BLOCKS (default 10,000,000) blocks
 * of 16..128 bytes in batches of 256 and hands each batch to its consumer through a small
 * lock-free ring of batches; the consumer frees every block. A fixed amount of work; prints
 * frees per second. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 256
#define RING 64

typedef struct pair_s {
  pthread_t prod, cons;
  long blocks;
  void *batch[RING][BATCH];
  _Atomic(long) head, tail; /* batches produced, consumed */
} pair_t;

static void *produce(void *arg) {
  pair_t *p = arg;
  long nb = p->blocks / BATCH;
  for (long b = 0; b < nb; b++) {
    while (b - atomic_load_explicit(&p->tail, memory_order_acquire) >= RING) sched_yield();
    void **slot = p->batch[b % RING];
    for (int i = 0; i < BATCH; i++) {
      slot[i] = malloc(16 + (size_t)((b + i) % 8) * 16);
      if (slot[i] == NULL) abort();
      *(char *)slot[i] = 1;
    }
    atomic_store_explicit(&p->head, b + 1, memory_order_release);
  }
  return NULL;
}

static void *consume(void *arg) {
  pair_t *p = arg;
  long nb = p->blocks / BATCH;
  for (long b = 0; b < nb; b++) {
    while (atomic_load_explicit(&p->head, memory_order_acquire) <= b) sched_yield();
    void **slot = p->batch[b % RING];
    for (int i = 0; i < BATCH; i++) free(slot[i]);
    atomic_store_explicit(&p->tail, b + 1, memory_order_release);
  }
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int pairs = argc > 1 ? atoi(argv[1]) : 1;
  long blocks = argc > 2 ? atol(argv[2]) : 10000000;
  if (pairs < 1 || blocks < BATCH) return 2;
  pair_t *p = calloc((size_t)pairs, sizeof *p);
  if (p == NULL) return 1;
  double t0 = now();
  for (int i = 0; i < pairs; i++) {
    p[i].blocks = blocks;
    pthread_create(&p[i].prod, NULL, produce, &p[i]);
    pthread_create(&p[i].cons, NULL, consume, &p[i]);
  }
  for (int i = 0; i < pairs; i++) {
    pthread_join(p[i].prod, NULL);
    pthread_join(p[i].cons, NULL);
  }
  double dt = now() - t0;
  printf("xmalloc: %d pairs, %.0f frees/s\n", pairs,
         (double)pairs * (blocks / BATCH * BATCH) / dt);
  free(p);
  return 0;
}
