/* Regression test, root cause 1 of the playbook: TLS hint cache stale/dangling (box: hint).
 *
 * Root cause: a thread's hint names a SuperSlab that has since been recycled (emptied and
 * taken again: generation bumped) or released (unmapped: release epoch bumped). A hint hit
 * that does not check generation and epoch lets free resolve a pointer through the cached
 * SuperSlab without the registry: into a region that is no longer hakmem's it reads unmapped
 * memory (SIGSEGV) or, once the range is mapped again, foreign memory that happens to look like
 * the old header, and the bad free "succeeds".
 *
 * Scenario: the main thread allocates blocks of the largest class (runs of half a SuperSlab)
 * until one SuperSlab X is bound entirely to its runs, then a few more outside X (fillers, and
 * one block it keeps). It frees X's blocks (local frees: the hint box caches X) and then
 * fillers until its TLS SLL has spilled every block of X back to the runs: X's runs are
 * released and X is empty, while the thread lives on with X in its hint. Each of the following
 * runs in a fresh child process (see regress.h):
 *   reuse          another thread allocates until it is given a run in X (X's generation
 *                  moves), frees and exits. The main thread's hint must no longer hit for X;
 *   unmapped_hint  hak_trim() unmaps X (the release epoch moves): the hint must no longer hit
 *                  for X, and the lookup must not read X's header;
 *   unmapped       hak_trim() unmaps X. Freeing a stale pointer into X must fail fast with
 *                  hakmem's "invalid free" diagnostic (not a SIGSEGV);
 *   remapped       as unmapped, then the test maps X's range again and copies X's old header
 *                  there (a region that looks like the SuperSlab it was). The stale free must
 *                  still fail fast with "invalid free" instead of pushing foreign memory onto
 *                  the TLS SLL.
 * Catches: HAKMEM_PLANT_BUG=stale_hint (headerless with the hint compiled in). Builds without
 * the hint box never hit; the same behaviour is checked all the same. */
#include "regress.h"

#define MAX_BLOCKS 64

static void *xblk[MAX_BLOCKS]; /* the main thread's blocks in X */
static size_t nx;
static void *fill[MAX_BLOCKS]; /* its blocks outside X, in allocation order */
static size_t nfill;
static void *keeper; /* a block outside X kept live: its run stays partial */
static hak_superslab_t *x;
static uint64_t x_gen;
static _Alignas(64) uint8_t x_header[sizeof(hak_superslab_t)]; /* X while bound */
static void *all[MAX_BLOCKS];
static size_t nall;

static hak_superslab_t *find_x(void) {
  void *last = all[nall - 1];
  for (size_t i = 0; i < nall; i++) {
    hak_superslab_t *ss = hak_ss_of(all[i]);
    if (ss != hak_ss_of(last) && r_ss_all_mine(ss, R_BIG_CLASS, hak_tc))
      return ss;
  }
  return NULL;
}

static bool run_exhausted(const void *p) {
  const hak_slab_t *m = t_run_of(p);
  return m->freelist == NULL && m->carved == m->capacity;
}

static void *big_alloc(void) {
  size_t n = t_size_of_class(R_BIG_CLASS);
  T_CHECK(nall < MAX_BLOCKS, "setup: too many blocks");
  void *p = hak_malloc(n);
  T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
  t_fill(p, 64, 1);
  all[nall++] = p;
  return p;
}

/* Allocates until X is bound to this thread's runs, then fillers and a keeper outside X. */
static void allocate(void) {
  while (nall < 2 || (x = find_x()) == NULL)
    big_alloc();
  memcpy(x_header, x, sizeof x_header);
  x_gen = atomic_load(&x->generation);
  size_t want = 2 * (size_t)hak_tc->sll[R_BIG_CLASS].cap + 2;
  for (size_t i = 0; i < nall; i++) {
    if (hak_ss_of(all[i]) == x)
      xblk[nx++] = all[i];
    else if (i == nall - 1)
      fill[nfill++] = all[i];
  }
  while (nfill < want)
    fill[nfill++] = big_alloc();
  do {
    keeper = big_alloc();
  } while (run_exhausted(keeper) || hak_ss_of(keeper) == x);
  for (size_t i = 0; i < nfill; i++)
    T_CHECK(hak_ss_of(fill[i]) != x, "setup: a filler lies in X");
}

