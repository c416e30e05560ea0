/* Memory goes back to the OS: after freeing a few hundred MiB, hak_trim() (malloc_trim(0))
 * returns it at once; with HAKMEM_DECAY_MS set, the decay returns it without a trim call; and
 * free slabs beyond HAKMEM_SLAB_DIRTY_PCT of the bound ones go back at once.
 *
 * Usage: api_memory trim | decay | dirty-kept | dirty-returned
 *   trim:  free everything, hak_trim(), check purged bytes and (without a sanitizer) RSS;
 *   decay: free everything, wait past the decay, allocate a little (slow paths read the decay
 *          clock), check purged bytes grew without any trim call;
 *   dirty-*: (the decay off) keep 64 MiB live, churn 256 MiB beside it: with no dirty limit
 *          (HAKMEM_SLAB_DIRTY_PCT=0, dirty-kept) nothing is returned; with a share of 1%
 *          (dirty-returned) all but the 4 MiB floor of the freed slabs is, without a trim. */
#include <stdbool.h>

#include "hak_test.h"

#define MIB ((size_t)1 << 20)

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Allocates about total bytes in blocks of the given sizes, touching every page, then frees
 * them all in an order unlike the allocation order. */
static void churn(size_t total) {
  static const size_t sizes[] = {48, 200, 1000, 4096, 20000, 100000};
  size_t n = 0, cap = total / 48 + 16;
  void **blocks = malloc(cap * sizeof(void *)); /* the test's own bookkeeping */
  t_check(blocks != NULL, "bookkeeping");
  size_t bytes = 0;
  for (size_t i = 0; bytes < total && n < cap; i++) {
    size_t sz = sizes[i % (sizeof sizes / sizeof sizes[0])];
    void *p = T_MALLOC(sz);
    t_check(p != NULL, "allocation of %zu failed", sz);
    memset(p, 0x5a, sz);
    blocks[n++] = p;
    bytes += sz;
  }
  for (size_t i = 0; i < n; i += 2) T_FREE(blocks[i]);
  for (size_t i = 1; i < n; i += 2) T_FREE(blocks[i]);
  free(blocks);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "trim";
  T_FREE(T_MALLOC(16));
  hak_stats_t s0, s1;
  hak_trim();
  if (strncmp(mode, "dirty-", 6) == 0) {
    bool kept = strcmp(mode, "dirty-kept") == 0;
    void **live = malloc(65536 * sizeof(void *)); /* the test's own bookkeeping */
    t_check(live != NULL, "bookkeeping");
    for (int i = 0; i < 65536; i++) {
      live[i] = T_MALLOC(1000);
      t_check(live[i] != NULL, "live block %d", i);
      memset(live[i], 1, 1000);
    }
    hak_stats_get(&s0);
    churn(256 * MIB);
    hak_stats_get(&s1);
    size_t returned = (size_t)(s1.bytes_purged - s0.bytes_purged);
    if (kept)
      t_check(returned == 0, "%zu MiB returned with no dirty limit",
              returned / MIB);
    else
      t_check(returned >= 128 * MIB, "only %zu MiB returned with a dirty share of 1%%",
              returned / MIB);
    for (int i = 0; i < 65536; i++) T_FREE(live[i]);
    free(live);
    printf("api_memory %s ok\n", mode);
    return 0;
  }
  size_t rss0 = rss_bytes();
  hak_stats_get(&s0);
  churn(256 * MIB);
  if (strcmp(mode, "trim") == 0) {
    t_check(hak_trim() == 1, "hak_trim released nothing after 256 MiB were freed");
    hak_stats_get(&s1);
    t_check(s1.bytes_purged - s0.bytes_purged >= 200 * MIB,
            "only %zu MiB purged by the trim", (size_t)(s1.bytes_purged - s0.bytes_purged) / MIB);
#if !HAK_TEST_ASAN && !defined(__SANITIZE_THREAD__)
    size_t rss1 = rss_bytes();
    t_check(rss1 <= rss0 + 16 * MIB, "RSS %zu MiB after trim, %zu MiB before the churn",
            rss1 / MIB, rss0 / MIB);
#endif
    (void)rss0;
  } else {
    long decay = hak_option_get("HAKMEM_DECAY_MS");
    t_check(decay >= 0 && decay <= 1000, "run with a short HAKMEM_DECAY_MS (got %ld)", decay);
    struct timespec ts = {0, (decay * 2 + 50) * 1000000L};
    nanosleep(&ts, NULL);
    /* Slow paths read the decay clock: a few thousand refills of a fresh class. */
    for (int round = 0; round < 200; round++) {
      void *p[64];
      for (int i = 0; i < 64; i++) p[i] = T_MALLOC(3000 + (size_t)round);
      for (int i = 0; i < 64; i++) T_FREE(p[i]);
    }
    hak_stats_get(&s1);
    t_check(s1.bytes_purged - s0.bytes_purged >= 200 * MIB,
            "only %zu MiB returned by the decay", (size_t)(s1.bytes_purged - s0.bytes_purged) / MIB);
  }
  printf("api_memory %s ok\n", mode);
  return 0;
}
