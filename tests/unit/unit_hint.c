/* Hint box (src/tiny/hint.[ch]): per-thread cache of recent SuperSlabs for headerless free.
 *
 * Builds without the box (header mode, or HAKMEM_TINY_SS_TLS_HINT=OFF): hak_hint_hit() never
 * hits, hak_hint_insert() leaves the entries alone, and hint_hits stays 0 under frees.
 *
 * Builds with it:
 *   - frees of blocks from one SuperSlab hit (hint_hits grows by about one per free);
 *   - an entry goes stale when its SuperSlab is reused (its generation and the release epoch
 *     move together: manual bumps, and a real recycle: the SuperSlab emptied and taken again)
 *     and when the release epoch moves (manual bump, and a real unmap by hak_trim); a free through a stale entry misses and uses the
 *     registry, and is still correct;
 *   - with hak_opt.tls_hint = 0, hak_hint_insert() changes nothing and a fresh thread's frees
 *     never hit. */
#include "unit.h"

static void save_hints(hak_hint_t out[HAK_HINT_WAYS]) { memcpy(out, hak_tc->hint, sizeof hak_tc->hint); }

static int same_hints(const hak_hint_t a[HAK_HINT_WAYS]) {
  return memcmp(a, hak_tc->hint, sizeof hak_tc->hint) == 0;
}

static uint64_t my_hits(void) { return t_tc_hint_hits(hak_tc); }
__attribute__((unused)) static uint64_t my_misses(void) { return t_tc_sum(hak_tc, hint_misses); }

/* n blocks of class c allocated, then freed; returns the hint hits of the frees. */
static uint64_t alloc_free(int c, int n) {
  static void *p[1024];
  for (int i = 0; i < n; i++) {
    p[i] = hak_malloc(t_size_of_class(c));
    T_CHECK(p[i] != NULL, "hak_malloc failed");
  }
  uint64_t h0 = my_hits();
  for (int i = 0; i < n; i++) hak_free(p[i]);
  return my_hits() - h0;
}

#if !HAK_HINT_COMPILED

int main(void) {
  t_thread_cache();
  hak_stats_t st0 = t_stats();
  hak_hint_t saved[HAK_HINT_WAYS];
  save_hints(saved);
  void *p = hak_malloc(64);
  uintptr_t ss = (uintptr_t)hak_ss_of(p);
  hak_hint_insert(hak_tc, ss);
  T_CHECK(same_hints(saved), "hak_hint_insert changed an entry in a build without the box");
  T_CHECK(!hak_hint_hit(hak_tc, ss), "a hit in a build without the box");
  hak_free(p);
  T_CHECK(alloc_free(3, 500) == 0, "hint hits in a build without the box");
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.hint_hits == 0 && st0.hint_hits == 0, "hint_hits %llu",
          (unsigned long long)st1.hint_hits);
  T_CHECK(st1.registry_lookups > st0.registry_lookups, "frees did not use the registry");
  printf("unit_hint: box not compiled (headerless %d), hint_hits stayed 0: OK\n",
         HAKMEM_TINY_HEADERLESS);
  return 0;
}

#else

/* Frees of blocks from one SuperSlab hit the hint. */
static void check_hits(void) {
  hak_stats_t st0 = t_stats();
  uint64_t hits = alloc_free(3, 500);
  T_CHECK(hits >= 490, "only %llu of 500 frees hit the hint", (unsigned long long)hits);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.hint_hits - st0.hint_hits >= 490, "hint_hits grew by %llu",
          (unsigned long long)(st1.hint_hits - st0.hint_hits));
}

/* A free of p through a stale entry: a miss that re-inserts, then frees hit again. */
static void check_free_after_stale(void *p) {
  uint64_t h0 = my_hits(), m0 = my_misses();
  hak_free(p);
  T_CHECK(my_hits() == h0, "a free hit a stale hint");
  T_CHECK(my_misses() == m0 + 1, "a free through a stale hint did not miss");
  T_CHECK(hak_hint_hit(hak_tc, (uintptr_t)hak_ss_of(p)), "the miss did not refresh the hint");
}

static void check_manual_staleness(void) {
  void *p = hak_malloc(64), *q = hak_malloc(64);
  T_CHECK(p != NULL && q != NULL, "hak_malloc failed");
  hak_superslab_t *ss = hak_ss_of(p);
  T_CHECK(hak_ss_of(q) == ss, "two blocks of a run in different SuperSlabs");

  hak_hint_insert(hak_tc, (uintptr_t)ss);
  T_CHECK(hak_hint_hit(hak_tc, (uintptr_t)ss), "no hit right after insert");
  T_CHECK(hak_tc->hint[0].ss == (uintptr_t)ss, "insert did not fill the most recent way");
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)ss + HAK_SS_SIZE), "hit for the next region");

  /* Reuse moves the generation and, with it, the release epoch (superslab.c): stale. */
  atomic_fetch_add(&ss->generation, 1);
  atomic_fetch_add(&hak_ss_release_epoch, 1);
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)ss), "hit after a reuse (generation and epoch bump)");
  check_free_after_stale(p);

  /* Release epoch moves: stale. */
  atomic_fetch_add(&hak_ss_release_epoch, 1);
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)ss), "hit after a release epoch bump");
  check_free_after_stale(q);

  /* Back to the true generation, the epoch moving with it as with any generation change:
   * entries recorded under the bumped one are stale again. */
  atomic_fetch_sub(&ss->generation, 1);
  atomic_fetch_add(&hak_ss_release_epoch, 1);
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)ss), "hit after the generation moved back");
}

