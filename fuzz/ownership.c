/* Fuzz harness of Box 3, ownership (src/tiny/owner.c): the life cycle of a slab run, which
 * thread cache owns it, and how it changes hands (owner.c's table of states and transitions).
 *
 * Two kinds of operations, mixed as the input says.
 *
 * Races on runs of their own: 2..4 racer threads, each with an owner identity of its own (a
 * static dummy cache: bind and release compare pointers), run scripts on 1..4 runs of one class
 * no worker uses. Each run starts bound to a racer (hak_run_fresh) with up to RACE_BLOCKS blocks
 * carved and out; the odd ones are orphaned by that racer before the race. A script's operations
 * are the transitions of the table, each done only by the thread the table allows:
 *   - adopt: hak_adopt_slow() (PUBLISHED -> OWNED: hak_rq_adopt, then hak_run_bind);
 *   - give up: the run's owner orphans it (hak_run_orphan: OWNED/FULL -> ORPHANED/PUBLISHED, or
 *     FREE when every block is back);
 *   - free: blocks of the run, by the real free's rule: the owner gives its block back
 *     (hak_slab_give_back, which may take a run off the full list or release an empty one), any
 *     other racer frees remotely (hak_free_remote_mt: a push, a delivery to an armed run's owner,
 *     or the claim of an orphan by the free of its last block, which releases it);
 *   - collect: the racer takes the blocks delivered to it (hak_notify_collect: its own runs get
 *     them back, a delivery for a run it no longer owns is freed again, to the run's current
 *     owner); then, if it owns the run, it arms it (hak_run_fill) when its freelist is empty.
 * The racers keep a shadow holder per run (a racer, ORPHANED or RELEASED), written only by the
 * run's owner before it lets go and by the adopter after its adoption, so that:
 *   - an adoption finds the shadow ORPHANED (at most one owner; an orphan is adopted at most
 *     once), and leaves the run owned by the adopter, on its partial list, with an owned word
 *     (no ORPHAN, no PUBLISHED, no count: remote_queue.h);
 *   - the holder sees itself as the owner, and a second adoption of its own run fails without
 *     touching the word; a racer that does not hold the run does not own it;
 *   - a run that leaves its holder's hands without a give up was released by the holder's own
 *     give-back, and is FREE;
 *   - when the racers are done, at rest: a run the model says a racer holds is owned by that
 *     racer's identity, is on its lists, has an owned word (a run on the full list is armed, or
 *     a block of it waits on the owner's notify stack), and used == its blocks out (not freed,
 *     or delivered and not collected) + its stack, carved == used + its freelist; an ORPHANED run
 *     is either FREE with every block back, or ownerless with the word of an orphan (ORPHAN, and
 *     PUBLISHED with the run on its class's published list when adoption is on), whose count is
 *     exactly its blocks out, and used == count + stack; a RELEASED run is FREE with every
 *     block back; a FREE run has no owner and a zero word; at rest every published orphan is
 *     adopted by a stranger's identity, and no other run;
 *   - at the end, with every block freed and every identity gone (hak_owner_exit), every run of
 *     the race is FREE: no run leaks, whichever way its last block came back.
 * The racers are a pool kept across inputs: they never allocate, so they hold no thread cache.
 *
 * The public API, with up to 3 worker threads that allocate blocks, free blocks allocated by
 * others (remote frees; the harness thread, which never allocates, frees too), exit, and are
 * started again; an allocation may run concurrently with another worker's frees. After every
 * step, at rest:
 *   - a live block's run is owned by the worker that allocated it while that worker lives, and
 *     is on its partial or full list of the class, its word an owned one;
 *   - the owner of a run with live blocks changes only when its owner exits (the run is then an
 *     ownerless orphan: published, or with HAKMEM_TINY_SS_ADOPT=0 on no list), or from none to
 *     a worker that allocated in the step (an adoption, counted in its adoptions): remote frees
 *     never change it;
 *   - a run owned, before and after the step, by a thread that did not act in the step keeps
 *     its freelist, used and carved: only the owner touches them;
 *   - an exiting worker orphans exactly its runs that still hold live blocks (orphaned_slabs);
 *   - at the end, with everything freed and every worker gone, no block is live.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 nracers nruns cls reps then per racer: nops (kind run target)*nops
 *                                 a race: 2 + nracers % 3 racers, 1 + nruns % 4 runs of class
 *                                 cls (the next class up while cls is one the workers use),
 *                                 each racer runs its script (up to 16 operations; kind % 4:
 *                                 adopt, give up run, free 1 + target blocks of run, collect
 *                                 and arm run) 1 + reps % 32 times
 *   1 w c n                       worker w allocates 1 + n % 32 blocks of the c-th class
 *   2 who count slot*count        who (0..2 a worker, 3 the harness thread) frees up to 16 slots
 *   3 w                           worker w exits
 *   4 w c n who count slot*count  worker w allocates while who frees (as 1 and 2, at once) */
