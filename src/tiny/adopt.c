/* Box 4, publish / adopt: who learns about remote frees, and how a run changes hands.
 *
 * Boundary:
 *   - hak_free_remote_mt(): a free into a run this thread does not own -> Box 2 push, then a
 *     notify when the queue went from empty to non-empty (every push with
 *     HAKMEM_TINY_RF_FORCE_NOTIFY=1);
 *   - a notify puts an owned run on its owner's notify stack (the owner moves it back to its
 *     partial list at the next refill); an ownerless run was published when it was orphaned;
 *   - hak_orphan_slabs(): thread exit gives up every run; each is published for adoption, or
 *     with HAKMEM_TINY_SS_ADOPT=0 left to be released by the free of its last block;
 *   - bind_acquire() is the one place a thread gains a run, adopted or fresh:
 *     claim -> drain -> bind -> owner acquire.
 *
 * Invariants:
 *   - a published run has no owner and is on the published list of its class at most once;
 *     it is popped under that list's lock, so it is adopted at most once;
 *   - the notify stack of an exiting cache is closed (HAK_NOTIFY_CLOSED) before its runs are
 *     orphaned, so no run is left on a stack nobody reads;
 *   - an orphan whose blocks have all come back is released by the free of its last block,
 *     not kept for adoption: with adoption off it is owned by orphan_token and that free claims
 *     it by an owner CAS; a published one is claimed by a CAS of orphan_used (its frozen used
 *     count) to 0, which adopters must win too. Either way exactly one thread takes it.
 */
#include "../internal.h"
#include "tls_sll.h"

#define HAK_NOTIFY_CLOSED ((hak_slab_t *)1)

static hak_lock_t published_lock[HAK_NUM_CLASSES];
/* Written under published_lock; peeked without it (relaxed) to skip the lock when empty. */
static _Atomic(hak_slab_t *) published[HAK_NUM_CLASSES];

/* Owner tokens, never a thread's cache (so no free path ever matches them): an orphan waiting
 * for its last free (adoption off), and a thread in the middle of releasing such an orphan. A
 * notify to either finds a closed stack. */
static hak_tcache_t orphan_token = {.state = HAK_TC_DEAD, .notify = HAK_NOTIFY_CLOSED};
static hak_tcache_t releasing_token = {.state = HAK_TC_DEAD, .notify = HAK_NOTIFY_CLOSED};

/* ---- publish ------------------------------------------------------------------------------ */

/* Called by the run's last owner right after it let go; nobody else can see the run yet. */
static void publish(hak_slab_t *m) {
  int c = m->class_idx;
  hak_assert(c < HAK_NUM_CLASSES && m->state == HAK_SLAB_HEAD && m->list == HAK_LIST_NONE);
  hak_lock(&published_lock[c]);
  hak_assert(hak_owner_of(m) == NULL);
  m->list = HAK_LIST_PUBLISHED;
  m->prev = NULL;
  m->next = atomic_load_explicit(&published[c], hak_relaxed);
  if (m->next != NULL) m->next->prev = m;
  atomic_store_explicit(&published[c], m, hak_relaxed);
  atomic_store_explicit(&m->orphan_used, m->used, memory_order_release);
  hak_unlock(&published_lock[c]);
  hak_ring_event("publish", m, (uintptr_t)c);
}

/* Takes m off the published list of class c; published_lock[c] is held. */
static void unpublish(hak_slab_t *m, int c) {
  if (m->prev != NULL) m->prev->next = m->next;
  else atomic_store_explicit(&published[c], m->next, hak_relaxed);
  if (m->next != NULL) m->next->prev = m->prev;
  m->next = m->prev = NULL;
  m->list = HAK_LIST_NONE;
}

/* The claim on a published run, for adoption or release: orphan_used goes from the run's frozen
 * used count to 0, exactly once. Whoever wins owns the run's next step; the others leave it. */
static bool claim_published(hak_slab_t *m, uint32_t expect) {
  return expect != 0 && atomic_compare_exchange_strong_explicit(&m->orphan_used, &expect, 0,
                                                                memory_order_acq_rel, hak_relaxed);
}

/* ---- the bind boundary -------------------------------------------------------------------- */

/* The thread has claimed m (popped it from the published list, or took it fresh from the
 * SuperSlab): drain what was freed while it had no owner, check the class binding, acquire. */
