/* Workload for the statistics output (HAKMEM_STATS): tiny, mid and large blocks, blocks freed
 * by other threads, threads that exit, blocks left live at exit. Prints what it did as one
 * JSON line on stdout; tests/api/check_stats.py compares it with what hakmem wrote. */
#include <pthread.h>

#include "hak_test.h"

#define N_LOCAL 3000
#define N_ROUNDS 4
#define N_REMOTE 200
#define N_LARGE 4
#define N_LIVE 20

static void *remote[N_REMOTE];

/* Allocates once first, so the thread has a cache of its own (a thread that only frees never
 * gets one), then frees main's blocks. */
static void *free_remote(void *arg) {
  (void)arg;
  void *own = T_MALLOC(32);
  T_CHECK(own != NULL, "malloc");
  T_FREE(own);
  for (int i = 0; i < N_REMOTE; i++) T_FREE(remote[i]);
  return NULL;
}

int main(void) {
  for (int i = 0; i < N_LOCAL; i++) {
    void *p = T_MALLOC((size_t)(16 + i % 2000));
    T_CHECK(p != NULL, "malloc");
    T_FREE(p);
  }
  for (int round = 0; round < N_ROUNDS; round++) {
    for (int i = 0; i < N_REMOTE; i++) T_CHECK((remote[i] = T_MALLOC(100)) != NULL, "malloc");
    pthread_t t;
    T_CHECK(pthread_create(&t, NULL, free_remote, NULL) == 0, "pthread_create");
    T_CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    /* Refills of the same class drain the remote queues the thread filled. */
    for (int i = 0; i < N_REMOTE; i++) T_CHECK((remote[i] = T_MALLOC(100)) != NULL, "malloc");
    for (int i = 0; i < N_REMOTE; i++) T_FREE(remote[i]);
  }
  for (int i = 0; i < N_LARGE; i++) {
    void *p = T_MALLOC((size_t)1 << 20);
    T_CHECK(p != NULL, "large malloc");
    memset(p, 1, 4096);
    T_FREE(p);
  }
  for (int i = 0; i < N_LIVE; i++) T_CHECK(T_MALLOC(48) != NULL, "malloc"); /* left live */
  printf("{\"allocs\": %d, \"frees\": %d, \"remote_frees\": %d, \"large_allocs\": %d, "
         "\"live_blocks\": %d, \"threads\": %d}\n",
         N_LOCAL + N_ROUNDS * (2 * N_REMOTE + 1) + N_LARGE + N_LIVE,
         N_LOCAL + N_ROUNDS * (2 * N_REMOTE + 1) + N_LARGE, N_ROUNDS * N_REMOTE, N_LARGE, N_LIVE,
         N_ROUNDS);
  return 0;
}