#include <sched.h>

#include "fuzz_worker.h"

#define SLOTS 96
#define MAX_OPS 64
#define RACERS 4
#define RACE_RUNS 4
#define RACE_BLOCKS 16
#define SCRIPT 16
#define ORPHANED (-1) /* shadow holder: no owner, or released since (every block back) */
#define RELEASED (-2) /* shadow holder: released by its holder */
#define STRANGER RACERS /* shadow holder: adopted by the stranger at rest */
#define MAIN FW_WORKERS /* the harness thread, as an actor */

static const int classes[] = {0, 3, 7, 12, 19, 24, 33};
#define NCLASSES ((int)(sizeof classes / sizeof classes[0]))

/* ---- races on runs of their own -------------------------------------------------------------- */

typedef struct rop_s {
  uint8_t kind, run, target;
} rop_t;

enum { OP_ADOPT, OP_GIVE_UP, OP_FREE, OP_COLLECT };

/* Owner identities: tok[RACERS] is the stranger, who acts only at rest. */
static hak_tcache_t tok[RACERS + 1];
static hak_slab_t *race_run[RACE_RUNS];
static uint8_t *race_blk[RACE_RUNS][RACE_BLOCKS];
static uint32_t race_nblk[RACE_RUNS];
static _Atomic(uint32_t) next_free[RACE_RUNS]; /* blocks of the run handed to a free so far */
static _Atomic(int) holder[RACE_RUNS];
static rop_t script[RACERS][SCRIPT];
static unsigned script_len[RACERS], race_reps, race_nruns;
static int race_cls;

static bool worker_class(int c) {
  for (int i = 0; i < NCLASSES; i++)
    if (classes[i] == c) return true;
  return c == FW_WARMUP_CLASS;
}

static uintptr_t word_of(const hak_slab_t *m) {
  return atomic_load_explicit(&((hak_slab_t *)m)->remote, memory_order_acquire);
}

static int race_index(const hak_slab_t *m) {
  for (unsigned r = 0; r < race_nruns; r++)
    if (race_run[r] == m) return (int)r;
  return -1;
}

/* Whether m is on tc's partial or full list of its class. */
static bool on_lists(const hak_tcache_t *tc, const hak_slab_t *m) {
  for (const hak_slab_t *s = tc->partial[race_cls]; s != NULL; s = s->next)
    if (s == m) return true;
  for (const hak_slab_t *s = tc->full[race_cls]; s != NULL; s = s->next)
    if (s == m) return true;
  return false;
}

/* A block carved and handed out, as a refill and malloc do it (the checked build's fill, then
 * its link cleared; the header of a block in use), and the way back in, as free does it. */
static void hand_out(uint8_t *b) {
#if HAKMEM_CHECKED
  hak_checked_fill(b, (unsigned)race_cls, hak_stride_of(race_cls));
  hak_checked_taken(b);
#endif
  (void)hak_bridge_out(b, (unsigned)race_cls, hak_stride_of(race_cls));
}