static hak_slab_t *bind_acquire(hak_tcache_t *tc, hak_slab_t *m, int cls, bool claimed_owner) {
  if (atomic_load_explicit(&m->remote_head, memory_order_acquire)) {
    uint32_t n = hak_remote_drain(m);
    hak_stat_inc(tc->stat[cls].remote_drains);
    hak_stat_add(tc->stat[cls].drained_blocks, n);
  }
  hak_check(m->class_idx == cls && m->state == HAK_SLAB_HEAD, "class drift at bind", m->data,
            hak_ss_of(m), m->class_idx);
  hak_assert_expensive(hak_checked_run_ok(m));
  if (!claimed_owner)
    hak_check(hak_owner_acquire(m, tc), "bind of a run that already has an owner", m->data,
              hak_ss_of(m), cls);
  hak_owned_push(tc, m, HAK_LIST_PARTIAL);
  return m;
}

hak_slab_t *hak_adopt_slow(hak_tcache_t *tc, int cls) {
  hak_stat_inc(tc->ev.adopt_tries);
  if (atomic_load_explicit(&published[cls], hak_relaxed) == NULL) return NULL; /* peek */
  hak_lock(&published_lock[cls]);
  /* A run claimed by the free of its last block is skipped: its releaser unlinks it. */
  hak_slab_t *m = atomic_load_explicit(&published[cls], hak_relaxed);
  while (m != NULL && !claim_published(m, atomic_load_explicit(&m->orphan_used, hak_relaxed)))
    m = m->next;
  if (m != NULL) {
    unpublish(m, cls);
    /* The owner CAS happens under the list lock, so a concurrent publish (which requires no
     * owner) cannot put the run back while it is being adopted. */
    hak_check(hak_owner_acquire(m, tc), "published run already owned", m->data, hak_ss_of(m),
              cls);
  }
  hak_unlock(&published_lock[cls]);
  if (m == NULL) return NULL;
  hak_stat_inc(tc->stat[cls].adoptions);
  hak_ring_event("adopt", m, (uintptr_t)cls);
  return bind_acquire(tc, m, cls, true);
}

hak_slab_t *hak_fresh_run(hak_tcache_t *tc, int cls) {
  hak_slab_t *m = hak_superslab_take_run(cls);
  return m ? bind_acquire(tc, m, cls, false) : NULL;
}

/* ---- notify -------------------------------------------------------------------------------- */

void hak_notify_mt(hak_slab_t *m) {
  hak_tcache_t *owner = hak_owner_of(m);
  /* No owner: the run is an orphan its exiting owner published (or is publishing) already;
   * whoever adopts it drains the queue. */
  if (owner == NULL) return;
  if (atomic_exchange_explicit(&m->notified, 1, memory_order_acq_rel)) return;
  hak_slab_t *head = atomic_load_explicit(&owner->notify, hak_relaxed);
  do {
    if (head == HAK_NOTIFY_CLOSED) {
      /* The owner is exiting: it will publish or release the run itself. */
      atomic_store_explicit(&m->notified, 0, memory_order_release);
      return;
    }
    m->notify_next = head;
  } while (!atomic_compare_exchange_weak_explicit(&owner->notify, &head, m,
                                                  memory_order_release, hak_relaxed));
}

void hak_notify_collect(hak_tcache_t *tc) {
  /* Only the owner closes its stack, so a closed stack stays closed under us. */
  if (atomic_load_explicit(&tc->notify, hak_relaxed) == HAK_NOTIFY_CLOSED) return;
  hak_slab_t *m = atomic_exchange_explicit(&tc->notify, NULL, memory_order_acquire);
  while (m != NULL) {
    hak_slab_t *next = m->notify_next;
    atomic_store_explicit(&m->notified, 0, memory_order_release);
    /* A run no longer ours was left here by a late notify to this recycled cache; its new
     * owner or its publisher takes care of it. */
    if (hak_owner_of(m) == tc && m->list == HAK_LIST_FULL) {
      hak_owned_remove(tc, m);
      hak_owned_push(tc, m, HAK_LIST_PARTIAL);
    }
    m = next;
  }
}

/* ---- remote free --------------------------------------------------------------------------- */

/* The tail of both releases below: this thread holds m as releasing_token; every block has
 * come back (what is left is in the remote queue). */
static void release_claimed(hak_slab_t *m, const char *what, const char *event) {
  hak_remote_drain(m);
  hak_check(m->used == 0, what, m->data, hak_ss_of(m), m->class_idx);
  hak_owner_release(m, &releasing_token);
  hak_gstat_add(HAK_G_LAST_FREE_RELEASES, 1);
  hak_ring_event(event, m, 0);
  hak_superslab_release_run(m);
}

