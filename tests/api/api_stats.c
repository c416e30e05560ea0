/* Workload for the statistics output (HAKMEM_STATS): tiny, mid and large blocks, blocks freed
 * by other threads, threads that exit, blocks left live at exit. Prints what it did as one
 * JSON line on stdout; tests/api/check_stats.py compares it with what hakmem wrote. */
#include <pthread.h>
#include <stddef.h>

#include "hak_test.h"

/* The layout that programs built against an earlier hakmem.h rely on: every field that
 * hak_stats_t and hak_class_stats_t ever had, at its offset. The lists in hakmem.h that make
 * the structs may only grow at their ends. */
/* clang-format off */
#define AT(type, field, offset) _Static_assert(offsetof(type, field) == (offset), #field " moved");
#define S(field, index) AT(hak_stats_t, field, 8 * (index))
#define C(field, index) AT(hak_class_stats_t, field, 8 * (index))
S(allocs, 0) S(frees, 1) S(remote_frees, 2) S(remote_drains, 3) S(drained_blocks, 4)
S(notifies, 5) S(refills, 6) S(spills, 7) S(adopt_tries, 8) S(adoptions, 9)
S(orphaned_slabs, 10) S(last_free_releases, 11) S(hint_hits, 12) S(hint_misses, 13)
S(registry_lookups, 14) S(ace_grows, 15) S(slabs_bound, 16) S(superslabs_mapped, 17)
S(superslabs_unmapped, 18) S(superslabs_reused, 19) S(large_allocs, 20) S(large_cache_hits, 21)
S(bytes_mapped, 22) S(bytes_purged, 23) S(live_blocks, 24) S(threads_started, 25)
S(threads_exited, 26) S(live_bytes, 27) S(large_frees, 28) S(large_live_bytes, 29)
S(peak_rss_bytes, 30)
C(block_size, 0) C(allocs, 1) C(frees, 2) C(remote_frees, 3) C(refills, 4) C(spills, 5)
C(tls_cap, 6) C(remote_drains, 7) C(drained_blocks, 8) C(adoptions, 9) C(hint_hits, 10)
C(hint_misses, 11) C(registry_lookups, 12) C(live_blocks, 13) C(live_bytes, 14)
_Static_assert(sizeof(((hak_class_stats_t *)0)->tls_cap) == 4, "tls_cap is a uint32_t");
#undef S
#undef C
#undef AT
/* clang-format on */

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