static void take_in(uint8_t *b) {
  T_INVARIANT(hak_bridge_in(b, (unsigned)race_cls, hak_stride_of(race_cls)),
              "block %p of the race refused by the bridge", (void *)b);
}

/* A run racer i held that its identity no longer owns: only i could have let it go, and i gave
 * it up only by orphaning it (which sets the shadow first), so its own give-back released it. */
static void resync(unsigned i) {
  for (unsigned r = 0; r < race_nruns; r++) {
    if (atomic_load(&holder[r]) != (int)i || hak_owner_of(race_run[r]) == &tok[i]) continue;
    T_INVARIANT(race_run[r]->state == HAK_SLAB_FREE,
                "racer %u lost run %u without giving it up "
                "(state %d)",
                i, r, race_run[r]->state);
    atomic_store(&holder[r], RELEASED);
  }
}

static void racer_adopt(unsigned i) {
  hak_slab_t *m = hak_adopt_slow(&tok[i], race_cls);
  if (m == NULL) return;
  int r = race_index(m);
  T_INVARIANT(r >= 0, "racer %u adopted run %p, not one of the race's", i, (void *)m);
  int old = atomic_exchange(&holder[r], (int)i);
  T_INVARIANT(old == ORPHANED, "racer %u adopted run %d, which is %d in the model", i, r, old);
  uintptr_t w = word_of(m);
  T_INVARIANT(hak_owner_of(m) == &tok[i] && m->list == HAK_LIST_PARTIAL &&
                  tok[i].partial[race_cls] == m && (w & HAK_RQ_FLAGS) == 0 && hak_rq_count(w) == 0,
              "racer %u adopted run %d: owner %p, list %d, word %#lx", i, r,
              (void *)hak_owner_of(m), m->list, (unsigned long)w);
}

static void racer_give_up(unsigned i, unsigned r) {
  hak_slab_t *m = race_run[r];
  if (atomic_load(&holder[r]) != (int)i) {
    T_INVARIANT(hak_owner_of(m) != &tok[i], "racer %u owns run %u, which it does not hold", i, r);
    return;
  }
  T_INVARIANT(hak_owner_of(m) == &tok[i], "racer %u holds run %u but does not own it", i, r);
  atomic_store(&holder[r], ORPHANED); /* from the orphaning CAS on, anyone may take it */
  hak_run_orphan(&tok[i], m);
  T_INVARIANT(hak_owner_of(m) != &tok[i] && !on_lists(&tok[i], m),
              "racer %u still owns or lists run %u after giving it up", i, r);
}

static void racer_free(unsigned i, unsigned r, unsigned times) {
  for (unsigned t = 0; t < times; t++) {
    uint32_t k = atomic_fetch_add(&next_free[r], 1);
    if (k >= race_nblk[r]) return;
    uint8_t *b = race_blk[r][k];
    hak_slab_t *m = t_run_of(b); /* the block pins its run */
    T_INVARIANT(m == race_run[r], "block %u of run %u lies in run %p", k, r, (void *)m);
    if (hak_owner_of(m) != &tok[i]) {
      T_INVARIANT(atomic_load(&holder[r]) != (int)i, "racer %u holds run %u but does not own it", i,
                  r);
      take_in(b);
      hak_free_remote_mt(m, b, &tok[i]);
      continue;
    }
    T_INVARIANT(atomic_load(&holder[r]) == (int)i, "racer %u owns run %u, which it does not hold",
                i, r);
    take_in(b);
    hak_slab_give_back(&tok[i], m, b);
    resync(i);
  }
}