/* An orphan whose blocks have all come back (adoption off): the claimant drains and frees it. */
static void release_orphan(hak_slab_t *m) {
  if (!hak_owner_transfer(m, &orphan_token, &releasing_token)) return;
  release_claimed(m, "orphan released with blocks still out", "orphan_release");
}

/* A published run whose last block came back: this thread claimed it (claim_published), so no
 * adopter will take it; nobody needs to. */
static void release_published(hak_slab_t *m) {
  int cls = m->class_idx;
  hak_lock(&published_lock[cls]);
  unpublish(m, cls);
  hak_unlock(&published_lock[cls]);
  hak_check(hak_owner_acquire(m, &releasing_token), "claimed published run has an owner", m->data,
            hak_ss_of(m), cls);
  release_claimed(m, "published run released with blocks still out", "published_release");
}

/* remote_count: the queue's count after the caller's push (or as the orphaning thread sees it);
 * it equals the run's used count once every block out of it has come back. */
static void maybe_release_orphan(hak_slab_t *m, uint32_t remote_count) {
  hak_tcache_t *owner = hak_owner_of(m);
  if (owner == &orphan_token && remote_count == m->used) release_orphan(m);
  /* orphan_used is 0 unless the run is published, and a count is at least 1 here. */
  if (owner == NULL && claim_published(m, remote_count)) {
    /* The caller's count may be stale: the run may have been adopted and published again
     * since its push, with a used count that happens to be equal. Only the queue's count now
     * says whether every block is back; if not, the claim is given back. */
    if (atomic_load_explicit(&m->remote_count, memory_order_acquire) == remote_count)
      release_published(m);
    else
      atomic_store_explicit(&m->orphan_used, remote_count, memory_order_release);
  }
}

hak_noinline void hak_free_remote_mt(hak_slab_t *m, void *base, hak_tcache_t *tc,
                                     bool hint_hit) {
  /* Read the class before the push: once the block is in the queue the run may be drained,
   * released and rebound by others. */
  unsigned cls = m->class_idx;
  uint32_t count;
  bool first = hak_remote_push_mt(m, base, &count);
  bool notify = first || hak_opt.rf_force_notify;
  if (tc->state == HAK_TC_LIVE) {
    hak_stat_inc(tc->stat[cls].frees);
    hak_stat_inc(tc->stat[cls].remote_frees);
    if (hint_hit) hak_stat_inc(tc->stat[cls].hint_hits);
    if (notify) hak_stat_inc(tc->ev.notifies);
  } else {
    hak_stats_remote_free_dead((int)cls, notify);
  }
  if (notify) hak_notify_mt(m);
  maybe_release_orphan(m, count);
}

/* ---- thread exit ---------------------------------------------------------------------------- */

static void orphan_one(hak_tcache_t *tc, hak_slab_t *m) {
  if (atomic_load_explicit(&m->remote_head, memory_order_acquire)) hak_remote_drain(m);
  if (m->used == 0) {
    hak_owned_release_run(tc, m);
    return;
  }
  hak_owned_remove(tc, m);
  hak_gstat_add(HAK_G_ORPHANED, 1);
  hak_ring_event("orphan", m, m->used);
  if (hak_opt.ss_adopt) {
    hak_owner_release(m, tc);
    publish(m);
  } else {
    hak_check(hak_owner_transfer(m, tc, &orphan_token), "orphan of a run not owned", m->data,
              hak_ss_of(m), m->class_idx);
  }
  /* The last blocks may have come back between the drain above and now. */
  maybe_release_orphan(m, atomic_load_explicit(&m->remote_count, memory_order_acquire));
}

void hak_orphan_slabs(hak_tcache_t *tc) {
  /* Close the notify stack first: a late notify now finds it closed and leaves the run to us. */
  hak_slab_t *m = atomic_exchange_explicit(&tc->notify, HAK_NOTIFY_CLOSED, memory_order_acq_rel);
  while (m != NULL && m != HAK_NOTIFY_CLOSED) {
    hak_slab_t *next = m->notify_next;
    atomic_store_explicit(&m->notified, 0, memory_order_release);
    m = next;
  }
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    while (tc->partial[c] != NULL) orphan_one(tc, tc->partial[c]);
    while (tc->full[c] != NULL) orphan_one(tc, tc->full[c]);
  }
}

void hak_adopt_lock_all(void) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++) hak_lock(&published_lock[c]);
}

void hak_adopt_unlock_all(void) {
  for (int c = HAK_NUM_CLASSES - 1; c >= 0; c--) hak_unlock(&published_lock[c]);
}
