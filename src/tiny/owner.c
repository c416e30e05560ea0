/* Box 3, ownership: the life cycle of a slab run, who may touch it in each state, and the
 * owner's lists of its runs.
 *
 * Boundary: a run changes state only through the functions below, one per transition; the
 * published lists (adopt.c) and the remote word (remote_queue.c) are the only other places that
 * see a run change hands, and they do it for these functions.
 *
 *  state      | m->remote (remote_queue.h) | owner | list          | who may touch the run
 *  -----------+----------------------------+-------+---------------+---------------------------
 *  FREE       | 0                          | NULL  | (free_mask)   | the ss_lock holder
 *  OWNED      | stack                      | tc    | tc's partial  | tc; others only by the CAS
 *             |                            |       |               | of a remote free
 *  FULL       | stack | NOTIFY (armed)     | tc    | tc's full     | tc; the free that clears
 *             |                            |       |               | NOTIFY delivers its block
 *             |                            |       |               | to tc (the block pins the
 *             |                            |       |               | run until tc collects it)
 *  ORPHANED   | ORPHAN | count | stack     | NULL  | none          | only the free whose CAS
 *             |                            |       |               | takes count to 0
 *  PUBLISHED  | ORPHAN|PUBLISHED|count|stk | NULL  | published[c]  | an adopter under the list
 *             |                            |       |               | lock; else as ORPHANED
 *  CLAIMED    | ORPHAN[|PUBLISHED] | 0     | NULL  | (published    | the thread whose free took
 *             |                            |       | until unlinked)| count to 0, alone
 *
 *  transition                      function               who
 *  FREE -> OWNED                   hak_run_fresh          a refill (ss_lock, then bind)
 *  PUBLISHED -> OWNED (adopted)    hak_run_bind           an adopter, after hak_rq_adopt
 *  OWNED -> FULL                   hak_run_fill           the owner; not while blocks queue
 *  FULL -> OWNED                   hak_run_unfull         the owner: a local free, a delivery
 *  OWNED -> FREE                   hak_run_release        the owner, every block back
 *  OWNED/FULL -> ORPHANED/PUBLISHED hak_run_orphan        the exiting owner (-> FREE if empty)
 *  ORPHANED/PUBLISHED -> CLAIMED   hak_rq_free_mt         the free of the last block out
 *  CLAIMED -> FREE                 hak_run_release_claimed that free's thread
 *
 * Invariants:
 *   - owner changes only here, by CAS: NULL -> cache when a run is bound, cache -> NULL when it
 *     is orphaned or released; at most one owner; only the owner (or the one thread that holds
 *     an ownerless run: its orphaning owner until the word says ORPHAN, an adopter, a claimant)
 *     touches freelist, used and carved;
 *   - the free path reads owner with a relaxed load and compares it with its own cache: only
 *     the owner itself can see equality;
 *   - a run is released only by a thread that knows from state it holds that every block is
 *     back: the owner from used (blocks queued remotely count in used until it drains them),
 *     a claimant from the CAS that took the count to 0. A remote free's CAS is its last access
 *     to the run, and a delivered block counts in used, so nobody can still touch a released
 *     run: the run's SuperSlab may be unmapped at once (superslab.c);
 *   - a run is on exactly one of its owner's lists while owned (partial or full), on the
 *     published list of its class while published, on no list otherwise.
 */
#include "../internal.h"
#include "remote_queue.h"
#include "tls_sll.h"

/* ---- owner word --------------------------------------------------------------------------- */

static void owner_acquire(hak_slab_t *m, hak_tcache_t *tc) {
  hak_tcache_t *expected = NULL;
  bool ok = atomic_compare_exchange_strong_explicit(&m->owner, &expected, tc,
                                                    memory_order_acq_rel, memory_order_acquire);
  hak_check(ok, "bind of a run that already has an owner", m->data, hak_ss_of(m), m->class_idx);
}

static void owner_release(hak_slab_t *m, hak_tcache_t *tc) {
  hak_tcache_t *expected = tc;
  bool ok = atomic_compare_exchange_strong_explicit(&m->owner, &expected, NULL,
                                                    memory_order_acq_rel, memory_order_acquire);
  hak_check(ok, "run given up by a thread that does not own it", m->data, hak_ss_of(m),
            m->class_idx);
}

/* ---- the owner's run lists ---------------------------------------------------------------- */

static hak_slab_t **owned_list(hak_tcache_t *tc, hak_slab_t *m) {
  return m->list == HAK_LIST_FULL ? &tc->full[m->class_idx] : &tc->partial[m->class_idx];
}

static void owned_push(hak_tcache_t *tc, hak_slab_t *m, uint8_t list) {
  m->list = list;
  hak_slab_t **head = owned_list(tc, m);
  m->prev = NULL;
  m->next = *head;
  if (*head) (*head)->prev = m;
  *head = m;
}