static void racer_collect(unsigned i, unsigned r) {
  hak_notify_collect(&tok[i]);
  resync(i);
  hak_slab_t *m = race_run[r];
  if (atomic_load(&holder[r]) != (int)i) return;
  T_INVARIANT(hak_owner_of(m) == &tok[i], "racer %u holds run %u but does not own it", i, r);
  uintptr_t w = word_of(m);
  T_INVARIANT(!(w & HAK_RQ_ORPHAN) && !hak_rq_adopt(m) && !(word_of(m) & HAK_RQ_ORPHAN),
              "racer %u adopted its own run %u (word %#lx)", i, r, (unsigned long)w);
  if (m->list == HAK_LIST_PARTIAL && m->freelist == NULL && hak_run_fill(&tok[i], m))
    T_INVARIANT(m->list == HAK_LIST_FULL && tok[i].full[race_cls] == m,
                "racer %u armed run %u: list %d", i, r, m->list);
}

static void run_script(unsigned i) {
  for (unsigned rep = 0; rep < race_reps; rep++)
    for (unsigned k = 0; k < script_len[i]; k++) {
      const rop_t *o = &script[i][k];
      switch (o->kind) {
      case OP_ADOPT: racer_adopt(i); break;
      case OP_GIVE_UP: racer_give_up(i, o->run); break;
      case OP_FREE: racer_free(i, o->run, 1u + o->target); break;
      default: racer_collect(i, o->run); break;
      }
    }
}

static fw_pool_t racers = FW_POOL_INIT(run_script, RACERS);

/* Blocks of m on any identity's notify stack (delivered: still out). */
static uint32_t delivered(const hak_slab_t *m) {
  uint32_t n = 0;
  for (int i = 0; i <= RACERS; i++) {
    n += fw_notify_len(atomic_load_explicit(&tok[i].notify, memory_order_acquire), m);
  }
  return n;
}

/* An owned run at rest: owner, lists, word, block accounting. */
static void check_owned_run(unsigned r, int h, uint32_t out, uint32_t queued) {
  hak_slab_t *m = race_run[r];
  uintptr_t w = word_of(m);
  T_INVARIANT(hak_owner_of(m) == &tok[h] && on_lists(&tok[h], m),
              "run %u: owner %p, holder %d, "
              "list %d",
              r, (void *)hak_owner_of(m), h, m->list);
  T_INVARIANT((w & HAK_RQ_FLAGS & ~HAK_RQ_NOTIFY) == 0 && hak_rq_count(w) == 0,
              "run %u owned by %d: word %#lx", r, h, (unsigned long)w);
  void *mine = atomic_load(&tok[h].notify);
  T_INVARIANT(m->list != HAK_LIST_FULL || (w & HAK_RQ_NOTIFY) || fw_notify_len(mine, m) > 0,
              "run %u on %d's full list: word %#lx not armed, nothing delivered", r, h,
              (unsigned long)w);
  T_INVARIANT(m->used == out + queued && m->carved == m->used + fw_chain_len(m->freelist, NULL),
              "run %u owned by %d: used %u, %u out + %u queued; carved %u", r, h, m->used, out,
              queued, (unsigned)m->carved);
  T_INVARIANT(!hak_rq_adopt(m) && word_of(m) == w, "run %u owned by %d adopted by its word", r, h);
}