/* Real recycles: an emptied SuperSlab taken again (generation), and an unmap (epoch). */
static void check_recycle_staleness(void) {
  const int big = HAK_NUM_CLASSES - 1;
  static hak_slab_t *held[256];
  int n = 0;
  hak_superslab_t *x = NULL;
  while (x == NULL) {
    T_CHECK(n < 256, "never got a whole SuperSlab");
    held[n++] = hak_superslab_take_run(big);
    T_CHECK(held[n - 1] != NULL, "take_run failed");
    hak_superslab_t *ss = hak_ss_of(held[n - 1]);
    int mine = 0;
    for (int i = 0; i < n; i++) mine += hak_ss_of(held[i]) == ss;
    if (ss->free_mask == 0 && mine == 2) x = ss;
  }
  hak_hint_insert(hak_tc, (uintptr_t)x);
  T_CHECK(hak_hint_hit(hak_tc, (uintptr_t)x), "no hit for a live SuperSlab");
  uint64_t gen = atomic_load(&x->generation);
  for (int i = 0; i < n; i++)
    if (hak_ss_of(held[i]) == x) hak_superslab_release_run(held[i]);
  T_CHECK(x->free_mask == 0xFFFFFFFFu, "X not empty");
  /* Sitting empty does not change it yet; taken again, it does. */
  T_CHECK(hak_hint_hit(hak_tc, (uintptr_t)x), "an empty SuperSlab's hint went stale early");
  hak_slab_t *again = hak_superslab_take_run(big);
  T_CHECK(again != NULL && hak_ss_of(again) == x, "the empty SuperSlab was not reused first");
  T_CHECK(atomic_load(&x->generation) == gen + 1, "generation %llu after reuse, was %llu",
          (unsigned long long)atomic_load(&x->generation), (unsigned long long)gen);
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)x), "hit for a reused SuperSlab");

  /* Unmap: hint the SuperSlab again, empty it, trim. */
  hak_hint_insert(hak_tc, (uintptr_t)x);
  T_CHECK(hak_hint_hit(hak_tc, (uintptr_t)x), "no hit after re-insert");
  hak_superslab_release_run(again);
  uint64_t epoch = atomic_load(&hak_ss_release_epoch);
  T_CHECK(hak_trim() == 1, "hak_trim released nothing");
  T_CHECK(hak_registry_kind((uintptr_t)x) == HAK_REGION_NONE, "X still registered after trim");
  T_CHECK(atomic_load(&hak_ss_release_epoch) > epoch, "unmap did not bump the release epoch");
  /* hak_hint_hit reads the generation of a hit candidate only after the epoch matched, so it
   * never touches X's unmapped header here. */
  T_CHECK(!hak_hint_hit(hak_tc, (uintptr_t)x), "hit for an unmapped SuperSlab");
  for (int i = 0; i < n; i++)
    if (hak_ss_of(held[i]) != x) hak_superslab_release_run(held[i]);
}

static void *fresh_thread(void *arg) {
  (void)arg;
  t_thread_cache();
  hak_hint_t zero[HAK_HINT_WAYS];
  memset(zero, 0, sizeof zero);
  T_CHECK(same_hints(zero), "a new thread starts with hint entries");
  uint64_t hits = alloc_free(3, 500);
  T_CHECK(hits == 0, "%llu hits with the hint off", (unsigned long long)hits);
  T_CHECK(my_misses() >= 500, "frees not counted as misses");
  T_CHECK(same_hints(zero), "hint entries filled with the hint off");
  return NULL;
}

static void check_switch_off(void) {
  long saved_opt = hak_opt.tls_hint;
  hak_opt.tls_hint = 0;
  void *p = hak_malloc(64);
  hak_hint_t saved[HAK_HINT_WAYS];
  save_hints(saved);
  hak_hint_insert(hak_tc, (uintptr_t)hak_ss_of(p) + HAK_SS_SIZE * 7);
  T_CHECK(same_hints(saved), "hak_hint_insert changed an entry with the hint off");
  hak_free(p);
  hak_stats_t st0 = t_stats();
  t_run_thread(fresh_thread, NULL);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.registry_lookups - st0.registry_lookups >= 500, "registry_lookups grew by %llu",
          (unsigned long long)(st1.registry_lookups - st0.registry_lookups));
  hak_opt.tls_hint = saved_opt;
}

int main(void) {
  t_thread_cache();
  hak_opt.tls_hint = 1; /* whatever the environment says: this test is about the box */
  /* No time-based decay: empty SuperSlabs stay as they are until the test trims them. */
  hak_opt.decay_ms = 3600000;
  check_hits();
  check_manual_staleness();
  check_recycle_staleness();
  check_switch_off();
  check_hits();
  printf("unit_hint: OK\n");
  return 0;
}

#endif
