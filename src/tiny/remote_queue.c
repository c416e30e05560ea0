/* Box 2, remote queue: a free from a thread that does not own the run goes into the run's one
 * cross-thread word (its format: remote_queue.h); the owner, or the one thread that claimed an
 * ownerless run, drains it.
 *
 * Boundary: hak_rq_free_mt() from any thread; hak_remote_drain(), hak_rq_arm() and
 * hak_rq_orphan() by the owner; hak_rq_adopt() by an adopter under the published lock.
 *
 * Invariants:
 *   - a remote free's decision and its effect are one CAS on m->remote, and that CAS is its
 *     last access to the run: it reads nothing of the run after it and writes nothing. The
 *     one exception is HAK_RQ_DELIVER, where the chain was not pushed and so still counts in
 *     the run's used: the run cannot be released until the chain is back, wherever it goes;
 *   - no other field of the run changes here: no owner, no list, no publish (adopt.c and
 *     owner.c decide what follows);
 *   - drain takes the whole stack with one exchange, so each block is drained exactly once; the
 *     drainer counts what it drains (used -= n), so no count races with the pushes;
 *   - an orphan's count is the number of its blocks still out: it only goes down, by the chain
 *     length, in the same CAS that pushes the chain; the CAS that takes it to 0 claims the run,
 *     and an adopter's CAS (which needs a count above 0) cannot succeed after it.
 * The stack is never popped one element at a time, so it has no ABA problem.
 */
#include "remote_queue.h"

#include "tls_sll.h"

_Static_assert((HAK_LINK_OFF + HAK_HDR_SIZE) % 8 == 0 && (16 - HAK_HDR_SIZE) % 8 == 0,
               "bases are 8-aligned: three flag bits");

enum hak_rq_outcome hak_rq_free_mt(hak_slab_t *m, void *first, void *last, uint32_t n,
                                   enum hak_rq_mode mode, uintptr_t *word_out) {
  hak_assert_base(first);
  hak_assert_base(last);
  uintptr_t w = atomic_load_explicit(&m->remote, hak_relaxed), nw;
  for (;;) {
    uintptr_t flags = w & HAK_RQ_FLAGS;
    if (!(flags & HAK_RQ_ORPHAN) && mode != HAK_RQ_MODE_PUSH &&
        ((flags & HAK_RQ_NOTIFY) || mode == HAK_RQ_MODE_NOTIFY)) {
      /* Take the notification: NOTIFY off, nothing pushed, the chain stays out. */
      nw = w & ~HAK_RQ_NOTIFY;
      if (nw == w || atomic_compare_exchange_weak_explicit(&m->remote, &w, nw,
                                                           memory_order_acq_rel, hak_relaxed)) {
        *word_out = nw;
        return HAK_RQ_DELIVER;
      }
      continue;
    }
    uint32_t count = hak_rq_count(w);
    if (flags & HAK_RQ_ORPHAN) {
      hak_check(count >= n, "remote free into a run with no block out (double free?)", first,
                hak_ss_of(m), m->class_idx);
      count -= n;
    }
    hak_link_set(last, hak_rq_head(w));
    nw = hak_rq_word(first, flags, count);
    if (atomic_compare_exchange_weak_explicit(&m->remote, &w, nw, memory_order_acq_rel,
                                              hak_relaxed))
      break;
  }
  /* m may be released and unmapped from here on, unless this free claimed it. */
  hak_sched_point(HAK_SP_AFTER_PUSH, first);
#if HAK_PLANTED(remote_touch_after_push) /* planted bug: the run read after the push */
  /* After a preemption right there, which a loaded machine gives at random: the yield makes
   * it frequent enough for a few seconds of churn to crash now and then (hakmem-triage). */
  hak_os_yield();
  if (atomic_load_explicit(&m->owner, memory_order_acquire) == NULL) hak_ring_event("rq", m, 0);
#endif
  *word_out = nw;
  return (nw & HAK_RQ_ORPHAN) && hak_rq_count(nw) == 0 ? HAK_RQ_LAST : HAK_RQ_PUSHED;
}

uint32_t hak_remote_drain(hak_slab_t *m) {
#if HAK_PLANTED(remote_double_drain) /* planted bug: the queue stays, the next drain takes it again */
  uintptr_t w = atomic_load_explicit(&m->remote, memory_order_acquire);
#else
  uintptr_t w = atomic_exchange_explicit(&m->remote, 0, memory_order_acquire);
#endif
  hak_sched_point(HAK_SP_DRAIN, m);
  /* The chain is spliced onto the freelist whole (its links are freelist links already): the
   * walk only reads, to count it and find its last block. */
  uint32_t n = 0;
  void *first = hak_rq_head(w), *last = NULL;
  for (void *b = first; b != NULL; b = hak_link_get(b)) {
    hak_assert_base(b);
    /* Checked per block, in every build: a corrupt chain (a cycle) would never end. */
    hak_check(++n <= m->used, "remote drain returned more blocks than were out", first,
              hak_ss_of(m), m->class_idx);
    last = b;
  }
  if (last != NULL) {
    hak_link_set(last, m->freelist);
    m->freelist = first;
  }
  m->used -= n;
  hak_log_once_at("[REMOTE_DRAIN]", hak_rq_head(w), hak_ss_of(m), n, m->used);
  return n;
}

bool hak_rq_arm(hak_slab_t *m) {
  uintptr_t expect = 0;
  /* Still armed from an earlier fill (a local free brought the run back without a drain). */
  return atomic_compare_exchange_strong_explicit(&m->remote, &expect, HAK_RQ_NOTIFY,
                                                 memory_order_acq_rel, hak_relaxed) ||
         expect == HAK_RQ_NOTIFY;
}

bool hak_rq_orphan(hak_slab_t *m, uint32_t used, bool published) {
  hak_assert(used > 0 && used <= HAK_RQ_COUNT_MAX);
  uintptr_t expect = 0;
  uintptr_t w = hak_rq_word(NULL, HAK_RQ_ORPHAN | (published ? HAK_RQ_PUBLISHED : 0), used);
  return atomic_compare_exchange_strong_explicit(&m->remote, &expect, w, memory_order_acq_rel,
                                                 hak_relaxed);
}

bool hak_rq_adopt(hak_slab_t *m) {
  uintptr_t w = atomic_load_explicit(&m->remote, memory_order_acquire);
  do {
    if (!(w & HAK_RQ_ORPHAN) || hak_rq_count(w) == 0) return false;
  } while (!atomic_compare_exchange_weak_explicit(&m->remote, &w, w & HAK_RQ_PTR_MASK,
                                                  memory_order_acq_rel, memory_order_acquire));
  return true;
}
