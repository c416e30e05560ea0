/* cache_thrash THREADS [SCALE]: cache-thrash-shaped active false sharing.
 *
 * Each of THREADS threads does ITER (4,000 at SCALE 1) iterations: allocate an 8-byte object,
 * write every byte of it REPS (50,000) times, free it. The threads allocate at the same time,
 * so an allocator that hands threads objects on one cache line makes every write a cache-line
 * transfer between cores; one that keeps each thread's objects apart costs only the writes.
 *
 * Checks: each object's bytes hold their expected count after the writes. ops = mallocs +
 * frees; writes= counts the byte writes. */
#include "bench.h"

#define OBJ 8
#define ITER 4000.0
#define REPS 50000

typedef struct worker_s {
  pthread_t thread;
  long iter;
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
  for (long i = 0; i < w->iter; i++) {
    unsigned char *p = bench_malloc(OBJ);
    scribble(p);
    free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "cache_thrash");
  int n = bench_cfg.threads;
  long iter = bench_scaled(ITER);
  worker_t *w = calloc((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) w[t].iter = iter;
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  for (int t = 0; t < n; t++) bench_join(w[t].thread);
  free(w);
  unsigned long long objs = (unsigned long long)n * (unsigned long long)iter;
  char extra[64];
  snprintf(extra, sizeof extra, "writes=%llu", objs * OBJ * REPS);
  bench_report(2 * objs, extra);
  return 0;
}
