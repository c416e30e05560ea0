/* Box 4, publish / adopt: who learns about remote frees, and how an ownerless run finds a new
 * owner (the run life cycle itself is owner.c's table).
 *
 * Boundary:
 *   - hak_free_remote_mt(): a free into a run this thread does not own. One CAS on the run's
 *     word (remote_queue.c) pushes the block, or takes the notification of an armed (full)
 *     run, or claims an orphan whose last block this is;
 *   - a notification is the freed block itself, delivered onto its owner's notify stack: it
 *     counts in the run's used, so the run cannot be released while the delivery is under
 *     way, and the owner learns which run has room when it collects the block (next refill).
 *     The owner is read after the CAS, from the run the block pins; when it is stale (the run
 *     changed hands, the cache was recycled), the cache that collects the block frees it
 *     again as the remote free it then is, so the block reaches the run's current owner;
 *   - hak_adopt_publish(): an exiting owner's run with blocks out goes on the published list
 *     of its class; hak_adopt_slow() takes one for a refill (the bind is owner.c's).
 *
 * Invariants:
 *   - a published run has no owner and is on the published list of its class at most once; it
 *     is adopted by a CAS on its word under that list's lock, so it is adopted at most once,
 *     and never after its last free claimed it (that CAS needs a count above 0);
 *   - a run's word turns PUBLISHED under the list lock, and it is linked before the lock is let
 *     go, so the free that claims it finds it linked when it takes the lock to unlink it;
 *   - a delivered block is on exactly one notify stack; a closed stack takes none.
 */
#include "../internal.h"
#include "remote_queue.h"
#include "tls_sll.h"

static hak_lock_t published_lock[HAK_NUM_CLASSES];
/* Written under published_lock; peeked without it (relaxed) to skip the lock when empty. */
static _Atomic(hak_slab_t *) published[HAK_NUM_CLASSES];

/* ---- publish ------------------------------------------------------------------------------ */

bool hak_adopt_publish(hak_slab_t *m, uint32_t used) {
  hak_class_t c = m->class_idx;
  hak_assert(c < HAK_NUM_CLASSES && m->state == HAK_SLAB_HEAD && m->list == HAK_LIST_NONE);
  hak_assert(hak_owner_of(m) == NULL);
  hak_lock(&published_lock[c]);
  bool ok = hak_rq_orphan(m, used, true);
  if (ok) {
    m->list = HAK_LIST_PUBLISHED;
    m->prev = NULL;
    m->next = atomic_load_explicit(&published[c], hak_relaxed);
    if (m->next != NULL) m->next->prev = m;
    atomic_store_explicit(&published[c], m, hak_relaxed);
    hak_ring_event("publish", m, (uintptr_t)c);
  }
  hak_unlock(&published_lock[c]);
  return ok;
}

/* Takes m off the published list of class c; published_lock[c] is held. */
static void unpublish(hak_slab_t *m, hak_class_t c) {
  if (m->prev != NULL) m->prev->next = m->next;
  else atomic_store_explicit(&published[c], m->next, hak_relaxed);
  if (m->next != NULL) m->next->prev = m->prev;
  m->next = m->prev = NULL;
  m->list = HAK_LIST_NONE;
}

hak_slab_t *hak_adopt_slow(hak_tcache_t *tc, hak_class_t cls) {
  hak_stat_inc(tc->ev.adopt_tries);
  if (atomic_load_explicit(&published[cls], hak_relaxed) == NULL) return NULL; /* peek */
  hak_lock(&published_lock[cls]);
  /* A run claimed by the free of its last block is skipped: its releaser unlinks it. */
  hak_slab_t *m = atomic_load_explicit(&published[cls], hak_relaxed);
  while (m != NULL && !hak_rq_adopt(m)) m = m->next;
  if (m != NULL) unpublish(m, cls);
  hak_unlock(&published_lock[cls]);
  if (m == NULL) return NULL;
  hak_stat_inc(tc->stat.adoptions[cls]);
  hak_ring_event("adopt", m, (uintptr_t)cls);
  return hak_run_bind(tc, m, cls);
}

