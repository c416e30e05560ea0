/* The large cache's budget (src/large.c): HAKMEM_LARGE_CACHE_MB, or HAKMEM_LARGE_CACHE_PCT
 * percent of the live large bytes when that is more. Registered with HAKMEM_LARGE_CACHE_MB=0
 * and the decay off, once with a share (argument "kept": two freed 20 MiB blocks out of eight
 * stay cached, so the next two requests reuse them and map nothing) and once with
 * HAKMEM_LARGE_CACHE_PCT=0 (argument "returned": they go back to the OS at once, and the next
 * two requests map new ones). Either way, once nothing large is live the budget is 0 and the
 * cache is empty. */
#include <stdbool.h>
#include <string.h>

#include "hak_test.h"

#define MIB ((size_t)1 << 20)
#define BLOCKS 8

int main(int argc, char **argv) {
  t_check(argc == 2 && (!strcmp(argv[1], "kept") || !strcmp(argv[1], "returned")),
          "usage: api_large_budget kept|returned");
  bool kept = !strcmp(argv[1], "kept");
  hak_trim();
  void *b[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) {
    b[i] = T_MALLOC(20 * MIB);
    t_check(b[i] != NULL, "malloc(20 MiB)");
    memset(b[i], i, 4096);
  }
  hak_stats_t before = t_stats();
  T_FREE(b[0]);
  T_FREE(b[1]);
  hak_stats_t freed = t_stats();
  uint64_t returned = before.bytes_mapped - freed.bytes_mapped;
  if (kept)
    t_check(returned == 0, "with a share of the live bytes, the frees returned %llu bytes",
            (unsigned long long)returned);
  else
    t_check(returned >= 40 * MIB, "with no budget, the frees returned only %llu bytes",
            (unsigned long long)returned);
  b[0] = T_MALLOC(20 * MIB);
  b[1] = T_MALLOC(20 * MIB);
  t_check(b[0] != NULL && b[1] != NULL, "malloc(20 MiB) again");
  uint64_t hits = t_stats().large_cache_hits - freed.large_cache_hits;
  t_check(hits == (kept ? 2u : 0u), "%llu cache hits, expected %u", (unsigned long long)hits,
          kept ? 2u : 0u);
  for (int i = 0; i < BLOCKS; i++) T_FREE(b[i]);
  hak_stats_t end = t_stats();
  t_check(end.large_live_bytes == 0, "live large bytes %llu at the end",
          (unsigned long long)end.large_live_bytes);
  t_check(end.bytes_mapped + 8 * 20 * MIB <= before.bytes_mapped + 20 * MIB,
          "nothing large is live but %llu of %llu bytes are still mapped",
          (unsigned long long)end.bytes_mapped, (unsigned long long)before.bytes_mapped);
  printf("api_large_budget %s ok\n", argv[1]);
  return 0;
}
