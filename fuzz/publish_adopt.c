/* Fuzz harness of Box 4, publish / adopt (src/tiny/adopt.c): how runs change hands when their
 * owner exits, and how remote frees reach them.
 *
 * Up to 3 worker threads allocate blocks of a few classes, free blocks any thread allocated
 * (the harness thread, which never allocates, frees too), exit (their runs with live blocks
 * are orphaned: published, or with adoption off left to the free of their last block), and
 * are started again, so that new threads refill by adopting. Two allocations, or an
 * allocation and frees, may run at once. The input's first byte sets HAKMEM_TINY_SS_ADOPT,
 * HAKMEM_TINY_MUST_ADOPT and HAKMEM_TINY_RF_FORCE_NOTIFY for the input (they are read on slow
 * paths only, and nothing is live between inputs). A shadow model keeps the live blocks (their
 * thread of allocation and a pattern at their start) and the runs that hold them. After every
 * step, at rest:
 *   - every live block: hak_owns(), its pattern intact, its run bound to its class, no two live
 *     blocks overlap (each block comes back exactly once before it is handed out again);
 *   - every run with live blocks: used == its live blocks + its blocks in the owner's TLS SLL +
 *     the blocks on its remote word's stack + its blocks on its owner's notify stack (delivered,
 *     not yet collected), carved == used + its freelist; none of its blocks is on the notify
 *     stack of a worker that does not own it;
 *   - an ownerless run is an orphan (remote_queue.h): its word says ORPHAN, and PUBLISHED with
 *     the run on the published list when adoption is on (else on no list), and its count is
 *     exactly its live blocks (every block out is live: the exit flushed the SLL and collected
 *     the deliveries), while used, frozen at the orphaning, still counts the blocks on the stack;
 *   - a run owned by a worker is on that worker's lists; its word is an owned one (no ORPHAN or
 *     PUBLISHED, no count); a run on a full list is armed (NOTIFY), or the free that took the
 *     notification delivered a block of it that is still on the owner's notify stack; a run
 *     owned by a worker that allocated in the step without concurrent frees has an empty stack
 *     (drained at bind);
 *   - no run is on two workers' lists, and each is owned by the worker whose lists hold it: a
 *     published run is adopted at most once, also when two workers refill at once;
 *   - owners change only when the owner exits (-> none) or from none to a worker that allocated
 *     in the step: an adoption, and the worker's adoptions count exactly those (at least those
 *     when frees ran at the same time), its remote_drains at least those whose stack was not
 *     empty; remote frees change no owner; with adoption off there are no adoptions;
 *   - an exiting worker orphans exactly its runs with live blocks (orphaned_slabs); a step of
 *     frees alone releases exactly the orphans whose last live blocks it freed
 *     (last_free_releases); no other step releases any;
 *   - at the end, with everything freed and every worker gone, no block is live.
 *
 * Input: an options byte (bit 0: adoption off, bit 1: must adopt, bit 2: force notify), then a
 * sequence of operations, one byte each followed by its arguments:
 *   0 w c n                      worker w allocates 1 + n % 32 blocks of the c-th class
 *   1 who count slot*count       who (0..2 a worker, 3 the harness thread) frees up to 16 slots
 *   2 w                          worker w exits
 *   3 w c n w2 c2 n2             workers w and w2 allocate at once (as 0)
 *   4 w c n who count slot*count worker w allocates while who frees (as 0 and 1, at once)
 *   5 who c                      who frees every live block of the c-th class */
#include "fuzz_worker.h"

#define SLOTS 128
#define MAX_OPS 64
#define MAX_FREES SLOTS /* a plan's frees: up to every slot */
#define MAIN FW_WORKERS /* the harness thread, as an actor */
#define MARK 16

static const int classes[] = {2, 9, 16, 21, 28};
#define NCLASSES ((int)(sizeof classes / sizeof classes[0]))
_Static_assert(MAX_FREES <= FW_MAX_FREES, "a worker's FW_FREE must hold a plan's frees");

/* ---- blocks, workers and the model of runs --------------------------------------------------- */

static fw_block_t slot[SLOTS];
static fw_team_t team = FW_TEAM_INIT(slot, SLOTS, MARK);
static uint64_t next_key;       /* the last key given to a slot */
static fw_runrec_t runs[SLOTS]; /* the runs with live blocks at the last check */
static unsigned nruns;