/* ---- remote free ---------------------------------------------------------------------------- */

/* Pushes the chain onto cache o's notify stack; false when o is no cache or its stack is
 * closed. The chain's blocks pin their run: writing their links is safe until the CAS. */
static bool deliver(hak_tcache_t *o, void *first, void *last) {
  if (o == NULL) return false;
  void *head = atomic_load_explicit(&o->notify, hak_relaxed);
  do {
    if (head == HAK_NOTIFY_CLOSED) return false;
    hak_link_set(last, head);
  } while (!atomic_compare_exchange_weak_explicit(&o->notify, &head, first,
                                                  memory_order_release, hak_relaxed));
  return true;
}

/* The claimant of an orphan whose last block came back: nobody else can see it any more but
 * an adopter walking the published list, which skips it. */
static void release_last(hak_slab_t *m, uintptr_t word) {
  if (word & HAK_RQ_PUBLISHED) {
    hak_class_t c = m->class_idx;
    hak_lock(&published_lock[c]);
    unpublish(m, c);
    hak_unlock(&published_lock[c]);
  }
  hak_run_release_claimed(m);
}

/* Frees the chain into m as a remote free; returns true when it was delivered to m's owner. */
static bool free_chain_mt(hak_slab_t *m, void *first, void *last, uint32_t n,
                          enum hak_rq_mode mode) {
  uintptr_t word;
#if HAK_PLANTED(stale_notify) /* planted bug: the notify target read before the notify CAS, */
  /* and (below) the delivery trusted: the run goes to a cache that no longer owns it */
  hak_tcache_t *target = hak_owner_of(m);
#endif
  hak_sched_point(HAK_SP_BEFORE_PUSH, m);
  switch (hak_rq_free_mt(m, first, last, n, mode, &word)) {
  case HAK_RQ_PUSHED:
    return false;
  case HAK_RQ_LAST:
    release_last(m, word);
    return false;
  case HAK_RQ_DELIVER:
    break;
  }
  hak_sched_point(HAK_SP_BEFORE_DELIVER, m);
#if !HAK_PLANTED(stale_notify)
  /* Read now, where it cannot change under us unless the chain comes back to m. */
  hak_tcache_t *target = hak_owner_of(m);
#endif
  if (deliver(target, first, last)) return true;
  free_chain_mt(m, first, last, n, HAK_RQ_MODE_PUSH); /* no cache to tell: the run has none */
  return false;
}

static enum hak_rq_mode notify_mode(void) {
  return hak_opt.rf_force_notify ? HAK_RQ_MODE_NOTIFY : HAK_RQ_MODE_NORMAL;
}

static void count_remote_free(hak_tcache_t *tc, hak_class_t cls) {
  hak_stat_inc(tc->stat.frees[cls]);
  hak_stat_inc(tc->stat.remote_frees[cls]);
}

/* Pushes the chain of class c's way into its run, one CAS for all of it; the way is empty
 * after. */
static void rbuf_flush(hak_tcache_t *tc, hak_class_t c) {
  hak_rbuf_t *r = &tc->rbuf[c];
  hak_slab_t *m = r->run;
  r->run = NULL;
  tc->rbuf_mask &= ~((uint64_t)1 << c);
  hak_stat_inc(tc->ev.remote_pushes);
  if (free_chain_mt(m, r->first, r->last, r->n, notify_mode())) hak_stat_inc(tc->ev.notifies);
}

void hak_remote_flush(hak_tcache_t *tc) {
  while (tc->rbuf_mask != 0) rbuf_flush(tc, (hak_class_t)__builtin_ctzll(tc->rbuf_mask));
}

/* Holds base back in the way of its class, pushing the way's chain when it is full or belongs
 * to another run. Safe to hold: a held block still counts as out of its run (in used, or in an
 * orphan's count), so the run is not released and its SuperSlab stays mapped until the push;
 * the push is then the last access, as for a single free. */
