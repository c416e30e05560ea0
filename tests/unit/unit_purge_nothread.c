/* The purge thread cannot be made (pthread_create fails, as it does at a thread limit): hakmem
 * goes on as with HAKMEM_PURGE_THREAD=0. One try turns the state OFF, HAKMEM_VERBOSE prints one
 * note (CMake checks it appears once), no thread appears, and freed memory still goes back
 * through the decay on slow paths.
 *
 * The pthread_create below stands in for the C library's: hakmem is linked in statically, so
 * its call binds to this one. The program makes no thread of its own. CMake runs it with
 * HAKMEM_VERBOSE=1 HAKMEM_DECAY_MS=50. */
#include <errno.h>

#include "hak_proc.h"
#include "unit.h"

#define MIB ((size_t)1 << 20)

static int creates; /* calls of pthread_create */

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  (void)t, (void)attr, (void)fn, (void)arg;
  creates++;
  return EAGAIN;
}

static void large_free(void) {
  void *p = hak_malloc(1 << 20);
  T_CHECK(p != NULL, "hak_malloc(1 MiB) failed");
  hak_free(p);
}

/* 32 MiB of 512-byte blocks, freed: runs go back to their SuperSlabs, dirty. */
#define BLOCKS (32 * MIB / 512)
static void *blocks[BLOCKS];

static void churn(void) {
  for (size_t i = 0; i < BLOCKS; i++) {
    blocks[i] = hak_malloc(512);
    T_CHECK(blocks[i] != NULL, "hak_malloc(512) failed");
  }
  for (size_t i = 0; i < BLOCKS; i++) hak_free(blocks[i]);
}

/* Slow paths read the decay clock: refills of a class the churn did not use. */
static void slow_paths(void) {
  for (int round = 0; round < 200; round++) {
    void *p[64];
    for (int i = 0; i < 64; i++) p[i] = hak_malloc(3000 + (size_t)round);
    for (int i = 0; i < 64; i++) hak_free(p[i]);
  }
}

int main(void) {
  int tasks0 = t_tasks(NULL, NULL);
  T_CHECK(hak_option_get("HAKMEM_PURGE_THREAD") == 1, "HAKMEM_PURGE_THREAD is not 1");
  t_thread_cache();
  large_free();
  T_CHECK(creates == 1, "pthread_create called %d times", creates);
  T_CHECK(atomic_load(&hak_purge_state) == HAK_PURGE_OFF, "state %u after the failed start",
          atomic_load(&hak_purge_state));
  hak_stats_t s0 = t_stats();
  churn();
  large_free();
  T_CHECK(creates == 1, "pthread_create tried again: %d calls", creates);
  struct timespec t = {0, 150 * 1000000L};
  nanosleep(&t, NULL);
  slow_paths();
  hak_stats_t s1 = t_stats();
  T_CHECK(s1.bytes_purged - s0.bytes_purged >= 16 * MIB,
          "only %llu bytes returned by the "
          "slow-path decay",
          (unsigned long long)(s1.bytes_purged - s0.bytes_purged));
  T_CHECK(s1.purge_passes == 0, "purge passes without a purge thread");
  T_CHECK(t_tasks(NULL, NULL) == tasks0, "%d threads, %d at the start", t_tasks(NULL, NULL),
          tasks0);
  printf("unit_purge_nothread ok\n");
  return 0;
}