/* At rest: each run where the model says it is (see the top of the file). */
static void check_race_run(unsigned r) {
  hak_slab_t *m = race_run[r];
  int h = atomic_load(&holder[r]);
  uint32_t freed = atomic_load(&next_free[r]);
  uint32_t out = race_nblk[r] - (freed < race_nblk[r] ? freed : race_nblk[r]) + delivered(m);
  if (m->state == HAK_SLAB_FREE) {
    T_INVARIANT(h == ORPHANED || h == RELEASED, "run %u released, holder %d", r, h);
    T_INVARIANT(out == 0 && hak_owner_of(m) == NULL && word_of(m) == 0 &&
                    m->class_idx == HAK_CLASS_NONE,
                "run %u released with %u blocks out, owner %p, word %#lx", r, out,
                (void *)hak_owner_of(m), (unsigned long)word_of(m));
    return;
  }
  T_INVARIANT(h != RELEASED && m->state == HAK_SLAB_HEAD && m->class_idx == race_cls,
              "run %u: holder %d, state %d, class %d", r, h, m->state, m->class_idx);
  uintptr_t w = word_of(m);
  uint32_t queued = fw_chain_len(hak_rq_head(w), NULL);
  if (h >= 0) {
    check_owned_run(r, h, out, queued);
    return;
  }
  uintptr_t flags = HAK_RQ_ORPHAN | (hak_opt.ss_adopt ? HAK_RQ_PUBLISHED : 0);
  int list = hak_opt.ss_adopt ? HAK_LIST_PUBLISHED : HAK_LIST_NONE;
  T_INVARIANT(hak_owner_of(m) == NULL && (w & HAK_RQ_FLAGS) == flags && m->list == list,
              "orphan %u: owner %p, word %#lx, list %d", r, (void *)hak_owner_of(m),
              (unsigned long)w, m->list);
  T_INVARIANT(hak_rq_count(w) == out && out > 0 && m->used == out + queued,
              "orphan %u: count %u, %u blocks out, used %u, %u queued", r, hak_rq_count(w), out,
              m->used, queued);
}

/* At rest, every published orphan of the race is adopted by the stranger, and no other run. */
static void adopt_at_rest(void) {
  unsigned want = 0, got = 0;
  for (unsigned r = 0; r < race_nruns; r++)
    want += hak_opt.ss_adopt && atomic_load(&holder[r]) == ORPHANED &&
            race_run[r]->state == HAK_SLAB_HEAD;
  for (hak_slab_t *m; (m = hak_adopt_slow(&tok[STRANGER], race_cls)) != NULL; got++) {
    int r = race_index(m);
    T_INVARIANT(r >= 0 && atomic_load(&holder[r]) == ORPHANED, "the stranger adopted run %p (%d)",
                (void *)m, r);
    atomic_store(&holder[r], STRANGER);
  }
  T_INVARIANT(got == want, "the stranger adopted %u runs, %u published", got, want);
}

/* Frees every block left, then every identity exits: every run must be released. */
static void race_end(void) {
  for (unsigned r = 0; r < race_nruns; r++)
    for (uint32_t k; (k = atomic_fetch_add(&next_free[r], 1)) < race_nblk[r];) {
      take_in(race_blk[r][k]);
      hak_free_remote_mt(race_run[r], race_blk[r][k], &tok[STRANGER]);
    }
  for (int i = 0; i <= RACERS; i++) hak_owner_exit(&tok[i]);
  for (unsigned r = 0; r < race_nruns; r++)
    T_INVARIANT(race_run[r]->state == HAK_SLAB_FREE && word_of(race_run[r]) == 0,
                "run %u (holder %d) not released when every block came back: state %d, word %#lx",
                r, atomic_load(&holder[r]), race_run[r]->state,
                (unsigned long)word_of(race_run[r]));
  for (int i = 0; i <= RACERS; i++) {
    memset(&tok[i], 0, sizeof tok[i]); /* closed by the exit; nothing can reach it now */
    tok[i].state = HAK_TC_LIVE;
  }
}

static void race_start(unsigned nracers) {
  for (unsigned r = 0; r < race_nruns; r++) {
    unsigned j = r % nracers;
    hak_slab_t *m = race_run[r] = hak_run_fresh(&tok[j], race_cls);
    T_INVARIANT(m != NULL && hak_owner_of(m) == &tok[j] && word_of(m) == 0, "fresh run of class %d",
                race_cls);
    race_nblk[r] = m->capacity < RACE_BLOCKS ? m->capacity : RACE_BLOCKS;
    for (uint32_t k = 0; k < race_nblk[r]; k++) {
      race_blk[r][k] = m->data + (size_t)k * m->stride;
      hand_out(race_blk[r][k]);
    }
    atomic_store(&m->carved, race_nblk[r]);
    m->used = race_nblk[r];
    atomic_store(&next_free[r], 0);
    atomic_store(&holder[r], (int)j);
    if (r % 2 == 1) racer_give_up(j, r);
  }
}

