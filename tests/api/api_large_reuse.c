/* Large blocks reuse freed mappings of other sizes (src/large.c):
 *   - a smaller request takes a larger cached mapping, split at a region boundary: the block's
 *     usable size is near the request, and the rest stays cached with its pages (a next request
 *     gets it without a new mapping, its old contents still there);
 *   - cached neighbours join: the two pieces, freed, serve a request of their sum;
 *   - a larger request: with HAKMEM_LARGE_MOVE=1 (argument "move") it takes the largest cached
 *     mappings and moves their pages into one new mapping, one after another: the old pages
 *     keep their contents (also those of two mappings that were not neighbours) and what they
 *     do not cover reads as zero; by default (argument "stay") it maps a new one, all zero,
 *     and the cached ones stay;
 *   - calloc of a reused mapping is all zero;
 *   - every reuse counts as a large cache hit; with nothing cached a request maps a new
 *     mapping (no hit).
 * The decay is off (HAKMEM_DECAY_MS, set by the test's registration) so the cache keeps what
 * the test frees. */
#include <stdbool.h>
#include <string.h>

#include "hak_test.h"

#define MIB ((size_t)1 << 20)
#define PAGE ((size_t)4096)

static uint64_t cache_hits(void) { return t_stats().large_cache_hits; }

static void fill(unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i += PAGE) p[i] = v;
}

/* Every page of p[from, to) still holds what fill() wrote. */
static void check_fill(const unsigned char *p, size_t from, size_t to, unsigned char v,
                       const char *what) {
  for (size_t i = from; i < to; i += PAGE)
    t_check(p[i] == v, "%s: page %zu holds %#x, not %#x", what, i / PAGE, p[i], v);
}

static void check_zero(const unsigned char *p, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    t_check(p[i] == 0, "%s: byte %zu of %zu is %u, not 0", what, i, n, p[i]);
}

static void check_hits(uint64_t want, const char *what) {
  t_check(cache_hits() == want, "%s: cache hits %llu, expected %llu", what,
          (unsigned long long)cache_hits(), (unsigned long long)want);
}

int main(int argc, char **argv) {
  t_check(argc == 2 && (!strcmp(argv[1], "move") || !strcmp(argv[1], "stay")),
          "usage: api_large_reuse move|stay");
  bool move = !strcmp(argv[1], "move");
  hak_trim();
  uint64_t hits = cache_hits();
  /* Larger cached mapping, smaller request: reused from its start, split. */
  unsigned char *big = T_MALLOC(20 * MIB);
  t_check(big != NULL, "malloc(20 MiB)");
  fill(big, 20 * MIB, 0x5a);
  T_FREE(big);
  uint64_t mapped = t_stats().bytes_mapped;
  unsigned char *small = T_MALLOC(10 * MIB);
  t_check(small == big, "10 MiB after a freed 20 MiB: %p, not the cached %p", (void *)small,
          (void *)big);
  check_hits(hits + 1, "10 MiB");
  size_t usable = hak_usable_size(small);
  t_check(usable >= 10 * MIB && usable < 12 * MIB, "usable %zu after the split", usable);
  /* The rest, from the next region boundary, is still cached with its pages. */
  unsigned char *rest = T_MALLOC(6 * MIB);
  t_check(rest > big + 10 * MIB && rest < big + 13 * MIB,
          "6 MiB after the split: %p, not in the cached rest of %p", (void *)rest, (void *)big);
  check_hits(hits + 2, "6 MiB");
  t_check(t_stats().bytes_mapped == mapped, "the split mapped %lld bytes",
          (long long)(t_stats().bytes_mapped - mapped));
  check_fill(rest, PAGE, 6 * MIB - PAGE, 0x5a,
             "the rest of the split mapping");
  /* Both pieces freed: joined, they serve a request of nearly their sum. */
  fill(small, 10 * MIB, 0x33);
  T_FREE(small);
  T_FREE(rest);
  unsigned char *joined = T_MALLOC(19 * MIB);
  t_check(joined == big, "19 MiB after freeing both pieces: %p, not the joined %p",
          (void *)joined, (void *)big);
  check_hits(hits + 3, "19 MiB");
  t_check(t_stats().bytes_mapped == mapped, "the join mapped %lld bytes",
          (long long)(t_stats().bytes_mapped - mapped));
  /* Smaller cached mapping, larger request: its pages moved into the new block, contents
   * kept (from the third page: the checked build fills the page after the header while
   * cached), or a new mapping. */
  check_fill(joined, 2 * PAGE, 10 * MIB, 0x33, "the joined mapping");
  fill(joined, 19 * MIB, 0x77);
  T_FREE(joined);
  unsigned char *grown = T_MALLOC(32 * MIB);
  t_check(grown != NULL, "malloc(32 MiB)");
  check_hits(hits + 3 + move, "32 MiB with a cached 20 MiB");
  if (move) check_fill(grown, 2 * PAGE, 19 * MIB, 0x77, "grown block");
  else check_zero(grown, 19 * MIB, "a new mapping");
  check_zero(grown + 21 * MIB, 11 * MIB - PAGE, "grown block's growth");
  t_check(hak_usable_size(grown) >= 32 * MIB, "usable %zu", hak_usable_size(grown));
  fill(grown, 32 * MIB, 0x77);
  T_FREE(grown);
  /* calloc of a reused mapping is zero everywhere. */
  uint64_t hits_z = cache_hits();
  unsigned char *z = T_CALLOC(1, 30 * MIB);
  t_check(z != NULL, "calloc(30 MiB)");
  check_hits(hits_z + 1, "calloc 30 MiB with a cached 32 MiB");
  check_zero(z, 30 * MIB, "calloc of a reused mapping");
  T_FREE(z);
  /* Two cached mappings that are not neighbours (a live block between them), neither large
   * enough: the larger one's pages first, then the other's, in one block; or a new one. */
  hak_trim();
  unsigned char *a = T_MALLOC(8 * MIB), *live = T_MALLOC(4 * MIB), *b = T_MALLOC(6 * MIB);
  t_check(a != NULL && live != NULL && b != NULL, "malloc of 8, 4 and 6 MiB");
  fill(a, 8 * MIB, 0xa1);
  fill(b, 6 * MIB, 0xb2);
  T_FREE(a);
  T_FREE(b);
  uint64_t hits_ab = cache_hits();
  unsigned char *ab = T_MALLOC(14 * MIB);
  t_check(ab != NULL, "malloc(14 MiB)");
  check_hits(hits_ab + move, "14 MiB with cached 8 and 6 MiB");
  if (move) {
    /* a's mapping is 8 MiB and a page (the header's 128 bytes before the block): b's pages
     * follow at that offset. */
    check_fill(ab, 2 * PAGE, 8 * MIB - PAGE, 0xa1, "the gathered block's first part");
    check_fill(ab + 8 * MIB + PAGE, PAGE, 6 * MIB - 2 * PAGE, 0xb2,
               "the gathered block's second part");
  } else {
    check_zero(ab, 14 * MIB, "a new mapping");
  }
  T_FREE(ab);
  T_FREE(live);
  /* Nothing cached: a new mapping. */
  hak_trim();
  uint64_t hits_none = cache_hits();
  unsigned char *huge = T_MALLOC(100 * MIB);
  t_check(huge != NULL, "malloc(100 MiB)");
  check_hits(hits_none, "100 MiB with nothing cached");
  T_FREE(huge);
  printf("api_large_reuse %s ok\n", argv[1]);
  return 0;
}