/* An orphan's word and list (owner.c's table: ORPHANED, PUBLISHED). */
static void check_orphan(const fw_runrec_t *r) {
  const hak_slab_t *m = r->m;
  uintptr_t flags = HAK_RQ_ORPHAN | (hak_opt.ss_adopt ? HAK_RQ_PUBLISHED : 0);
  int list = hak_opt.ss_adopt ? HAK_LIST_PUBLISHED : HAK_LIST_NONE;
  T_INVARIANT((r->word & HAK_RQ_FLAGS) == flags && m->list == list,
              "ownerless run %p: word %#lx, list %d (adoption %s)", (void *)m,
              (unsigned long)r->word, m->list, hak_opt.ss_adopt ? "on" : "off");
  T_INVARIANT(hak_rq_count(r->word) == r->live, "orphan %p: count %u, %u blocks live", (void *)m,
              hak_rq_count(r->word), r->live);
  T_INVARIANT(r->delivered == 0, "orphan %p: %u blocks delivered", (void *)m, r->delivered);
}

/* An owned run's word and list (OWNED, FULL); returns its blocks in the owner's TLS SLL. */
static uint32_t check_owned(const fw_runrec_t *r) {
  const hak_slab_t *m = r->m;
  const fw_worker_t *w = fw_worker_of(&team, r->owner);
  T_INVARIANT(fw_on_lists(w, m), "run %p not on its owner %u's lists (list %d)", (void *)m,
              r->owner, m->list);
  T_INVARIANT((r->word & HAK_RQ_FLAGS & ~HAK_RQ_NOTIFY) == 0 && hak_rq_count(r->word) == 0,
              "run %p owned by worker %u: word %#lx", (void *)m, r->owner, (unsigned long)r->word);
  T_INVARIANT(m->list != HAK_LIST_FULL || (r->word & HAK_RQ_NOTIFY) || r->delivered > 0,
              "run %p on worker %u's full list: word %#lx not armed, none of its blocks delivered",
              (void *)m, r->owner, (unsigned long)r->word);
  return fw_chain_len(w->tc->sll[m->class_idx].head, m);
}

/* Where a run with live blocks stands, and its block accounting. */
static void check_run(const fw_runrec_t *r) {
  const hak_slab_t *m = r->m;
  uint32_t sll = 0;
  T_INVARIANT(r->owner != FW_OWNER_OTHER, "run %p owned by %p, no live worker's cache", (void *)m,
              (void *)hak_owner_of(m));
  if (r->owner == FW_OWNER_NONE) check_orphan(r);
  else sll = check_owned(r);
  T_INVARIANT(r->stray == 0, "run %p (owner %u): %u blocks on other workers' notify stacks",
              (void *)m, r->owner, r->stray);
  T_INVARIANT(m->used == r->live + sll + r->queued + r->delivered,
              "run %p (owner %u): used %u, but %u live + %u in the SLL + %u queued + %u delivered",
              (void *)m, r->owner, m->used, r->live, sll, r->queued, r->delivered);
  uint32_t fl = fw_chain_len(m->freelist, NULL);
  T_INVARIANT(m->carved == m->used + fl && m->carved <= m->capacity,
              "run %p: carved %u, used %u, freelist %u, capacity %u", (void *)m,
              (unsigned)m->carved, m->used, fl, m->capacity);
}

/* No run on two workers' lists; each listed run owned by the worker that lists it. */
static void check_lists(void) {
  static hak_slab_t *seen[1024];
  unsigned n = 0;
  for (int i = 0; i < FW_WORKERS; i++) {
    const fw_worker_t *w = &team.worker[i];
    if (!w->alive) continue;
    for (int c = 0; c < HAK_NUM_CLASSES; c++)
      for (int l = 0; l < 2; l++)
        for (hak_slab_t *s = l ? w->tc->full[c] : w->tc->partial[c]; s != NULL; s = s->next) {
          T_INVARIANT(hak_owner_of(s) == w->tc, "worker %u lists run %p owned by %p", w->id,
                      (void *)s, (void *)hak_owner_of(s));
          for (unsigned k = 0; k < n; k++)
            T_INVARIANT(seen[k] != s, "run %p on two lists (worker %u's among them)", (void *)s,
                        w->id);
          T_INVARIANT(n < 1024, "more than 1024 runs on lists");
          seen[n++] = s;
        }
  }
}