static void read_script(f_in_t *in, unsigned i, unsigned nracers, unsigned nruns) {
  script_len[i] = f_below(in, SCRIPT + 1);
  for (unsigned k = 0; k < script_len[i]; k++)
    script[i][k] = (rop_t){(uint8_t)f_below(in, 4), (uint8_t)f_below(in, nruns),
                           (uint8_t)f_below(in, nracers)};
}

static void race(f_in_t *in) {
  /* The racers read the scripts, the runs and race_reps during the round only. */
  unsigned nracers = 2 + f_below(in, RACERS - 1);
  race_nruns = 1 + f_below(in, RACE_RUNS);
  race_cls = (int)f_below(in, HAK_NUM_CLASSES);
  while (worker_class(race_cls)) race_cls = (race_cls + 1) % HAK_NUM_CLASSES;
  race_reps = 1 + f_below(in, 32);
  for (unsigned i = 0; i < nracers; i++) read_script(in, i, nracers, race_nruns);
  if (tok[0].state != HAK_TC_LIVE)
    for (int i = 0; i <= RACERS; i++) tok[i].state = HAK_TC_LIVE; /* counters stay in tok */
  race_start(nracers);
  fw_pool_start(&racers);
  fw_pool_go(&racers, nracers);
  fw_pool_wait(&racers, nracers);
  for (unsigned r = 0; r < race_nruns; r++) check_race_run(r);
  adopt_at_rest();
  race_end();
}

/* ---- the public API: workers and the model of run owners ------------------------------------- */

static fw_block_t slot[SLOTS];
static fw_team_t team = FW_TEAM_INIT(slot, SLOTS, 0); /* no fill: keys unused */
static fw_runrec_t runs[SLOTS]; /* the runs with live blocks at the last check */
static unsigned nruns;

/* Where a run with live blocks stands, given its owner (owner.c's table). */
static void check_placement(const fw_runrec_t *r) {
  const hak_slab_t *m = r->m;
  T_INVARIANT(r->owner != FW_OWNER_OTHER, "run %p owned by %p, no live worker's cache (list %d)",
              (void *)m, (void *)hak_owner_of(m), m->list);
  if (r->owner == FW_OWNER_NONE) {
    uintptr_t flags = HAK_RQ_ORPHAN | (hak_opt.ss_adopt ? HAK_RQ_PUBLISHED : 0);
    int list = hak_opt.ss_adopt ? HAK_LIST_PUBLISHED : HAK_LIST_NONE;
    T_INVARIANT(m->list == list && (r->word & HAK_RQ_FLAGS) == flags,
                "ownerless run %p with live blocks: list %d, word %#lx (adoption %s)", (void *)m,
                m->list, (unsigned long)r->word, hak_opt.ss_adopt ? "on" : "off");
  } else {
    T_INVARIANT(fw_on_lists(fw_worker_of(&team, r->owner), m),
                "run %p not on its owner %u's lists (list %d)", (void *)m, r->owner, m->list);
    T_INVARIANT(!(r->word & (HAK_RQ_ORPHAN | HAK_RQ_PUBLISHED)) && hak_rq_count(r->word) == 0,
                "run %p owned by %u: word %#lx", (void *)m, r->owner, (unsigned long)r->word);
  }
}

static void check_blocks(void) {
  for (int i = 0; i < SLOTS; i++) {
    const fw_block_t *b = &slot[i];
    if (b->p == NULL) continue;
    hak_slab_t *m = t_run_of(b->p);
    T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == b->cls,
                "block %p of class %d in a run "
                "of class %d",
                (void *)b->p, b->cls, m->class_idx);
    if (fw_worker_of(&team, b->by) != NULL)
      T_INVARIANT(fw_owner_id(&team, m) == b->by,
                  "block %p: allocated by live worker %u, run owned by %p", (void *)b->p, b->by,
                  (void *)hak_owner_of(m));
  }
}

