/* Regression test: a cached large mapping moved and grown for a larger block (src/large.c,
 * entry_gather), the window after the move held open by parking the growing thread at its
 * schedule point (tests/support/hak_sched.h; the test links hakmem_sched).
 *
 * Root cause: the old place of the moved mapping is unregistered after the mremap that frees
 * it. Until that late clear the registry names a range that is no longer hakmem's: a lookup of
 * the old address (a stale second free of the cached block, hak_owns, malloc_usable_size)
 * reads the header there, which is unmapped (SIGSEGV instead of an answer) or already another
 * mapper's (read as a corrupt hakmem header); and a SuperSlab or large block that another
 * thread maps and registers there in that time loses its registration to the late clear. (That
 * last one needs hakmem itself to map the freed range, which the kernel's choice of address
 * does not make deterministic: remap_reuse maps it from outside.)
 *
 * The move happens with HAKMEM_LARGE_MOVE=1 (set by the test), without which V maps anew.
 * Every scenario (each in a fresh child process, see regress.h) starts the same: the main
 * thread allocates a block L of 8 MiB and frees it (its mapping goes to the cache, still
 * registered, its user pointer cleared); thread V asks for 12 MiB, is handed L's mapping (at
 * least half the size), moves and grows it, and is parked right after the move, L's old range
 * free. While V is parked:
 *   stale_lookup       hak_owns() of L, of its old mapping and of addresses across the old
 *                      range is 0. V is let go: its block is usable at both ends, owned, and
 *                      freeable; the counters are what the program did (2 large allocations,
 *                      1 of them a cache hit, 2 large frees), and the old range is not
 *                      hakmem's afterwards either;
 *   stale_usable_size  hak_usable_size(L) fails fast with "usable size of a pointer hakmem does
 *                      not own";
 *   stale_free         a second free of L fails fast with "invalid free (not a hakmem pointer)";
 *   remap_reuse        the test maps L's old range itself (MAP_FIXED_NOREPLACE: another mapper
 *                      taking the free range); hak_owns() of it is 0, and a second free of L
 *                      fails fast with "invalid free (not a hakmem pointer)", not as a corrupt
 *                      header of hakmem's.
 * Catches: HAKMEM_PLANT_BUG=large_grow_late_unregister (any pointer mode): stale_lookup,
 * stale_usable_size and stale_free die by SIGSEGV on the unmapped header, remap_reuse aborts
 * with "invalid free (corrupt large header)". */
#include "hak_sched.h"
#include "regress.h"

#define MIB ((size_t)1 << 20)
#define L_SIZE (8 * MIB)
#define V_SIZE (12 * MIB) /* L's mapping is more than half of it: grown, not mapped anew */

static void *l_ptr;    /* L's user pointer: freed into the cache, stale once V moves it */
static uint8_t *l_map; /* L's mapping, the region its header starts */
static size_t l_bytes; /* L's mapping's size */
static void *v_block;  /* V's 12 MiB */
static pthread_t v;
static hak_stats_t st0; /* before L */

static void *v_grow(void *arg) {
  (void)arg;
  t_sched_volunteer();
  v_block = hak_malloc(V_SIZE); /* parks right after the move */
  return NULL;
}

/* Frees L into the cache and parks V in the window: L's old range moved away, unmapped. */
static void park_in_window(void) {
  hak_opt.large_move = 1; /* HAKMEM_LARGE_MOVE=1: the grow moves the cached pages */
  st0 = t_stats();
  l_ptr = hak_malloc(L_SIZE);
  T_CHECK(l_ptr != NULL, "hak_malloc(%zu) failed", L_SIZE);
  l_map = (uint8_t *)hak_ss_of(l_ptr);
  hak_free(l_ptr);
  T_CHECK(hak_registry_kind((uintptr_t)l_map) == HAK_REGION_LARGE,
          "setup: L's mapping %p is not cached (registry kind %u)", (void *)l_map,
          hak_registry_kind((uintptr_t)l_map));
  hak_large_t *h = hak_large_header_at((uintptr_t)l_map, HAK_REGION_LARGE);
  T_CHECK(h->map == l_map && h->user == NULL, "setup: L's mapping %p is not a cached one",
          (void *)l_map);
  l_bytes = h->map_size;
  T_CHECK(l_bytes < V_SIZE && l_bytes >= V_SIZE / 2, "setup: L's mapping of %zu bytes", l_bytes);
  t_sched_arm(HAK_SP_LARGE_GROW, l_map);
  int rc = pthread_create(&v, NULL, v_grow, NULL);
  T_CHECK(rc == 0, "pthread_create: %d", rc);
  T_CHECK(t_sched_wait_parked() == l_map, "V parked after moving another mapping");
  T_CHECK(!r_mapped(l_map), "setup: L's old mapping %p is still mapped after the move",
          (void *)l_map);
}