static void rbuf_add(hak_tcache_t *tc, hak_slab_t *m, hak_class_t c, void *base) {
  hak_rbuf_t *r = &tc->rbuf[c];
  if (r->run != m) {
    if (r->run != NULL) rbuf_flush(tc, c);
    r->run = m;
    r->first = r->last = base;
    r->n = 1;
    tc->rbuf_mask |= (uint64_t)1 << c;
  } else {
    hak_link_set(base, r->first);
    r->first = base;
    r->n++;
  }
  if (r->n >= (uint32_t)hak_opt.remote_batch) rbuf_flush(tc, c);
}

/* A remote free pushed at once (nothing held back), and counted. */
static void free_now_mt(hak_slab_t *m, void *base, hak_tcache_t *tc, hak_class_t cls) {
  bool notified = free_chain_mt(m, base, base, 1, notify_mode());
  if (tc->state == HAK_TC_LIVE) {
    count_remote_free(tc, cls);
    hak_stat_inc(tc->ev.remote_pushes);
    if (notified) hak_stat_inc(tc->ev.notifies);
  } else {
    hak_stats_remote_free_dead(cls, notified);
  }
}

hak_noinline void hak_free_remote_mt(hak_slab_t *m, void *base, hak_tcache_t *tc) {
  /* Read the class before the free: once the block is in the queue the run may be drained,
   * released and rebound by others. */
  hak_class_t cls = m->class_idx;
  /* The fast path checked that the block was carved, not that its run is still bound: a live
   * block keeps its run bound (it counts in used), so a run found free meanwhile means this
   * block was not live. */
  if (hak_unlikely(cls >= HAK_NUM_CLASSES))
    hak_fail("invalid free (block of a free run)", (uint8_t *)base + HAK_HDR_SIZE, hak_ss_of(base),
             -1);
  /* A thread that only frees gets a cache of its own here: its counters and held-back frees. */
  if (tc == &hak_tc_empty && (tc = hak_thread_init_slow()) == NULL) tc = &hak_tc_empty;
  /* Held back only while the run has an owner, who will be back for more blocks: the last
   * frees into an orphan are pushed at once, so it is released (or adopted) without waiting
   * for this thread's next refill, trim or exit. */
  if (tc->state == HAK_TC_LIVE && atomic_load_explicit(&m->owner, hak_relaxed) != NULL) {
    count_remote_free(tc, cls);
    hak_tc_busy_enter(tc); /* a fork meanwhile leaves this cache's held frees alone */
    rbuf_add(tc, m, cls, base);
    hak_tc_busy_leave(tc);
  } else {
    free_now_mt(m, base, tc, cls);
  }
  hak_purge_notify(); /* a push may have taken an orphan's count to 0: the run went back */
}

/* ---- the owner's side of notifications ----------------------------------------------------- */

void hak_notify_collect_chain(hak_tcache_t *tc, void *b) {
  while (b != NULL && b != HAK_NOTIFY_CLOSED) {
    void *next = hak_link_decode(b);
    hak_slab_t *m = hak_run_of(b); /* b pins its run */
#if HAK_PLANTED(stale_notify) /* planted bug: a delivery is trusted to be for a run it owns */
    hak_slab_give_back(tc, m, b);
#else
    if (hak_owner_of(m) == tc) hak_slab_give_back(tc, m, b);
    else free_chain_mt(m, b, b, 1, notify_mode()); /* stale delivery: to the current owner */
#endif
    b = next;
  }
}

void hak_notify_collect(hak_tcache_t *tc) {
  /* Only the owner closes its stack, so an open stack stays open under us. */
  if (atomic_load_explicit(&tc->notify, hak_relaxed) == HAK_NOTIFY_CLOSED) return;
  hak_notify_collect_chain(tc, atomic_exchange_explicit(&tc->notify, NULL, memory_order_acquire));
}

void hak_adopt_lock_all(void) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++) hak_lock(&published_lock[c]);
}

void hak_adopt_unlock_all(void) {
  for (int c = HAK_NUM_CLASSES - 1; c >= 0; c--) hak_unlock(&published_lock[c]);
}