static int by_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const fw_block_t *)a)->p, y = (uintptr_t)((const fw_block_t *)b)->p;
  return x < y ? -1 : x > y;
}

static void check_blocks(void) {
  static fw_block_t live[SLOTS];
  int n = 0;
  for (int i = 0; i < SLOTS; i++) {
    const fw_block_t *b = &slot[i];
    if (b->p == NULL) continue;
    hak_slab_t *m = t_run_of(b->p);
    T_INVARIANT(hak_owns(b->p) && m->state == HAK_SLAB_HEAD && m->class_idx == b->cls,
                "block %p of class %d: owned %d, run of class %d", (void *)b->p, b->cls,
                hak_owns(b->p), m->class_idx);
    size_t k = fw_mark_len(&team, b->cls);
    T_INVARIANT(t_find_bad_key(b->p, k, b->key) == SIZE_MAX,
                "block %p of class %d changed while live", (void *)b->p, b->cls);
    if (fw_worker_of(&team, b->by) != NULL)
      T_INVARIANT(fw_owner_id(&team, m) == b->by,
                  "block %p: allocated by live worker %u, run owned by %p", (void *)b->p, b->by,
                  (void *)hak_owner_of(m));
    live[n++] = *b;
  }
  qsort(live, (size_t)n, sizeof live[0], by_address);
  for (int i = 1; i < n; i++)
    T_INVARIANT(live[i - 1].p + hak_class_size(live[i - 1].cls) <= live[i].p,
                "live blocks %p and %p overlap", (void *)live[i - 1].p, (void *)live[i].p);
}

/* ---- steps ----------------------------------------------------------------------------------- */

typedef struct step_s {
  unsigned alloc[2];       /* workers that allocated (may adopt), or 0 */
  uint64_t adopt0[2], drains0[2];
  unsigned exited;         /* the worker that exited, or 0 */
  hak_tcache_t *exited_tc; /* its cache, which must own nothing now */
  bool frees;              /* blocks were freed */
  bool concurrent_frees;   /* ... while a worker allocated */
} step_t;

typedef struct counters_s {
  uint64_t orphaned, releases;
} counters_t;

static counters_t counters(void) {
  hak_stats_t st;
  hak_stats_get(&st);
  return (counters_t){st.orphaned_slabs, st.last_free_releases};
}

static int alloc_index(const step_t *s, unsigned id) {
  for (int i = 0; i < 2; i++)
    if (id != FW_OWNER_NONE && s->alloc[i] == id) return i;
  return -1;
}

/* An owner change from before to now is an exit or an adoption; counts adoptions per worker. */
static void check_transition(const step_t *s, const fw_runrec_t *before, const fw_runrec_t *now,
                             unsigned adopted[2], unsigned drained[2]) {
  if (now->owner == before->owner) return;
  bool exit_ok = before->owner == s->exited && hak_owner_of(now->m) != s->exited_tc &&
                 now->owner == FW_OWNER_NONE;
  int a = before->owner == FW_OWNER_NONE ? alloc_index(s, now->owner) : -1;
  T_INVARIANT(exit_ok || a >= 0, "run %p: owner %u -> %u in a step (exit %u, alloc %u %u)",
              (void *)now->m, before->owner, now->owner, s->exited, s->alloc[0], s->alloc[1]);
  if (a < 0) return;
  adopted[a]++;
  drained[a] += before->queued > 0;
  if (!s->concurrent_frees)
    T_INVARIANT(hak_rq_head(now->word) == NULL, "run %p adopted by %u with its stack undrained",
                (void *)now->m, now->owner);
}

static uint64_t ev_of(unsigned id, bool drains) {
  fw_worker_t *w = fw_worker_of(&team, id);
  if (w == NULL) return 0;
  return drains ? t_tc_sum(w->tc, remote_drains) : t_tc_sum(w->tc, adoptions);
}

