/* Box 2, remote queue: a free from a thread that does not own the slab run is pushed onto the
 * run's MPSC stack; the owner (or the one thread that claimed an ownerless run) drains it.
 *
 * Boundary: hak_remote_push_mt() from any thread; hak_remote_drain() by the owner only.
 *
 * Invariants:
 *   - push touches only remote_head and remote_count: no ownership change, no publish, no list
 *     (the caller, adopt.c, decides whether to notify);
 *   - drain takes the whole stack with one exchange, so each block is drained exactly once,
 *     and moves it onto the run's freelist, lowering used by the count drained;
 *   - remote_count == blocks pushed and not yet drained, once pushes in flight have landed.
 * The stack is never popped one element at a time, so it has no ABA problem.
 */
#include "../internal.h"
#include "tls_sll.h"

bool hak_remote_push_mt(hak_slab_t *m, void *base, uint32_t *count_after) {
  hak_assert_base(base);
  uintptr_t old = atomic_load_explicit(&m->remote_head, hak_relaxed);
  do {
    hak_link_set(base, (void *)old);
  } while (!atomic_compare_exchange_weak_explicit(&m->remote_head, &old, (uintptr_t)base,
                                                  memory_order_release, hak_relaxed));
  *count_after = atomic_fetch_add_explicit(&m->remote_count, 1, memory_order_acq_rel) + 1;
  return old == 0;
}

uint32_t hak_remote_drain(hak_slab_t *m) {
#if HAK_PLANTED(remote_double_drain) /* planted bug: the queue stays, the next drain takes it again */
  uintptr_t head = atomic_load_explicit(&m->remote_head, memory_order_acquire);
#else
  uintptr_t head = atomic_exchange_explicit(&m->remote_head, 0, memory_order_acquire);
#endif
  uint32_t n = 0;
  void *b = (void *)head;
  while (b != NULL) {
    void *next = hak_link_get(b);
    hak_assert_base(b);
    hak_link_set(b, m->freelist);
    m->freelist = b;
    n++;
    hak_assert_expensive(n <= m->used); /* a cycle would never end */
    b = next;
  }
  hak_check(n <= m->used, "remote drain returned more blocks than were out", (void *)head,
            hak_ss_of(m), m->class_idx);
  m->used -= n;
  atomic_fetch_sub_explicit(&m->remote_count, n, memory_order_acq_rel);
  hak_log_once_at("[REMOTE_DRAIN]", (void *)head, hak_ss_of(m), n, m->used);
  return n;
}
