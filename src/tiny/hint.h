/* Hint box (inline half of hint.c): per-thread cache of recent SuperSlabs for headerless free.
 *
 * A hit must match the region and the global release epoch, which is bumped before any
 * SuperSlab is unmapped and whenever one is reused (its generation bumps): an unchanged epoch
 * implies an unchanged generation, so a hint never resolves a pointer into a recycled or
 * unmapped region, and the hit reads nothing of the SuperSlab. HAKMEM_TINY_SS_TLS_HINT=0
 * keeps the hint empty: every lookup misses and free goes to the registry. An empty way holds
 * epoch 0, which the global epoch (from 1, only growing) never equals. */
#ifndef HAKMEM_HINT_H
#define HAKMEM_HINT_H

#include "../internal.h"

static inline bool hak_hint_hit(const hak_tcache_t *tc, uintptr_t ss) {
#if HAK_HINT_COMPILED
  uint64_t epoch = atomic_load_explicit(&hak_ss_release_epoch, hak_relaxed);
#pragma GCC unroll 8
  for (int i = 0; i < HAK_HINT_WAYS; i++) {
    const hak_hint_t *h = &tc->hint[i];
#if HAK_PLANTED(stale_hint)
    if (h->ss == ss) return true; /* planted bug: neither generation nor epoch checked */
#endif
    if (h->ss == ss && h->epoch == epoch) {
      hak_log_once_at("[HINT_LOOKUP]", (void *)ss, (void *)ss, h->gen, epoch);
      return true;
    }
  }
#endif
  (void)tc;
  (void)ss;
  return false;
}

#endif /* HAKMEM_HINT_H */