typedef struct step_s {
  unsigned actor[2];     /* incarnations (or FW_OWNER_NONE) of the threads that acted */
  unsigned allocator;    /* the worker that allocated (may adopt), or 0 */
  unsigned exited;       /* the worker that exited, or 0 */
  hak_tcache_t *exited_tc; /* its cache, which must own nothing now */
  uint64_t adoptions0;   /* the allocator's adoptions before the step */
  bool concurrent;
} step_t;

static bool acted(const step_t *s, unsigned id) {
  return id != FW_OWNER_NONE && id != FW_OWNER_OTHER && (s->actor[0] == id || s->actor[1] == id);
}

static void check_transition(const step_t *s, const fw_runrec_t *before, const fw_runrec_t *now,
                             unsigned *adopted) {
  if (now->owner != before->owner) {
    bool exit_ok = before->owner == s->exited && now->owner == FW_OWNER_NONE &&
                   hak_owner_of(now->m) != s->exited_tc;
    bool adopt_ok = before->owner == FW_OWNER_NONE && now->owner == s->allocator;
    T_INVARIANT(exit_ok || adopt_ok, "run %p: owner %u -> %u in a step (exit %u, alloc %u)",
                (void *)now->m, before->owner, now->owner, s->exited, s->allocator);
    *adopted += adopt_ok;
  }
  if (!acted(s, before->owner) && !acted(s, now->owner) && before->owner != s->exited)
    T_INVARIANT(now->freelist == before->freelist && now->used == before->used &&
                    now->carved == before->carved,
                "run %p (owner %u) changed by a step of others: used %u -> %u, carved %u -> %u",
                (void *)now->m, now->owner, before->used, now->used, before->carved, now->carved);
}

static uint64_t adoptions_of(unsigned id) {
  fw_worker_t *w = fw_worker_of(&team, id);
  return w ? t_tc_sum(w->tc, adoptions) : 0;
}

/* After a step, at rest: compare the runs with live blocks with those before the step. */
static void check_step(const step_t *s) {
  static fw_runrec_t now[SLOTS];
  unsigned n = fw_collect(&team, now), adopted = 0;
  check_blocks();
  for (unsigned k = 0; k < n; k++) {
    check_placement(&now[k]);
    /* A run whose blocks all went may have been released and bound again since. */
    const fw_runrec_t *b = now[k].old ? fw_find_run(runs, nruns, now[k].m) : NULL;
    if (b != NULL) check_transition(s, b, &now[k], &adopted);
  }
  if (s->allocator) {
    uint64_t got = adoptions_of(s->allocator) - s->adoptions0;
    T_INVARIANT(s->concurrent ? got >= adopted : got == adopted,
                "worker %u counted %llu adoptions, %u runs changed hands", s->allocator,
                (unsigned long long)got, adopted);
  }
  memcpy(runs, now, n * sizeof now[0]);
  nruns = n;
  fw_mark_old(&team);
}

/* ---- public API operations ------------------------------------------------------------------- */

static uint64_t orphaned(void) {
  hak_stats_t st;
  hak_stats_get(&st);
  return st.orphaned_slabs;
}

static void exit_worker(fw_worker_t *w, step_t *s) {
  unsigned expect = 0;
  for (unsigned k = 0; k < nruns; k++) expect += runs[k].owner == w->id;
  uint64_t orphaned0 = orphaned();
  s->exited = w->id;
  s->exited_tc = w->tc;
  s->actor[0] = w->id;
  fw_stop(w);
  uint64_t got = orphaned() - orphaned0;
  T_INVARIANT(got == expect, "worker %u exited owning %u runs with live blocks, %llu orphaned",
              w->id, expect, (unsigned long long)got);
}

