/* The body of cache_scratch and cache_thrash: THREADS threads each do ITER (4,000 at SCALE 1)
 * iterations of: allocate an 8-byte object, write every byte of it REPS (50,000) times, free it.
 * With `given` the main thread first allocates THREADS objects one after the other (so
 * neighbours share cache lines) and gives one to each thread, which frees it before its loop
 * (passive false sharing: cache_scratch); without, the threads only allocate at the same time
 * (active false sharing: cache_thrash).
 *
 * Checks: each object's bytes hold their expected count after the writes; a given object keeps
 * its stamp. ops = mallocs + frees; writes= counts the byte writes. */
#ifndef BENCH_FALSE_SHARING_H
#define BENCH_FALSE_SHARING_H

#include <stdbool.h>

#include "bench.h"

#define FS_OBJ 8
#define FS_ITER 4000.0
#define FS_REPS 50000

typedef struct fs_worker_s {
  pthread_t thread;
  long iter;
  unsigned char *given; /* the main thread's object, freed first; NULL when none */
} fs_worker_t;

/* Writes every byte of P (FS_OBJ bytes) FS_REPS times and checks the result. */
static void fs_scribble(volatile unsigned char *p) {
  for (int k = 0; k < FS_OBJ; k++) p[k] = (unsigned char)k;
  for (int rep = 0; rep < FS_REPS; rep++)
    for (int k = 0; k < FS_OBJ; k++) p[k]++;
  for (int k = 0; k < FS_OBJ; k++)
    if (p[k] != (unsigned char)(k + FS_REPS)) bench_fail("object %p byte %d changed", (void *)p, k);
}

static void *fs_work(void *arg) {
  fs_worker_t *w = arg;
  if (w->given != NULL) bench_free(w->given, FS_OBJ);
  for (long i = 0; i < w->iter; i++) {
    unsigned char *p = bench_malloc(FS_OBJ);
    fs_scribble(p);
    free(p);
  }
  return NULL;
}

static int fs_main(int argc, char **argv, const char *name, bool given) {
  bench_init(argc, argv, name);
  int n = bench_cfg.threads;
  long iter = bench_scaled(FS_ITER);
  fs_worker_t *w = calloc((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) {
    w[t].iter = iter;
    if (given) {
      w[t].given = bench_malloc(FS_OBJ);
      bench_stamp(w[t].given, FS_OBJ);
    }
  }
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, fs_work, &w[t]);
  for (int t = 0; t < n; t++) bench_join(w[t].thread);
  free(w);
  unsigned long long objs = (unsigned long long)n * (unsigned long long)iter;
  char extra[64];
  snprintf(extra, sizeof extra, "writes=%llu", objs * FS_OBJ * FS_REPS);
  bench_report(2 * (objs + (given ? (unsigned long long)n : 0)), extra);
  return 0;
}

#endif /* BENCH_FALSE_SHARING_H */
