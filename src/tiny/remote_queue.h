/* Box 2, remote queue: the one word of a run that other threads write (remote_queue.c).
 *
 * m->remote packs everything a remote free needs to decide, so that its decision and its effect
 * are one compare-and-swap, and its last access to the run is that CAS:
 *
 *   bits  0..2   flags: HAK_RQ_NOTIFY, HAK_RQ_ORPHAN, HAK_RQ_PUBLISHED
 *   bits  3..46  the head of the MPSC stack of freed blocks (base pointers, 8-aligned, below
 *                2^47: x86-64 user space), linked at HAK_LINK_OFF
 *   bits 47..63  orphans only: blocks of the run still out (run capacity < 2^17)
 *
 * The owner's word is just the stack (and NOTIFY once it armed the run); an orphan's word also
 * counts its blocks down, so the free that brings the count to 0 learns from its own CAS that
 * every block is back, and takes the run. */
#ifndef HAKMEM_REMOTE_QUEUE_H
#define HAKMEM_REMOTE_QUEUE_H

#include "../internal.h"

#define HAK_RQ_NOTIFY ((uintptr_t)1)    /* owned, full: the next remote free notifies the owner */
#define HAK_RQ_ORPHAN ((uintptr_t)2)    /* no owner: the count is live                          */
#define HAK_RQ_PUBLISHED ((uintptr_t)4) /* orphan on its class's published list                 */
#define HAK_RQ_FLAGS ((uintptr_t)7)
#define HAK_RQ_COUNT_SHIFT 47
#define HAK_RQ_COUNT_MAX (((uintptr_t)1 << (64 - HAK_RQ_COUNT_SHIFT)) - 1)
#define HAK_RQ_PTR_MASK ((((uintptr_t)1 << HAK_RQ_COUNT_SHIFT) - 1) & ~HAK_RQ_FLAGS)

static inline void *hak_rq_head(uintptr_t w) { return (void *)(w & HAK_RQ_PTR_MASK); }
static inline uint32_t hak_rq_count(uintptr_t w) { return (uint32_t)(w >> HAK_RQ_COUNT_SHIFT); }
static inline uintptr_t hak_rq_word(const void *head, uintptr_t flags, uint32_t count) {
  return (uintptr_t)head | flags | (uintptr_t)count << HAK_RQ_COUNT_SHIFT;
}

/* What a remote free of a chain did (hak_rq_free_mt). */
enum hak_rq_outcome {
  HAK_RQ_PUSHED,  /* the chain is in the queue; the caller must not touch the run again       */
  HAK_RQ_DELIVER, /* the caller took the notification: the chain was not pushed, still pins the
                     run, and goes to the owner's cache (adopt.c)                             */
  HAK_RQ_LAST     /* the chain brought an orphan's count to 0: the caller now holds the run
                     alone (claimed) and releases it                                         */
};

/* How a remote free may end. */
enum hak_rq_mode {
  HAK_RQ_MODE_NORMAL, /* deliver when the run is armed, else push                             */
  HAK_RQ_MODE_NOTIFY, /* deliver whenever the run has an owner (HAKMEM_TINY_RF_FORCE_NOTIFY)  */
  HAK_RQ_MODE_PUSH    /* push (a delivery that found no cache to go to)                        */
};

/* Frees the chain first..last of n blocks (linked at HAK_LINK_OFF, last's link ignored) into
 * run m; *word_out is the word the CAS installed (HAK_RQ_LAST: the claimed word). */
enum hak_rq_outcome hak_rq_free_mt(hak_slab_t *m, void *first, void *last, uint32_t n,
                                   enum hak_rq_mode mode, uintptr_t *word_out);
/* Owner (or sole claimant) only: takes the whole stack with one exchange (the word becomes 0,
 * which also disarms NOTIFY), moves every block onto the freelist, lowers used by their number
 * and returns it. */
uint32_t hak_remote_drain(hak_slab_t *m);
/* Owner only: arms an exhausted run (word 0 -> NOTIFY; true if it still is). False when blocks
 * are queued. */
bool hak_rq_arm(hak_slab_t *m);
/* Owner only, giving the run up: word 0 -> ORPHAN (| PUBLISHED) with used blocks out. False
 * when blocks were queued since the caller's drain (drain and try again). */
bool hak_rq_orphan(hak_slab_t *m, uint32_t used, bool published);
/* Adopter, under the published lock: an orphan's word -> the owned word with its stack, unless
 * its last free has claimed it already (count 0). */
bool hak_rq_adopt(hak_slab_t *m);

#endif /* HAKMEM_REMOTE_QUEUE_H */
