/* Hint box: a per-thread cache of the SuperSlabs this thread freed into last, so a headerless
 * free can skip the registry lookup (hint.h holds the inline lookup).
 *
 * Boundary: hak_hint_hit() on the free path; hak_hint_insert() after a registry lookup.
 *
 * Invariants:
 *   - an entry records the SuperSlab's generation and the release epoch at insert time; a hit
 *     requires both to be unchanged, so a recycled or unmapped SuperSlab never hits;
 *   - HAKMEM_TINY_SS_TLS_HINT=0 never inserts: the path is gone and every free goes to the
 *     registry (hint_hits stays 0);
 *   - only the owning thread reads or writes its entries.
 */
#include "hint.h"
#include "tls_sll.h"

void hak_hint_insert(hak_tcache_t *tc, uintptr_t ss) {
#if HAK_HINT_COMPILED
  if (!hak_opt.tls_hint) return;
  /* Two ways, most recent first. */
  tc->hint[1] = tc->hint[0];
  tc->hint[0].ss = ss;
  tc->hint[0].gen = atomic_load_explicit(&((hak_superslab_t *)ss)->generation, hak_relaxed);
  tc->hint[0].epoch = atomic_load_explicit(&hak_ss_release_epoch, hak_relaxed);
#else
  (void)tc;
  (void)ss;
#endif
}

void hak_free_local_hint_miss(hak_tcache_t *tc, void *base, unsigned cls) {
  hak_stat_inc(tc->stat.hint_misses[cls]);
  hak_hint_insert(tc, (uintptr_t)base & ~(uintptr_t)HAK_SS_MASK);
  hak_stat_inc(tc->stat.frees[cls]);
  if (hak_sll_push(&tc->sll[cls], base)) hak_spill_slow(tc, (int)cls);
}
