/* Refill / magazine: batch moves between a thread's TLS SLLs and the slab runs it owns (the
 * owner's lists of those runs, partial and full, and their transitions are owner.c's).
 *
 * Boundary: hak_refill_slow() when a TLS SLL is empty, hak_spill_slow() when one is above its
 * capacity, hak_sll_flush_all() at thread exit. Only the owning thread calls them.
 *
 * Invariants:
 *   - no block is both in a TLS SLL and a slab freelist: a block moves by one pop and one push;
 *   - used counts blocks out of a run (in use, in a TLS SLL, queued or delivered remotely) and
 *     balances after every move: refill adds what it moves, spill and drain subtract what they
 *     return;
 *   - every list holds base pointers (asserted at each push and pop in debug builds);
 *   - at most one empty run per class stays on the partial list as a spare: a free that empties
 *     a run releases it unless it is the only partial run, and a run moving to the head
 *     releases an empty one it displaces;
 *   - an exhausted run is armed and moved to the full list (hak_run_fill) only when nothing is
 *     queued for it; it comes back with the next local free or delivered block.
 * ACE (HAKMEM_ACE_ENABLED): a class doubles its TLS capacity, up to about 256 KiB of blocks,
 * when it refills right after a spill (it oscillates: its working set is larger than the
 * cache, and every block moves through the runs twice) or refills four times without a spill.
 * The capacity changes only at a refill, so a free spills exactly when its list is full.
 */
#include "../internal.h"
#include "remote_queue.h"
#include "tls_sll.h"

/* ---- refill -------------------------------------------------------------------------------- */

/* refill_streak after a spill: the next refill finds the class oscillating. */
#define ACE_SPILLED UINT32_MAX

static void ace_on_refill(hak_tcache_t *tc, hak_class_t cls) {
  if (!hak_opt.ace_enabled) return;
  hak_sll_t *s = &tc->sll[cls];
  uint32_t max = hak_tls_cap_max(cls);
  bool oscillating = tc->refill_streak[cls] == ACE_SPILLED;
  if (oscillating) tc->refill_streak[cls] = 0;
  if ((oscillating || ++tc->refill_streak[cls] >= 4) && s->cap < max) {
    hak_sll_set_cap(s, s->cap * 2 < max ? s->cap * 2 : max);
    tc->refill_streak[cls] = 0;
    hak_stat_inc(tc->ev.ace_grows);
  }
}

/* Moves up to want blocks of run m (remote frees first, then its freelist, then uncarved
 * space) onto the SLL. */
static uint32_t take_blocks(hak_tcache_t *tc, hak_slab_t *m, hak_sll_t *s, uint32_t want) {
  if (atomic_load_explicit(&m->remote, hak_relaxed) & HAK_RQ_PTR_MASK) {
    uint32_t n = hak_remote_drain(m);
    hak_stat_inc(tc->stat.remote_drains[m->class_idx]);
    hak_stat_add(tc->stat.drained_blocks[m->class_idx], n);
  }
  uint32_t n = 0;
  while (n < want && m->freelist != NULL) {
    void *b = m->freelist;
    m->freelist = hak_link_get(b);
    hak_sll_push(s, b);
    n++;
  }
  uint32_t carved = atomic_load_explicit(&m->carved, hak_relaxed);
  while (n < want && carved < m->capacity) {
    uint8_t *b = m->data + (size_t)carved * m->stride;
#if HAKMEM_CHECKED
    hak_checked_fill(b, m->class_idx, m->stride); /* so that every listed block has the fill */
#endif
    hak_sll_push(s, b);
    carved++;
    n++;
  }
  /* Published before any of these blocks can leave the thread (the free check reads it). */
  atomic_store_explicit(&m->carved, carved, hak_relaxed);
  m->used += n;
  hak_assert(m->used <= carved && carved <= m->capacity);
  return n;
}

static bool run_exhausted(const hak_slab_t *m) {
  return m->freelist == NULL && atomic_load_explicit(&m->carved, hak_relaxed) == m->capacity;
}

