/* larson THREADS [ROUNDS] [OPS]: larson-shaped server churn with cross-thread frees.
 *
 * THREADS workers each own an array of 1,000 slots filled with blocks of 16..1024 bytes. A
 * worker does OPS replacements (free a random slot's block, allocate a new one into it) and
 * exits; its array goes to the next round's worker, which frees blocks a thread that has now
 * exited allocated. ROUNDS rounds of THREADS workers: a fixed amount of work. Prints the
 * throughput in operations per second (one malloc + one free is one operation). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SLOTS 1000

typedef struct worker_s {
  pthread_t thread;
  void *slot[SLOTS];
  uint64_t seed;
  long ops;
} worker_t;

static uint64_t rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *work(void *arg) {
  worker_t *w = arg;
  for (long i = 0; i < w->ops; i++) {
    uint64_t r = rng(&w->seed);
    size_t k = (size_t)(r % SLOTS);
    free(w->slot[k]);
    w->slot[k] = malloc(16 + (size_t)((r >> 32) % 1009));
    if (w->slot[k] == NULL) abort();
    *(char *)w->slot[k] = 1;
  }
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  int rounds = argc > 2 ? atoi(argv[2]) : 20;
  long ops = argc > 3 ? atol(argv[3]) : 200000;
  if (threads < 1 || rounds < 1 || ops < 1) return 2;
  worker_t *w = calloc((size_t)threads, sizeof *w);
  if (w == NULL) return 1;
  for (int t = 0; t < threads; t++) {
    w[t].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
    for (int k = 0; k < SLOTS; k++) w[t].slot[k] = malloc(16 + (size_t)(k * 31 % 1009));
  }
  double t0 = now();
  for (int r = 0; r < rounds; r++) {
    for (int t = 0; t < threads; t++) {
      w[t].ops = ops;
      if (pthread_create(&w[t].thread, NULL, work, &w[t]) != 0) return 1;
    }
    for (int t = 0; t < threads; t++) pthread_join(w[t].thread, NULL);
    /* The arrays move on: worker t's blocks go to worker t + 1 of the next round. */
    void *first[SLOTS];
    for (int k = 0; k < SLOTS; k++) first[k] = w[0].slot[k];
    for (int t = 0; t + 1 < threads; t++)
      for (int k = 0; k < SLOTS; k++) w[t].slot[k] = w[t + 1].slot[k];
    for (int k = 0; k < SLOTS; k++) w[threads - 1].slot[k] = first[k];
  }
  double dt = now() - t0;
  for (int t = 0; t < threads; t++)
    for (int k = 0; k < SLOTS; k++) free(w[t].slot[k]);
  free(w);
  printf("larson: %d threads, %.0f ops/s\n", threads, (double)threads * rounds * ops / dt);
  return 0;
}