/* hak_owns() is 0 for L and across its old range. */
static void check_not_owned(const char *when) {
  T_CHECK(hak_owns(l_ptr) == 0, "%s: hak_owns(L %p) says yes", when, l_ptr);
  for (size_t off = 0; off < l_bytes; off += 3 * MIB)
    T_CHECK(hak_owns(l_map + off) == 0, "%s: hak_owns(L's old range + %zu) says yes", when, off);
  T_CHECK(hak_owns(l_map + l_bytes - 16) == 0, "%s: hak_owns(end of L's old range) says yes", when);
}

static void release_v(void) {
  t_sched_release();
  int rc = pthread_join(v, NULL);
  T_CHECK(rc == 0, "pthread_join: %d", rc);
}

static void scenario_stale_lookup(void) {
  park_in_window();
  check_not_owned("V parked after the move");
  release_v();
  uint8_t *q = v_block;
  T_CHECK(q != NULL, "V's hak_malloc(%zu) failed", V_SIZE);
  T_CHECK(hak_ss_of(q) != (void *)l_map, "V's block %p did not move", (void *)q);
  T_CHECK(t_sched_hits(HAK_SP_LARGE_GROW) == 1, "the grow passed its schedule point %llu times",
          (unsigned long long)t_sched_hits(HAK_SP_LARGE_GROW));
  size_t usable = hak_usable_size(q);
  T_CHECK(usable >= V_SIZE, "V's block: usable size %zu", usable);
  q[0] = 1;
  q[usable - 1] = 2;
  T_CHECK(hak_owns(q) == 1, "V's block %p is not owned", (void *)q);
  check_not_owned("V gone on");
  hak_free(q);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.large_allocs == st0.large_allocs + 2 && st1.large_frees == st0.large_frees + 2 &&
              st1.large_cache_hits == st0.large_cache_hits + 1,
          "large allocs +%llu, frees +%llu, cache hits +%llu; want +2, +2, +1",
          (unsigned long long)(st1.large_allocs - st0.large_allocs),
          (unsigned long long)(st1.large_frees - st0.large_frees),
          (unsigned long long)(st1.large_cache_hits - st0.large_cache_hits));
}

static void scenario_stale_usable_size(void) {
  park_in_window();
  fprintf(stderr, "regress_large_grow: usable size of %p, moved away; hakmem must abort\n", l_ptr);
  hak_usable_size(l_ptr);
}

static void scenario_stale_free(void) {
  park_in_window();
  fprintf(stderr, "regress_large_grow: freeing %p again, moved away; hakmem must abort\n", l_ptr);
  hak_free(l_ptr);
}

static void scenario_remap_reuse(void) {
  park_in_window();
  if (!r_map_at(l_map, l_bytes))
    fprintf(stderr, "regress_large_grow: could not map L's old range %p again; it stays unmapped\n",
            (void *)l_map);
  check_not_owned("L's old range mapped by another");
  fprintf(stderr, "regress_large_grow: freeing %p again, its range another's; hakmem must abort\n",
          l_ptr);
  hak_free(l_ptr);
}

static const r_scenario_t scenarios[] = {
    {"stale_lookup", scenario_stale_lookup, R_SUCCEEDS, NULL},
    {"stale_usable_size", scenario_stale_usable_size, R_FAILS_FAST,
     "usable size of a pointer hakmem does not own"},
    {"stale_free", scenario_stale_free, R_FAILS_FAST, "invalid free (not a hakmem pointer)"},
    {"remap_reuse", scenario_remap_reuse, R_FAILS_FAST, "invalid free (not a hakmem pointer)"},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_large_grow", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
