/* cache_scratch THREADS [SCALE]: cache-scratch-shaped passive false sharing.
 *
 * The main thread allocates THREADS 8-byte objects one after the other (so neighbours share
 * cache lines) and gives one to each thread. A thread frees the object it was given, then does
 * ITER (4,000 at SCALE 1) iterations: allocate an 8-byte object, write every byte of it REPS
 * (50,000) times, free it. An allocator that hands a thread back the block it just freed, the
 * main thread's, makes the threads write one cache line; one that keeps a thread's frees of
 * foreign blocks away from its own allocations costs only the writes.
 *
 * Checks: the given object keeps its stamp; each object's bytes hold their expected count
 * after the writes. ops = mallocs + frees; writes= counts the byte writes. */
#include "bench.h"

#define OBJ 8
#define ITER 4000.0
#define REPS 50000

typedef struct worker_s {
  pthread_t thread;
  long iter;
  unsigned char *given; /* the main thread's object, freed first */
} worker_t;

/* Writes every byte of P (OBJ bytes) REPS times and checks the result. */
static void scribble(volatile unsigned char *p) {
  for (int k = 0; k < OBJ; k++) p[k] = (unsigned char)k;
  for (int rep = 0; rep < REPS; rep++)
    for (int k = 0; k < OBJ; k++) p[k]++;
  for (int k = 0; k < OBJ; k++)
    if (p[k] != (unsigned char)(k + REPS)) bench_fail("object %p byte %d changed", (void *)p, k);
}

static void *work(void *arg) {
  worker_t *w = arg;
  bench_free(w->given, OBJ);
  for (long i = 0; i < w->iter; i++) {
    unsigned char *p = bench_malloc(OBJ);
    scribble(p);
    free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "cache_scratch");
  int n = bench_cfg.threads;
  long iter = bench_scaled(ITER);
  worker_t *w = calloc((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) {
    w[t].iter = iter;
    w[t].given = bench_malloc(OBJ);
    bench_stamp(w[t].given, OBJ);
  }
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  for (int t = 0; t < n; t++) bench_join(w[t].thread);
  free(w);
  unsigned long long objs = (unsigned long long)n * (unsigned long long)iter;
  char extra[64];
  snprintf(extra, sizeof extra, "writes=%llu", objs * OBJ * REPS);
  bench_report(2 * (objs + (unsigned long long)n), extra);
  return 0;
}
