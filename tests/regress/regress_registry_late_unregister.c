/* Regression test, root cause 3 of the playbook: SuperSlab registry stale or racy (box:
 * registry boundary).
 *
 * Root cause: a SuperSlab is unmapped while the registry still names it (unregistered after
 * the unmap, or not at all). Every lookup that trusts the registry then reads the header of
 * an unmapped region: free, hak_owns and malloc_usable_size of a stale pointer crash with
 * SIGSEGV instead of failing fast, and once the address range is mapped again by anyone the
 * stale entry makes hakmem read foreign memory as its own.
 *
 * Scenario: a thread allocates blocks of the largest class (runs of half a SuperSlab) until it
 * has bound whole SuperSlabs, frees them and exits (its caches are flushed, its runs released,
 * so those SuperSlabs are empty); hak_trim() unmaps them. Each of the following runs in a fresh
 * child process (see regress.h):
 *   unregister  right after the trim the released SuperSlab's region is HAK_REGION_NONE in the
 *               registry (and really unmapped), the release epoch moved, superslabs_unmapped
 *               grew; the allocator goes on: new blocks are registered SuperSlab blocks, owned;
 *   owns        hak_owns() of the stale pointer (and of other addresses in the region) is 0,
 *               without touching the unmapped region;
 *   free        freeing the stale pointer fails fast with hakmem's "invalid free" diagnostic
 *               (not a SIGSEGV);
 *   remapped    the region is mapped again by the test (zero pages): freeing the stale pointer
 *               still fails fast with "invalid free" (not "bad magic": the region is foreign).
 * Catches: HAKMEM_PLANT_BUG=registry_late_unregister (both pointer modes, hint or not). */
#include "regress.h"

#define MAX_BLOCKS 64

static void *blk[MAX_BLOCKS];
static size_t nblk;
static hak_superslab_t *x; /* an emptied SuperSlab */
static void *stale;        /* a block that lay in it */

static bool some_ss_all_mine(void) {
  for (size_t i = 0; i < nblk; i++)
    if (r_ss_all_mine(hak_ss_of(blk[i]), R_BIG_CLASS, hak_tc))
      return true;
  return false;
}

static void *fill_and_exit(void *arg) {
  (void)arg;
  size_t n = t_size_of_class(R_BIG_CLASS);
  while (nblk < 2 || !some_ss_all_mine()) {
    T_CHECK(nblk < MAX_BLOCKS, "setup: %zu blocks never bound a whole SuperSlab", nblk);
    blk[nblk] = hak_malloc(n);
    T_CHECK(blk[nblk] != NULL, "hak_malloc(%zu) failed", n);
    t_fill(blk[nblk], 64, nblk);
    nblk++;
  }
  for (size_t i = 0; i < nblk; i++) {
    t_verify(blk[i], 64, i);
    hak_free(blk[i]);
  }
  return NULL; /* exit: the SLL is flushed and the empty runs released */
}

/* Leaves x empty and still mapped, stale pointing at one of its former blocks. */
static void setup(void) {
  t_thread_cache();
  t_run_thread(fill_and_exit, NULL);
  for (size_t i = 0; i < nblk && x == NULL; i++) {
    hak_superslab_t *ss = hak_ss_of(blk[i]);
    if (ss->free_mask == R_SS_ALL_FREE && ss->list == HAK_SSL_EMPTY) {
      x = ss;
      stale = blk[i];
    }
  }
  T_CHECK(x != NULL, "setup: no SuperSlab was left empty by the exited thread");
  T_CHECK(hak_registry_kind((uintptr_t)x) == HAK_REGION_SS, "setup: empty SuperSlab unregistered");
}

static void trim(void) {
  T_CHECK(hak_trim() == 1, "hak_trim released nothing");
  T_CHECK(!r_mapped(x), "the empty SuperSlab %p is still mapped after hak_trim", (void *)x);
}

static void scenario_unregister(void) {
  setup();
  hak_stats_t st0, st1;
  hak_stats_get(&st0);
  uint64_t epoch = atomic_load(&hak_ss_release_epoch);
  trim();
  hak_stats_get(&st1);
  T_CHECK(hak_registry_kind((uintptr_t)x) == HAK_REGION_NONE,
          "SuperSlab %p unmapped but still registered (kind %u)", (void *)x,
          hak_registry_kind((uintptr_t)x));
  T_CHECK(hak_registry_kind((uintptr_t)stale) == HAK_REGION_NONE,
          "stale block %p: its region is still registered", stale);
  T_CHECK(atomic_load(&hak_ss_release_epoch) > epoch, "the unmap did not bump the release epoch");
  T_CHECK(st1.superslabs_unmapped > st0.superslabs_unmapped, "superslabs_unmapped did not grow");
  /* The allocator goes on, possibly mapping a new SuperSlab at the same address. */
  size_t n = t_size_of_class(R_BIG_CLASS);
  for (int i = 0; i < 16; i++) {
    void *p = hak_malloc(n);
    T_CHECK(p != NULL, "hak_malloc(%zu) after the trim failed", n);
    T_CHECK(hak_registry_kind((uintptr_t)p) == HAK_REGION_SS && hak_owns(p) == 1,
            "new block %p: kind %u, owned %d", p, hak_registry_kind((uintptr_t)p), hak_owns(p));
    blk[i] = p;
  }
  for (int i = 0; i < 16; i++)
    hak_free(blk[i]);
}

static void scenario_owns(void) {
  setup();
  trim();
  T_CHECK(hak_owns(stale) == 0, "hak_owns(stale block %p) says yes", stale);
  T_CHECK(hak_owns(x) == 0, "hak_owns(released SuperSlab %p) says yes", (void *)x);
  T_CHECK(hak_owns((uint8_t *)x + HAK_SS_SIZE / 2) == 0, "hak_owns(inside the region) says yes");
}

static void scenario_free(void) {
  setup();
  trim();
  fprintf(stderr,
          "regress_registry_late_unregister: freeing %p of an unmapped SuperSlab; "
          "hakmem must abort\n",
          stale);
  hak_free(stale);
}

static void scenario_remapped(void) {
  setup();
  trim();
  if (!r_map_at(x, HAK_SS_SIZE))
    fprintf(stderr,
            "regress_registry_late_unregister: could not map %p again; the region "
            "stays unmapped\n",
            (void *)x);
  fprintf(stderr,
          "regress_registry_late_unregister: freeing %p of a region that is no longer "
          "hakmem's; hakmem must abort\n",
          stale);
  hak_free(stale);
}

static const r_scenario_t scenarios[] = {
    {"unregister", scenario_unregister, R_SUCCEEDS, NULL},
    {"owns", scenario_owns, R_SUCCEEDS, NULL},
    {"free", scenario_free, R_FAILS_FAST, "invalid free"},
    {"remapped", scenario_remapped, R_FAILS_FAST, "invalid free"},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_registry_late_unregister", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
