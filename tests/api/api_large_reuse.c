/* Large blocks reuse freed mappings of other sizes (src/large.c):
 *   - a smaller request takes a larger cached mapping, whose tail goes back to the OS (the
 *     block's usable size is near the request, not the old mapping's);
 *   - a larger request takes a cached mapping of at least half its size, moved and grown: the
 *     old pages keep their contents at the new place, the growth reads as zero, and calloc of
 *     such a reused mapping is all zero;
 *   - every reuse counts as a large cache hit; a request with no cached mapping of half its
 *     size maps a new one (no hit).
 * The decay is off (HAKMEM_DECAY_MS, set by the test's registration) so the cache keeps what
 * the test frees. */
#include "hak_test.h"

#define MIB ((size_t)1 << 20)

static uint64_t cache_hits(void) {
  hak_stats_t st;
  hak_stats_get(&st);
  return st.large_cache_hits;
}

static void fill(unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i += 4096) p[i] = v;
}

static void check_zero(const unsigned char *p, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    t_check(p[i] == 0, "%s: byte %zu of %zu is %u, not 0", what, i, n, p[i]);
}

int main(void) {
  hak_trim();
  uint64_t hits = cache_hits();
  /* Larger cached mapping, smaller request: reused, cut down. */
  unsigned char *big = T_MALLOC(20 * MIB);
  t_check(big != NULL, "malloc(20 MiB)");
  fill(big, 20 * MIB, 0x5a);
  T_FREE(big);
  unsigned char *small = T_MALLOC(10 * MIB);
  t_check(small == big, "10 MiB after a freed 20 MiB: %p, not the cached %p", (void *)small,
          (void *)big);
  t_check(cache_hits() == hits + 1, "cache hits %llu, expected %llu",
          (unsigned long long)cache_hits(), (unsigned long long)(hits + 1));
  size_t usable = hak_usable_size(small);
  t_check(usable >= 10 * MIB && usable < 12 * MIB, "usable %zu after the cut", usable);
  /* Smaller cached mapping, larger request: moved and grown, contents kept. */
  fill(small, 10 * MIB, 0x33);
  T_FREE(small);
  unsigned char *grown = T_MALLOC(16 * MIB);
  t_check(grown != NULL && cache_hits() == hits + 2, "16 MiB from a cached 10 MiB: hits %llu",
          (unsigned long long)(cache_hits() - hits));
  /* From the third page: the checked build fills the page after the header while cached. */
  for (size_t i = 2 * 4096; i < 10 * MIB - 4096; i += 4096)
    t_check(grown[i] == 0x33, "grown block: page %zu lost its contents", i / 4096);
  check_zero(grown + 11 * MIB, 5 * MIB - 4096, "grown block's growth");
  t_check(hak_usable_size(grown) >= 16 * MIB, "usable %zu",
          hak_usable_size(grown));
  fill(grown, 16 * MIB, 0x77);
  T_FREE(grown);
  /* calloc of a reused (grown) mapping is zero everywhere. */
  unsigned char *z = T_CALLOC(1, 24 * MIB);
  t_check(z != NULL && cache_hits() == hits + 3, "calloc 24 MiB from a cached 16 MiB: hits %llu",
          (unsigned long long)(cache_hits() - hits));
  check_zero(z, 24 * MIB, "calloc of a reused mapping");
  T_FREE(z);
  /* Nothing of half the size cached: a new mapping. */
  unsigned char *huge = T_MALLOC(60 * MIB);
  t_check(huge != NULL && cache_hits() == hits + 3, "60 MiB with 24 MiB cached: hits %llu",
          (unsigned long long)(cache_hits() - hits));
  T_FREE(huge);
  printf("api_large_reuse ok\n");
  return 0;
}