/* ALLOC (and, for op 4, FREE at the same time by another thread). */
static void alloc_step(f_in_t *in, bool with_free, unsigned *spawns, step_t *s) {
  fw_worker_t *w = &team.worker[f_below(in, FW_WORKERS)];
  int cls = classes[f_below(in, NCLASSES)];
  unsigned n = 1 + f_below(in, FW_MAX_ALLOC);
  unsigned who = with_free ? f_below(in, FW_WORKERS + 1) : MAIN;
  int frees[FW_INPUT_FREES];
  unsigned nf = with_free ? fw_read_frees(&team, in, frees) : 0;
  if (!fw_spawn(&team, w, spawns)) return;
  fw_worker_t *f = who == MAIN || &team.worker[who] == w ? NULL : &team.worker[who];
  if (f != NULL && !fw_spawn(&team, f, spawns)) f = NULL;
  if (with_free && f == NULL && who != MAIN) nf = 0; /* no second thread: no concurrent frees */
  s->allocator = s->actor[0] = w->id;
  s->adoptions0 = adoptions_of(w->id);
  s->concurrent = nf > 0;
  w->cls = cls;
  w->nallocs = 0;
  for (int i = 0; i < SLOTS && w->nallocs < n; i++)
    if (slot[i].p == NULL) w->allocs[w->nallocs++] = i;
  fw_post(w, FW_ALLOC);
  if (f != NULL) {
    s->actor[1] = f->id;
    memcpy(f->frees, frees, nf * sizeof frees[0]);
    f->nfrees = nf;
    fw_post(f, FW_FREE);
    fw_wait_idle(f);
  } else {
    fw_free_slots(&team, frees, nf); /* the harness thread's frees, at the same time */
  }
  fw_wait_idle(w);
}

static void free_step(f_in_t *in, unsigned *spawns, step_t *s) {
  unsigned who = f_below(in, FW_WORKERS + 1);
  int frees[FW_INPUT_FREES];
  unsigned nf = fw_read_frees(&team, in, frees);
  if (who == MAIN) {
    fw_free_slots(&team, frees, nf);
    return;
  }
  fw_worker_t *w = &team.worker[who];
  if (!fw_spawn(&team, w, spawns)) return;
  s->actor[0] = w->id;
  memcpy(w->frees, frees, nf * sizeof frees[0]);
  w->nfrees = nf;
  fw_post(w, FW_FREE);
  fw_wait_idle(w);
}

static void api_step(unsigned op, f_in_t *in, unsigned *spawns) {
  step_t s = {{FW_OWNER_NONE, FW_OWNER_NONE}, 0, 0, NULL, 0, false};
  switch (op) {
  case 1: alloc_step(in, false, spawns, &s); break;
  case 2: free_step(in, spawns, &s); break;
  case 3: {
    fw_worker_t *w = &team.worker[f_below(in, FW_WORKERS)];
    if (w->alive) exit_worker(w, &s);
    break;
  }
  default: alloc_step(in, true, spawns, &s); break;
  }
  check_step(&s);
}

static void finish(void) {
  fw_free_all(&team);
  nruns = 0; /* no run holds a live block any more: the exits orphan nothing */
  for (int i = 0; i < FW_WORKERS; i++)
    if (team.worker[i].alive) {
      step_t s = {{FW_OWNER_NONE, FW_OWNER_NONE}, 0, 0, NULL, 0, false};
      exit_worker(&team.worker[i], &s);
    }
  T_INVARIANT(t_live_blocks() == 0, "%llu blocks live after everything was freed",
              (unsigned long long)t_live_blocks());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hak_opt.remote_batch = 1; /* the model follows each remote free to its run at once */
  static bool init;
  if (!init) {
    init = true;
    hak_option_get("HAKMEM_DECAY_MS"); /* initialises the process without allocating */
    hak_opt.decay_ms = 3600000;       /* run metadata stays mapped while the harness reads it */
  }
  f_in_t in = f_in(data, size);
  unsigned spawns = 0;
  for (int ops = 0; ops < MAX_OPS && f_more(&in); ops++) {
    unsigned op = f_below(&in, 5);
    if (op == 0) race(&in); else api_step(op, &in, &spawns);
  }
  finish();
  return 0;
}