static void check_adoptions(const step_t *s, const unsigned adopted[2],
                            const unsigned drained[2]) {
  for (int i = 0; i < 2; i++) {
    if (s->alloc[i] == 0) continue;
    uint64_t got = ev_of(s->alloc[i], false) - s->adopt0[i];
    uint64_t drains = ev_of(s->alloc[i], true) - s->drains0[i];
    T_INVARIANT(s->concurrent_frees ? got >= adopted[i] : got == adopted[i],
                "worker %u counted %llu adoptions, %u runs came to it", s->alloc[i],
                (unsigned long long)got, adopted[i]);
    T_INVARIANT(hak_opt.ss_adopt || got == 0, "worker %u adopted %llu runs with adoption off",
                s->alloc[i], (unsigned long long)got);
    T_INVARIANT(drains >= drained[i], "worker %u drained %llu times, adopted %u runs with queues",
                s->alloc[i], (unsigned long long)drains, drained[i]);
  }
}

/* Orphans whose last live blocks this step freed, if they were not adopted. */
static unsigned released_orphans(const fw_runrec_t *now, unsigned n) {
  unsigned k = 0;
  for (unsigned i = 0; i < nruns; i++)
    if (runs[i].owner == FW_OWNER_NONE && fw_find_run(now, n, runs[i].m) == NULL)
      k++;
  return k;
}

static void check_step(const step_t *s, counters_t c0) {
  static fw_runrec_t now[SLOTS];
  unsigned n = fw_collect(&team, now), adopted[2] = {0, 0}, drained[2] = {0, 0};
  check_blocks();
  check_lists();
  for (unsigned k = 0; k < n; k++) {
    check_run(&now[k]);
    /* A run whose blocks all went may have been released and bound again since. */
    const fw_runrec_t *b = now[k].old ? fw_find_run(runs, nruns, now[k].m) : NULL;
    if (b != NULL) check_transition(s, b, &now[k], adopted, drained);
  }
  check_adoptions(s, adopted, drained);
  counters_t c = counters();
  if (!s->concurrent_frees) {
    unsigned want = s->frees ? released_orphans(now, n) : 0;
    T_INVARIANT(c.releases - c0.releases == want,
                "%llu runs released by their last free, %u orphans "
                "lost their last live block",
                (unsigned long long)(c.releases - c0.releases), want);
  }
  if (s->exited == 0)
    T_INVARIANT(c.orphaned == c0.orphaned, "%llu runs orphaned in a step without an exit",
                (unsigned long long)(c.orphaned - c0.orphaned));
  memcpy(runs, now, n * sizeof now[0]);
  nruns = n;
  fw_mark_old(&team);
}

static void exit_worker(fw_worker_t *w, step_t *s) {
  unsigned expect = 0;
  for (unsigned k = 0; k < nruns; k++) expect += runs[k].owner == w->id;
  uint64_t orphaned0 = counters().orphaned;
  s->exited = w->id;
  s->exited_tc = w->tc;
  fw_stop(w);
  uint64_t got = counters().orphaned - orphaned0;
  T_INVARIANT(got == expect, "worker %u exited owning %u runs with live blocks, %llu orphaned",
              w->id, expect, (unsigned long long)got);
}

static unsigned class_frees(int cls, int *frees) {
  unsigned n = 0;
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL && slot[i].cls == cls) frees[n++] = i;
  return n;
}

typedef struct plan_s {
  fw_worker_t *w[2];   /* allocating workers */
  int cls[2];
  unsigned n[2];
  unsigned who;        /* freeing thread: a worker index or MAIN */
  int frees[MAX_FREES];
  unsigned nfrees;
} plan_t;

/* Free slots for w's allocation, none of them given to the other allocation. */
static void assign_slots(fw_worker_t *w, unsigned n, const fw_worker_t *other) {
  w->nallocs = 0;
  for (int i = 0; i < SLOTS && w->nallocs < n; i++) {
    bool taken = false;
    for (unsigned k = 0; other != NULL && k < other->nallocs; k++) taken |= other->allocs[k] == i;
    if (slot[i].p != NULL || taken) continue;
    slot[i].key = ++next_key;
    w->allocs[w->nallocs++] = i;
  }
}

