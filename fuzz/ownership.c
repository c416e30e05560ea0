/* Fuzz harness of Box 3, ownership (src/tiny/owner.c): which thread cache owns a slab run.
 *
 * Two kinds of operations, mixed as the input says.
 *
 * Races on runs taken directly: 2..4 racer threads run scripts of hak_owner_acquire /
 * hak_owner_release / hak_owner_transfer (owner tokens: one fake cache per racer) on 1..4 runs.
 * The racers keep a shadow holder per run, written only by the run's owner (NONE, a racer, or
 * "in transfer to j" between a transfer's CAS and its end), so that:
 *   - an acquire that succeeds finds the shadow NONE (at most one owner; an acquire of a free
 *     run succeeds at most once until it is released);
 *   - the shadow holder sees itself as the owner, can release (a release by a non-owner would
 *     be the fail-fast abort: it never happens here) and transfer (which must succeed), and
 *     fails to acquire its own run again;
 *   - a release or transfer by a cache that owns nothing fails (the model of the fail-fast:
 *     the CAS does not match, so hak_owner_release would abort);
 *   - when the racers are done, each run's owner is the shadow holder's token, and every other
 *     token fails to acquire, release or transfer it.
 * The racers are a pool kept across inputs: they never allocate, so they hold no thread cache.
 *
 * The public API, with up to 3 worker threads that allocate blocks, free blocks allocated by
 * others (remote frees; the harness thread, which never allocates, frees too), exit, and are
 * started again; an allocation may run concurrently with another worker's frees. After every
 * step, at rest:
 *   - a live block's run is owned by the worker that allocated it while that worker lives, and
 *     is on its partial or full list of the class;
 *   - the owner of a run with live blocks changes only when its owner exits (the run is then
 *     ownerless and published, or with HAKMEM_TINY_SS_ADOPT=0 owned by no thread), or from
 *     none to a worker that allocated in the step (an adoption, counted in its adoptions):
 *     remote frees never change it;
 *   - a run owned, before and after the step, by a thread that did not act in the step keeps
 *     its freelist, used and carved: only the owner touches them;
 *   - an exiting worker orphans exactly its runs that still hold live blocks (orphaned_slabs);
 *   - at the end, with everything freed and every worker gone, no block is live.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 nracers nruns cls reps then per racer: nops (kind run target)*nops
 *                                 a race: 2 + nracers % 3 racers, 1 + nruns % 4 runs of class
 *                                 cls, each racer runs its script (up to 16 operations; kind
 *                                 % 4: acquire, release, transfer to racer target, acquire
 *                                 again) 1 + reps % 32 times
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
#define SCRIPT 16
#define NONE (-1)
#define TRANSIT 8 /* shadow TRANSIT + j: a transfer to racer j is under way */
#define MAIN FW_WORKERS /* the harness thread, as an actor */

static const int classes[] = {0, 3, 7, 12, 19, 24, 33};
#define NCLASSES ((int)(sizeof classes / sizeof classes[0]))

/* ---- races on runs taken directly ------------------------------------------------------------ */

typedef struct rop_s {
  uint8_t kind, run, target;
} rop_t;

static hak_tcache_t tok[RACERS], stranger; /* owner tokens; stranger never owns anything */
static hak_slab_t *race_run[RACE_RUNS];
static _Atomic(int) holder[RACE_RUNS];
static rop_t script[RACERS][SCRIPT];
static unsigned script_len[RACERS], race_reps, race_nruns;

static void racer_acquire(unsigned i, unsigned r) {
  hak_slab_t *m = race_run[r];
  if (!hak_owner_acquire(m, &tok[i])) return;
  int old = atomic_exchange(&holder[r], (int)i);
  F_CHECK(old == NONE, "racer %u acquired run %u, which racer %d holds", i, r, old);
  F_CHECK(hak_owner_of(m) == &tok[i], "racer %u: owner of run %u after its acquire", i, r);
}

static void racer_release(unsigned i, unsigned r) {
  hak_slab_t *m = race_run[r];
  if (atomic_load(&holder[r]) != (int)i) {
    F_CHECK(!hak_owner_transfer(m, &stranger, NULL), "run %u released by a cache owning nothing",
            r);
    return;
  }
  F_CHECK(hak_owner_of(m) == &tok[i], "racer %u holds run %u but does not own it", i, r);
  atomic_store(&holder[r], NONE);
  hak_owner_release(m, &tok[i]); /* fails fast unless racer i owns it */
}

static void racer_transfer(unsigned i, unsigned r, unsigned j) {
  hak_slab_t *m = race_run[r];
  if (atomic_load(&holder[r]) != (int)i) {
    F_CHECK(!hak_owner_transfer(m, &stranger, &tok[j]),
            "run %u transferred by a cache owning nothing", r);
    return;
  }
  F_CHECK(hak_owner_of(m) == &tok[i], "racer %u holds run %u but does not own it", i, r);
  atomic_store(&holder[r], TRANSIT + (int)j);
  F_CHECK(hak_owner_transfer(m, &tok[i], &tok[j]), "racer %u could not transfer its run %u", i,
          r);
  atomic_store(&holder[r], (int)j);
}

static void racer_again(unsigned i, unsigned r) {
  hak_slab_t *m = race_run[r];
  if (atomic_load(&holder[r]) != (int)i) return;
  F_CHECK(!hak_owner_acquire(m, &tok[i]), "racer %u acquired its own run %u again", i, r);
  F_CHECK(hak_owner_of(m) == &tok[i], "racer %u: a failed acquire changed run %u's owner", i, r);
}