static void owned_remove(hak_tcache_t *tc, hak_slab_t *m) {
  hak_assert(m->list == HAK_LIST_PARTIAL || m->list == HAK_LIST_FULL);
  hak_slab_t **head = owned_list(tc, m);
  if (m->prev) m->prev->next = m->next; else *head = m->next;
  if (m->next) m->next->prev = m->prev;
  m->next = m->prev = NULL;
  m->list = HAK_LIST_NONE;
}

/* ---- transitions ---------------------------------------------------------------------------- */

/* The bind boundary, the one place a thread gains a run (fresh or adopted): drain what was
 * freed while it had no owner, check the class binding, acquire, list it. The caller holds the
 * run alone: it took it from the SuperSlab, or its adoption CAS won. */
hak_slab_t *hak_run_bind(hak_tcache_t *tc, hak_slab_t *m, hak_class_t cls) {
  if (atomic_load_explicit(&m->remote, memory_order_acquire) & HAK_RQ_PTR_MASK) {
    uint32_t n = hak_remote_drain(m);
    hak_stat_inc(tc->stat.remote_drains[cls]);
    hak_stat_add(tc->stat.drained_blocks[cls], n);
  }
  hak_check(m->class_idx == cls && m->state == HAK_SLAB_HEAD, "class drift at bind", m->data,
            hak_ss_of(m), m->class_idx);
  hak_assert_expensive(hak_checked_run_ok(m));
  owner_acquire(m, tc);
  owned_push(tc, m, HAK_LIST_PARTIAL);
  return m;
}

hak_slab_t *hak_run_fresh(hak_tcache_t *tc, hak_class_t cls) {
  hak_slab_t *m = hak_superslab_take_run(cls);
  return m ? hak_run_bind(tc, m, cls) : NULL;
}

bool hak_run_fill(hak_tcache_t *tc, hak_slab_t *m) {
  hak_assert(m->list == HAK_LIST_PARTIAL);
  if (!hak_rq_arm(m)) return false; /* blocks are queued: the next refill drains them */
  owned_remove(tc, m);
  owned_push(tc, m, HAK_LIST_FULL);
  return true;
}

/* NOTIFY may stay set: a block delivered for a partial run is given back the same way. The
 * next drain clears it. */
void hak_run_unfull(hak_tcache_t *tc, hak_slab_t *m) {
  hak_assert(m->list == HAK_LIST_FULL);
  owned_remove(tc, m);
  owned_push(tc, m, HAK_LIST_PARTIAL);
}

/* Every block is back and nothing is queued (queued blocks count in used): no other thread
 * holds anything of the run. */
static void run_free(hak_slab_t *m) {
  hak_assert(m->used == 0 && !(atomic_load_explicit(&m->remote, hak_relaxed) & ~HAK_RQ_NOTIFY));
  hak_sched_point(HAK_SP_BEFORE_RELEASE, m);
  hak_superslab_release_run(m);
}

void hak_run_release(hak_tcache_t *tc, hak_slab_t *m) {
  hak_assert(m->used == 0);
  owned_remove(tc, m);
  owner_release(m, tc);
  run_free(m);
}

void hak_run_orphan(hak_tcache_t *tc, hak_slab_t *m) {
  owned_remove(tc, m);
  /* No free of any thread matches the run now; it is still this thread's alone until the word
   * says ORPHAN (nobody else drains an owned word). */
  owner_release(m, tc);
  hak_sched_point(HAK_SP_ORPHAN_PUBLISH, m);
  for (;;) {
#if HAK_PLANTED(orphan_stale_count) /* planted bug: the count misses what the drain takes */
    uint32_t used = m->used;
    hak_remote_drain(m);
    if (m->used == 0) {
#else
    hak_remote_drain(m);
    uint32_t used = m->used;
    if (used == 0) {
#endif
      run_free(m);
      return;
    }
    hak_ring_event("orphan", m, used);
    /* After a successful CAS the run belongs to its last free: no access to it below. */
    if (hak_opt.ss_adopt ? hak_adopt_publish(m, used) : hak_rq_orphan(m, used, false)) break;
  }
  hak_gstat_add(HAK_G_ORPHANED, 1);
}

void hak_run_release_claimed(hak_slab_t *m) {
  hak_remote_drain(m); /* every block is in the freelist now, as release expects */
  hak_check(m->used == 0, "orphan released with blocks still out", m->data, hak_ss_of(m),
            m->class_idx);
  hak_gstat_add(HAK_G_LAST_FREE_RELEASES, 1);
  hak_ring_event("last_free_release", m, 0);
  run_free(m);
}

/* ---- thread exit ------------------------------------------------------------------------------ */

void hak_owner_exit(hak_tcache_t *tc) {
  /* Close the notify stack first: a later delivery finds it closed and pushes to the run. */
  void *delivered = atomic_exchange_explicit(&tc->notify, HAK_NOTIFY_CLOSED, memory_order_acq_rel);
  hak_notify_collect_chain(tc, delivered);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    while (tc->partial[c] != NULL) hak_run_orphan(tc, tc->partial[c]);
    while (tc->full[c] != NULL) hak_run_orphan(tc, tc->full[c]);
  }
}
