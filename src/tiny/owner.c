/* Box 3, ownership: which thread cache owns a slab run.
 *
 * Boundary: hak_owner_acquire() and hak_owner_release(), called only where a run is bound to a
 * thread (adopt.c: fresh runs and adoptions) or given up (thread exit, empty-run release).
 *
 * Invariants:
 *   - owner changes only by compare-and-swap here: NULL -> cache, cache -> NULL, or between a
 *     cache and an owner token of adopt.c (orphan waiting for its last free, releaser);
 *   - at most one owner at a time; only the owner touches the run's freelist, used and carved
 *     (an ownerless run is touched only by the one thread that claimed it);
 *   - the free path reads owner with a plain (relaxed) load and compares it with its own cache:
 *     equality can only be true for the owner itself.
 */
#include "../internal.h"

bool hak_owner_acquire(hak_slab_t *m, hak_tcache_t *tc) {
  hak_tcache_t *expected = NULL;
  return atomic_compare_exchange_strong_explicit(&m->owner, &expected, tc, memory_order_acq_rel,
                                                 memory_order_acquire);
}

void hak_owner_release(hak_slab_t *m, hak_tcache_t *tc) {
  hak_tcache_t *expected = tc;
  bool ok = atomic_compare_exchange_strong_explicit(&m->owner, &expected, NULL,
                                                    memory_order_acq_rel, memory_order_acquire);
  hak_check(ok, "slab released by a thread that does not own it", m->data, hak_ss_of(m),
            m->class_idx);
}

bool hak_owner_transfer(hak_slab_t *m, hak_tcache_t *from, hak_tcache_t *to) {
  hak_tcache_t *expected = from;
  return atomic_compare_exchange_strong_explicit(&m->owner, &expected, to, memory_order_acq_rel,
                                                 memory_order_acquire);
}