static void run_script(unsigned i) {
  for (unsigned rep = 0; rep < race_reps; rep++)
    for (unsigned k = 0; k < script_len[i]; k++) {
      const rop_t *o = &script[i][k];
      switch (o->kind) {
      case 0: racer_acquire(i, o->run); break;
      case 1: racer_release(i, o->run); break;
      case 2: racer_transfer(i, o->run, o->target); break;
      default: racer_again(i, o->run); break;
      }
    }
}

static fw_pool_t racers = FW_POOL_INIT(run_script, RACERS);

/* At rest: the owner is the shadow holder's token; no other token acquires, releases or
 * transfers the run. */
static void check_race_run(unsigned r) {
  hak_slab_t *m = race_run[r];
  int h = atomic_load(&holder[r]);
  F_CHECK(h == NONE || (h >= 0 && h < RACERS), "run %u: holder %d at rest", r, h);
  hak_tcache_t *owner = h == NONE ? NULL : &tok[h];
  F_CHECK(hak_owner_of(m) == owner, "run %u: owner %p, holder %d", r, (void *)hak_owner_of(m), h);
  for (int i = 0; i < RACERS; i++) {
    if (i == h) continue;
    F_CHECK(!hak_owner_transfer(m, &tok[i], NULL) && !hak_owner_transfer(m, &tok[i], &tok[i]),
            "run %u (holder %d): racer %d released or took it", r, h, i);
    if (owner != NULL)
      F_CHECK(!hak_owner_acquire(m, &tok[i]), "run %u owned by %d acquired by %d", r, h, i);
  }
  F_CHECK(hak_owner_of(m) == owner, "run %u: failed operations changed its owner", r);
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
  int cls = (int)f_below(in, HAK_NUM_CLASSES);
  race_reps = 1 + f_below(in, 32);
  for (unsigned i = 0; i < nracers; i++) read_script(in, i, nracers, race_nruns);
  for (unsigned r = 0; r < race_nruns; r++) {
    race_run[r] = hak_superslab_take_run(cls);
    F_CHECK(race_run[r] != NULL && hak_owner_of(race_run[r]) == NULL, "take_run(%d)", cls);
    atomic_store(&holder[r], NONE);
  }
  fw_pool_start(&racers);
  fw_pool_go(&racers, nracers);
  fw_pool_wait(&racers, nracers);
  for (unsigned r = 0; r < race_nruns; r++) {
    check_race_run(r);
    hak_tcache_t *owner = hak_owner_of(race_run[r]);
    if (owner != NULL) hak_owner_release(race_run[r], owner);
    hak_superslab_release_run(race_run[r]);
  }
}

/* ---- the public API: workers and the model of run owners ------------------------------------- */

static fw_block_t slot[SLOTS];
static fw_team_t team = FW_TEAM_INIT(slot, SLOTS, 0); /* no fill: keys unused */
static fw_runrec_t runs[SLOTS]; /* the runs with live blocks at the last check */
static unsigned nruns;

/* Where a run with live blocks stands, given its owner. */
static void check_placement(const fw_runrec_t *r) {
  const hak_slab_t *m = r->m;
  if (r->owner == FW_OWNER_NONE) {
    F_CHECK(hak_opt.ss_adopt && m->list == HAK_LIST_PUBLISHED,
            "ownerless run %p with live blocks not published (list %d)", (void *)m, m->list);
  } else if (r->owner == FW_OWNER_OTHER) {
    F_CHECK(!hak_opt.ss_adopt && m->list == HAK_LIST_NONE,
            "run %p owned by %p, no live worker's cache (list %d)", (void *)m,
            (void *)hak_owner_of(m), m->list);
  } else {
    F_CHECK(fw_on_lists(fw_worker_of(&team, r->owner), m),
            "run %p not on its owner %u's lists (list %d)", (void *)m, r->owner, m->list);
  }
}

static void check_blocks(void) {
  for (int i = 0; i < SLOTS; i++) {
    const fw_block_t *b = &slot[i];
    if (b->p == NULL) continue;
    hak_slab_t *m = t_run_of(b->p);
    F_CHECK(m->state == HAK_SLAB_HEAD && m->class_idx == b->cls, "block %p of class %d in a run "
            "of class %d", (void *)b->p, b->cls, m->class_idx);
    if (fw_worker_of(&team, b->by) != NULL)
      F_CHECK(fw_owner_id(&team, m) == b->by,
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
    bool exit_ok = before->owner == s->exited &&
                   (now->owner == (hak_opt.ss_adopt ? FW_OWNER_NONE : FW_OWNER_OTHER)) &&
                   hak_owner_of(now->m) != s->exited_tc;
    bool adopt_ok = before->owner == FW_OWNER_NONE && now->owner == s->allocator;
    F_CHECK(exit_ok || adopt_ok, "run %p: owner %u -> %u in a step (exit %u, alloc %u)",
            (void *)now->m, before->owner, now->owner, s->exited, s->allocator);
    *adopted += adopt_ok;
  }
  if (!acted(s, before->owner) && !acted(s, now->owner) && before->owner != s->exited)
    F_CHECK(now->freelist == before->freelist && now->used == before->used &&
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
    F_CHECK(s->concurrent ? got >= adopted : got == adopted,
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
  F_CHECK(got == expect, "worker %u exited owning %u runs with live blocks, %llu orphaned", w->id,
          expect, (unsigned long long)got);
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
  F_CHECK(f_live_blocks() == 0, "%llu blocks live after everything was freed",
          (unsigned long long)f_live_blocks());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
