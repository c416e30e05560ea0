/* churn SECONDS: the cross-thread churn that intermittent allocator races show up in, as a
 * program for scripts/hakmem-triage (run under LD_PRELOAD, not linked with hakmem).
 *
 * Short-lived producer threads each allocate one to three 64 KiB blocks and a few tiny ones,
 * fill them, hand them to four consumer threads through a bounded queue and exit; the
 * consumers check each block's fill and free it (a remote free, often the last block of a run
 * whose owner has exited); a trimmer thread calls malloc_trim(0) in a loop, so empty
 * SuperSlabs are unmapped at once. Up to 8 producers live at a time; new ones start until
 * SECONDS have passed. A correct allocator passes every run; a remote free that touches its
 * run after the last access it may make crashes some runs and not others.
 *
 * Exit status 0; a wrong fill prints one line and exits 1. */
#ifndef _GNU_SOURCE /* hak_test_target defines it; built by hand too */
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t_handoff.h"

enum { CONSUMERS = 4, ALIVE = 8, BIG = 64 * 1024, BIG_MAX = 3, TINY = 6 };

static t_handoff_t q = T_HANDOFF_INIT; /* items: tag = the fill byte */

static atomic_int stop_trimming;

static void produce(size_t size, unsigned char fill) {
  unsigned char *p = malloc(size);
  if (p == NULL) {
    fprintf(stderr, "churn: malloc(%zu) failed\n", size);
    exit(1);
  }
  memset(p, fill, size);
  t_handoff_put(&q, (t_item_t){p, size, fill});
}

static void *producer(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  unsigned nbig = 1 + (unsigned)(id * 2654435761u >> 7) % BIG_MAX;
  for (unsigned i = 0; i < TINY; i++) {
    if (i < nbig) produce(BIG, (unsigned char)(id + i));
    produce(16 + (id * 40503u + i * 977u) % 1000, (unsigned char)(id ^ i));
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  t_item_t it;
  while (t_handoff_take(&q, &it)) {
    const unsigned char *b = it.p;
    if (b[0] != it.tag || b[it.size - 1] != it.tag) {
      fprintf(stderr, "churn: block %p of %zu bytes lost its fill\n", (void *)it.p, it.size);
      exit(1);
    }
    free(it.p);
  }
  return NULL;
}

static void *trimmer(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_trimming)) malloc_trim(0);
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  pthread_t cons[CONSUMERS], trim, alive[ALIVE];
  for (int i = 0; i < CONSUMERS; i++) pthread_create(&cons[i], NULL, consumer, NULL);
  pthread_create(&trim, NULL, trimmer, NULL);
  double end = now() + seconds;
  uintptr_t started = 0;
  for (; started < ALIVE || now() < end; started++) {
    if (started >= ALIVE) pthread_join(alive[started % ALIVE], NULL);
    if (pthread_create(&alive[started % ALIVE], NULL, producer, (void *)started) != 0) {
      fprintf(stderr, "churn: pthread_create failed\n");
      return 1;
    }
  }
  for (uintptr_t i = started - ALIVE; i < started; i++) pthread_join(alive[i % ALIVE], NULL);
  t_handoff_close(&q);
  for (int i = 0; i < CONSUMERS; i++) pthread_join(cons[i], NULL);
  atomic_store(&stop_trimming, 1);
  pthread_join(trim, NULL);
  printf("churn: %lu producers in %.1f s\n", (unsigned long)started, seconds);
  return 0;
}