/* Runs a plan: up to two allocations and a set of frees, all at once. */
static void run_plan(plan_t *p, unsigned *spawns, step_t *s) {
  fw_worker_t *f = p->who == MAIN ? NULL : &team.worker[p->who];
  for (int i = 0; i < 2; i++)
    if (p->w[i] != NULL && (p->w[i] == f || (i == 1 && p->w[1] == p->w[0]) ||
                            !fw_spawn(&team, p->w[i], spawns)))
      p->w[i] = NULL;
  if (f != NULL && !fw_spawn(&team, f, spawns)) p->nfrees = 0;
  for (int i = 0; i < 2; i++) {
    if (p->w[i] == NULL) continue;
    s->alloc[i] = p->w[i]->id;
    s->adopt0[i] = ev_of(s->alloc[i], false);
    s->drains0[i] = ev_of(s->alloc[i], true);
    p->w[i]->cls = p->cls[i];
    assign_slots(p->w[i], p->n[i], i == 1 ? p->w[0] : NULL);
  }
  for (int i = 0; i < 2; i++) /* after both assignments: a running worker writes slot[] */
    if (p->w[i] != NULL) fw_post(p->w[i], FW_ALLOC);
  s->frees = p->nfrees > 0;
  s->concurrent_frees = s->frees && (p->w[0] != NULL || p->w[1] != NULL);
  if (f != NULL && p->nfrees > 0) {
    memcpy(f->frees, p->frees, p->nfrees * sizeof p->frees[0]);
    f->nfrees = p->nfrees;
    fw_post(f, FW_FREE);
    fw_wait_idle(f);
  } else {
    fw_free_slots(&team, p->frees, p->nfrees);
  }
  for (int i = 0; i < 2; i++)
    if (p->w[i] != NULL) fw_wait_idle(p->w[i]);
}

static void read_alloc(f_in_t *in, plan_t *p, int i) {
  p->w[i] = &team.worker[f_below(in, FW_WORKERS)];
  p->cls[i] = classes[f_below(in, NCLASSES)];
  p->n[i] = 1 + f_below(in, FW_MAX_ALLOC);
}

static void step(f_in_t *in, unsigned *spawns) {
  step_t s = {{0, 0}, {0, 0}, {0, 0}, 0, NULL, false, false};
  plan_t p = {{NULL, NULL}, {0, 0}, {0, 0}, MAIN, {0}, 0};
  counters_t c0 = counters();
  unsigned op = f_below(in, 6);
  if (op == 0 || op == 3 || op == 4) read_alloc(in, &p, 0);
  if (op == 3) read_alloc(in, &p, 1);
  if (op == 1 || op == 4) {
    p.who = f_below(in, FW_WORKERS + 1);
    p.nfrees = fw_read_frees(&team, in, p.frees);
  }
  if (op == 5) {
    p.who = f_below(in, FW_WORKERS + 1);
    p.nfrees = class_frees(classes[f_below(in, NCLASSES)], p.frees);
  }
  if (op == 2) {
    fw_worker_t *w = &team.worker[f_below(in, FW_WORKERS)];
    if (w->alive) exit_worker(w, &s);
  } else {
    run_plan(&p, spawns, &s);
  }
  check_step(&s, c0);
}

static void finish(void) {
  fw_free_all(&team);
  nruns = 0; /* no run holds a live block any more: the exits orphan nothing */
  for (int i = 0; i < FW_WORKERS; i++)
    if (team.worker[i].alive) {
      step_t s = {{0, 0}, {0, 0}, {0, 0}, 0, NULL, false, false};
      exit_worker(&team.worker[i], &s);
    }
  T_INVARIANT(t_live_blocks() == 0, "%llu blocks live after everything was freed",
              (unsigned long long)t_live_blocks());
}

static void set_options(unsigned bits) {
  static bool init;
  if (!init) {
    init = true;
    hak_option_get("HAKMEM_DECAY_MS"); /* initialises the process without allocating */
    hak_opt.decay_ms = 3600000;       /* run metadata stays mapped while the harness reads it */
  }
  hak_opt.ss_adopt = !(bits & 1);
  hak_opt.must_adopt = (bits >> 1) & 1;
  hak_opt.rf_force_notify = (bits >> 2) & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hak_opt.remote_batch = 1; /* the model follows each remote free to its run at once */
  f_in_t in = f_in(data, size);
  set_options(f_u8(&in));
  unsigned spawns = 0;
  for (int ops = 0; ops < MAX_OPS && f_more(&in); ops++) step(&in, &spawns);
  finish();
  return 0;
}