void *hak_refill_slow(hak_tcache_t *tc, hak_class_t cls) {
  hak_tc_busy_enter(tc);
  if (atomic_load_explicit(&tc->notify, hak_relaxed) != NULL) hak_notify_collect(tc);
  ace_on_refill(tc, cls);
  hak_sll_t *s = &tc->sll[cls];
  uint32_t want = s->cap / 2 + 1;
  hak_remote_flush(tc); /* a thread that allocates sends what it held back now and then */
  if (hak_opt.must_adopt) hak_adopt_slow(tc, cls);
  uint32_t got = 0;
  while (got == 0) {
    hak_slab_t *m = tc->partial[cls];
    if (m == NULL && hak_opt.ss_adopt) m = hak_adopt_slow(tc, cls);
    if (m == NULL) m = hak_run_fresh(tc, cls);
    if (m == NULL) {
      hak_tc_busy_leave(tc);
      return NULL;
    }
    got = take_blocks(tc, m, s, want);
    if (run_exhausted(m)) hak_run_fill(tc, m);
  }
  hak_stat_inc(tc->stat.refills[cls]);
  hak_assert_expensive(hak_checked_sll_ok(tc, cls));
  if (++tc->refills_since_tick >= 64) {
    tc->refills_since_tick = 0;
    hak_superslab_tick();
  }
  hak_ring_event("refill", tc, (uintptr_t)cls << 32 | got);
  hak_tc_busy_leave(tc);
  return hak_sll_pop(s);
}

/* ---- spill --------------------------------------------------------------------------------- */

void hak_slab_give_back(hak_tcache_t *tc, hak_slab_t *m, void *base) {
  hak_check(hak_owner_of(m) == tc, "TLS SLL holds a block of a slab it does not own", base,
            hak_ss_of(base), m->class_idx);
#if HAK_PLANTED(magazine_userptr)
  base = (uint8_t *)base + HAK_HDR_SIZE; /* planted bug: the freelist gets the user pointer */
#endif
  hak_link_set(base, m->freelist);
  m->freelist = base;
  m->used--;
  if (m->list == HAK_LIST_FULL) {
    hak_run_unfull(tc, m);
    /* The run it displaced from the head may be empty: one spare is enough. */
    if (m->next != NULL && m->next->used == 0) hak_run_release(tc, m->next);
  }
  /* An empty run is kept only while it is the class's only partial run. */
  if (m->used == 0 && (m->prev != NULL || m->next != NULL)) hak_run_release(tc, m);
}

void hak_spill_slow(hak_tcache_t *tc, hak_class_t cls) {
  hak_tc_busy_enter(tc);
  hak_sll_t *s = &tc->sll[cls];
  uint32_t target = s->cap / 2;
  while (hak_sll_count(s) > target) {
    void *b = hak_sll_pop(s);
    hak_slab_t *m = hak_run_of(b);
    hak_check(m->class_idx == cls, "TLS SLL holds a block of another class", b, hak_ss_of(b),
              cls);
    hak_slab_give_back(tc, m, b);
  }
  tc->refill_streak[cls] = ACE_SPILLED;
  hak_stat_inc(tc->stat.spills[cls]);
  hak_assert_expensive(hak_checked_sll_ok(tc, cls));
  hak_tc_busy_leave(tc);
  hak_purge_notify(); /* emptied runs went back to their SuperSlabs */
}

void hak_sll_flush_all(hak_tcache_t *tc) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_sll_t *s = &tc->sll[c];
    void *b;
    while ((b = hak_sll_pop(s)) != NULL) hak_slab_give_back(tc, hak_run_of(b), b);
    hak_assert(hak_sll_count(s) == 0);
  }
}

bool hak_sll_validate(const hak_sll_t *s) {
  uint32_t n = 0;
  for (void *b = s->head; b != NULL; b = hak_link_decode(b)) {
    if (((uintptr_t)b & 15) != (16 - HAK_HDR_SIZE) % 16) return false;
    if (++n > hak_sll_count(s)) return false; /* longer than its count, or a cycle */
  }
  return n == hak_sll_count(s) && n <= s->cap;
}