/* Frees X's blocks and enough fillers that the SLL spills them all: X ends up empty. */
static void empty_x(void) {
  hak_sll_t *s = &hak_tc->sll[R_BIG_CLASS];
  size_t f = 0;
  /* Blocks below the first spill target stay on the SLL: put fillers there. */
  while (hak_sll_count(s) < s->cap / 2 && f < nfill)
    hak_free(fill[f++]);
  for (size_t i = 0; i < nx; i++) {
    t_verify(xblk[i], 64, 1);
    hak_free(xblk[i]);
  }
  while (x->free_mask != R_SS_ALL_FREE && f < nfill)
    hak_free(fill[f++]);
  T_CHECK(x->free_mask == R_SS_ALL_FREE && x->list == HAK_SSL_EMPTY,
          "setup: X = %p not empty after its blocks were freed (free_mask %#x)", (void *)x,
          x->free_mask);
  for (; f < nfill; f++)
    hak_free(fill[f]);
  t_verify(keeper, 64, 1);
  T_CHECK(atomic_load(&x->generation) == x_gen, "setup: X recycled early");
}

static void setup(void) {
  t_thread_cache();
  hak_opt.tls_hint = 1; /* whatever the environment says: this test is about the box */
  allocate();
  empty_x();
  T_CHECK(hak_registry_kind((uintptr_t)x) == HAK_REGION_SS, "setup: X unregistered");
#if HAK_HINT_COMPILED
  T_CHECK(hak_hint_hit(hak_tc, (uintptr_t)x), "setup: X is not in the main thread's hint");
#else
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)x), "a hint hit in a build without the hint box");
#endif
}

/* ---- reuse ---------------------------------------------------------------------------------- */

static void *take_x(void *arg) {
  (void)arg;
  size_t n = t_size_of_class(R_BIG_CLASS);
  static void *p[MAX_BLOCKS];
  size_t k = 0;
  do {
    T_CHECK(k < MAX_BLOCKS, "setup: %zu blocks and none in X", k);
    p[k] = hak_malloc(n);
    T_CHECK(p[k] != NULL, "hak_malloc(%zu) failed", n);
  } while (hak_ss_of(p[k++]) != x);
  for (size_t i = 0; i < k; i++)
    hak_free(p[i]);
  return NULL;
}

static void scenario_reuse(void) {
  setup();
  t_run_thread(take_x, NULL);
  T_CHECK(atomic_load(&x->generation) != x_gen, "X was reused but its generation did not move");
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)x),
          "the hint hits for X after X was recycled (generation %llu, cached under %llu)",
          (unsigned long long)atomic_load(&x->generation), (unsigned long long)x_gen);
  hak_free(keeper);
}

/* ---- unmapped and remapped ------------------------------------------------------------------ */

static void unmap_x(void) {
  T_CHECK(hak_trim() == 1, "hak_trim released nothing");
  T_CHECK(hak_registry_kind((uintptr_t)x) == HAK_REGION_NONE, "setup: X still registered");
  T_CHECK(!r_mapped(x), "setup: X still mapped after hak_trim");
}

static void scenario_unmapped_hint(void) {
  setup();
  unmap_x();
  /* The epoch moved, so the lookup must miss without reading X's (unmapped) header. */
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)x), "the hint hits for X after X was unmapped");
  hak_free(keeper);
}

static void scenario_unmapped(void) {
  setup();
  unmap_x();
  fprintf(stderr,
          "regress_stale_hint: freeing %p of the unmapped SuperSlab X; hakmem must "
          "abort\n",
          xblk[0]);
  hak_free(xblk[0]);
}

static void scenario_remapped(void) {
  setup();
  unmap_x();
  if (r_map_at(x, HAK_SS_SIZE)) {
    memcpy(x, x_header, sizeof x_header);
  } else {
    fprintf(stderr, "regress_stale_hint: could not map X = %p again; it stays unmapped\n",
            (void *)x);
  }
  fprintf(stderr,
          "regress_stale_hint: freeing %p of a region that looks like X but is not "
          "hakmem's; hakmem must abort\n",
          xblk[0]);
  hak_free(xblk[0]);
}

static const r_scenario_t scenarios[] = {
    {"reuse", scenario_reuse, R_SUCCEEDS, NULL},
    {"unmapped_hint", scenario_unmapped_hint, R_SUCCEEDS, NULL},
    {"unmapped", scenario_unmapped, R_FAILS_FAST, "invalid free"},
    {"remapped", scenario_remapped, R_FAILS_FAST, "invalid free"},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_stale_hint", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
