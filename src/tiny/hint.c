/* Hint box: a per-thread cache of the SuperSlabs this thread freed into last, so a headerless
 * free can skip the registry lookup (hint.h holds the inline lookup).
 *
 * Boundary: hak_hint_hit() on the free path; hak_hint_insert() after a registry lookup.
 *
 * Invariants:
 *   - an entry records the release epoch at insert time (and the SuperSlab's generation, for
 *     diagnostics); a hit requires the epoch unchanged, and the epoch moves on every unmap and
 *     every reuse, so a recycled or unmapped SuperSlab never hits;
 *   - HAKMEM_TINY_SS_TLS_HINT=0 never inserts: the path is gone and every free goes to the
 *     registry (every free counts a miss, so the derived hint_hits stays 0);
 *   - only a live cache is written: a thread without a cache of its own (the static empty cache,
 *     or the shared dead cache after its exit) asks the registry, inserts nothing and counts its
 *     miss in the process totals;
 *   - only the owning thread reads or writes its entries.
 */
#include "../fast.h"

void hak_hint_insert(hak_tcache_t *tc, uintptr_t ss) {
#if HAK_HINT_COMPILED
  if (!hak_opt.tls_hint || hak_tracing()) return; /* no hit may skip a traced free */
  /* The ways, most recent first. */
  for (int i = HAK_HINT_WAYS - 1; i > 0; i--) tc->hint[i] = tc->hint[i - 1];
  tc->hint[0].ss = ss;
  tc->hint[0].gen = atomic_load_explicit(&((hak_superslab_t *)ss)->generation, hak_relaxed);
  tc->hint[0].epoch = atomic_load_explicit(&hak_ss_release_epoch, hak_relaxed);
#else
  (void)tc;
  (void)ss;
#endif
}

/* A free the hint did not resolve (entry: from hak_free, which records it while tracing): the
 * registry's answer (NULL when the address is no
 * SuperSlab's), inserted, and the miss counted against the class of the run it lands in when
 * that run is bound; then the free itself. Only misses are counted: hint_hits is
 * frees - hint_misses (stats.c), so a hit costs no counter on the fast path. */
void hak_free_hint_miss(void *p, hak_tcache_t *tc, bool entry) {
  if (entry && hak_tracing()) {
    hak_free_traced(p);
    return;
  }
  uintptr_t u = (uintptr_t)p;
  hak_superslab_t *ss = hak_registry_ss(u);
  if (ss == NULL) {
    hak_free_slow(p);
    return;
  }
  hak_class_t c = hak_run_in(ss, u)->class_idx;
  if (tc->state == HAK_TC_LIVE) {
    hak_hint_insert(tc, (uintptr_t)ss);
    if (c < HAK_NUM_CLASSES) hak_stat_inc(tc->stat.hint_misses[c]);
  } else if (c < HAK_NUM_CLASSES) {
    hak_stats_hint_miss_shared(c); /* the static empty and dead caches are shared: no writes */
  }
  hak_free_in(p, tc, ss);
}
