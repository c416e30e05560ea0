/* Threads for the fuzz harnesses that act from several threads (ownership, publish_adopt,
 * remote_queue), and the model of blocks and runs that the first two share. Everything here
 * is driven by the harness thread.
 *
 * A team of workers (fw_team_t): up to FW_WORKERS threads that use the public API, each with a
 * thread cache of its own, and the harness's table of slots (fw_block_t), each empty or
 * holding a live block. A worker is an incarnation of a thread: fw_spawn() starts it (id
 * unique within the process, 0 is no worker), it makes its cache live with one allocation of
 * FW_WARMUP_CLASS and publishes it in tc, then serves the commands of its mailbox (cmd):
 *   FW_ALLOC  allocate nallocs blocks of class cls into the empty slots allocs[]; each block
 *             must come from a run the worker owns; its first mark bytes (the team's) are
 *             filled with the pattern of the slot's key;
 *   FW_FREE   free the blocks of the slots frees[] (the harness thread frees the same way,
 *             with fw_free_slots());
 *   FW_EXIT   end the thread: the pthread key destructor flushes its cache and orphans its
 *             runs (fw_stop() posts it and joins).
 * Synchronisation: the team's mutex mu guards every cmd; the harness fills a worker's
 * arguments, fw_post()s the command (which hands them and the slots over), and fw_wait_idle()
 * waits for the worker to set cmd back to FW_NONE (which hands the slots back). Workers wait
 * on the team's cv between commands, so at rest all are idle and their caches can be read.
 * fw_collect() then lists the runs that hold live blocks (fw_runrec_t), which the harnesses
 * compare from one step to the next.
 *
 * A pool (fw_pool_t): up to FW_POOL_MAX threads that never allocate, so they hold no thread
 * cache, kept across inputs (starting threads per input costs most of the time under the
 * sanitizers). fw_pool_go() starts a round in which members 0..n-1 run the pool's work(id)
 * once; fw_pool_wait() waits until k of them are done. What work reads is written before
 * fw_pool_go() and what it writes is read after fw_pool_wait(): the round's start and end,
 * both under the pool's mutex, order them. */
#ifndef HAKMEM_FUZZ_WORKER_H
#define HAKMEM_FUZZ_WORKER_H

#include "fast.h"
#include "hak_block.h"
#include "fuzz.h"

/* ---- runs ------------------------------------------------------------------------------------ */

/* ---- a team of workers ----------------------------------------------------------------------- */

#define FW_WORKERS 3
#define FW_MAX_SPAWNS 6      /* worker threads started per input: each costs under sanitizers */
#define FW_MAX_ALLOC 32      /* blocks per FW_ALLOC */
#define FW_MAX_FREES 128     /* slots per FW_FREE */
#define FW_INPUT_FREES 16    /* slots an input's list of frees names at most */
#define FW_WARMUP_CLASS 1    /* not in a harness's classes: a first allocation never adopts */
#define FW_OWNER_NONE 0u     /* fw_owner_id() of a run without owner */
#define FW_OWNER_OTHER (~0u) /* ... of a run owned by a cache of no live worker */

enum { FW_NONE, FW_ALLOC, FW_FREE, FW_EXIT };

typedef struct fw_block_s {
  uint8_t *p;   /* the live block, or NULL: an empty slot */
  int cls;
  unsigned by;  /* incarnation of the worker that allocated it */
  uint64_t key; /* pattern at its start (team's mark bytes), chosen by the harness */
  bool old;     /* live at the last check: its run cannot have been released since */
} fw_block_t;

typedef struct fw_team_s fw_team_t;

typedef struct fw_worker_s {
  fw_team_t *team;
  pthread_t th;
  bool alive;
  unsigned id;              /* incarnation, unique within the process */
  hak_tcache_t *tc;         /* its cache, published by the worker before its first command */
  int cmd;                  /* command; team->mu */
  int cls;                  /* FW_ALLOC: class */
  int allocs[FW_MAX_ALLOC]; /* FW_ALLOC: empty slots to fill (disjoint from concurrent frees) */
  unsigned nallocs;
  int frees[FW_MAX_FREES];  /* FW_FREE: slots to free */
  unsigned nfrees;
} fw_worker_t;

struct fw_team_s {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a cmd or a tc changed */
  fw_block_t *slot;  /* the harness's slots: written by the thread the command hands them to */
  int nslots;
  size_t mark;       /* bytes of a new block filled with its key's pattern (at most) */
  unsigned next_id;  /* the last incarnation started; 0 before the first */
  fw_worker_t worker[FW_WORKERS];
};

/* static fw_team_t team = FW_TEAM_INIT(slot, SLOTS, mark); */
#define FW_TEAM_INIT(slots, n, mark_bytes)                                           \
  {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .slot = (slots), \
   .nslots = (n), .mark = (mark_bytes)}

/* Bytes of a block of class cls that carry its key's pattern. */
static inline size_t fw_mark_len(const fw_team_t *t, int cls) {
  size_t n = hak_class_size(cls);
  return n < t->mark ? n : t->mark;
}

static inline void fw_free_slot(const fw_team_t *t, int i) {
  hak_free(t->slot[i].p);
  t->slot[i].p = NULL;
}

static inline void fw_free_slots(const fw_team_t *t, const int *frees, unsigned n) {
  for (unsigned k = 0; k < n; k++) fw_free_slot(t, frees[k]);
}

/* Frees every live block (workers idle). */
static inline void fw_free_all(const fw_team_t *t) {
  for (int i = 0; i < t->nslots; i++)
    if (t->slot[i].p != NULL) fw_free_slot(t, i);
}

/* Reads a list of frees: 1..FW_INPUT_FREES slot numbers, of which it keeps the live ones, once
 * each. Returns their number. */
static inline unsigned fw_read_frees(const fw_team_t *t, f_in_t *in, int *frees) {
  unsigned count = 1 + f_below(in, FW_INPUT_FREES), n = 0;
  for (unsigned k = 0; k < count; k++) {
    int i = (int)f_below(in, (uint32_t)t->nslots);
    bool dup = false;
    for (unsigned j = 0; j < n; j++) dup |= frees[j] == i;
    if (t->slot[i].p != NULL && !dup) frees[n++] = i;
  }
  return n;
}

static inline void fw_do_alloc(fw_worker_t *w) {
  const fw_team_t *t = w->team;
  size_t n = hak_class_size(w->cls);
  for (unsigned k = 0; k < w->nallocs; k++) {
    uint8_t *p = hak_malloc(n);
    T_INVARIANT(p != NULL, "hak_malloc(%zu) failed", n);
    T_INVARIANT(hak_owner_of(t_run_of(p)) == hak_tc,
                "worker %u got a block of a run it does not own", w->id);
    fw_block_t *b = &t->slot[w->allocs[k]];
    *b = (fw_block_t){p, w->cls, w->id, b->key, false};
    t_fill_key(p, fw_mark_len(t, w->cls), b->key);
  }
}

static inline void *fw_worker_main(void *arg) {
  fw_worker_t *w = arg;
  fw_team_t *t = w->team;
  hak_free(hak_malloc(hak_class_size(FW_WARMUP_CLASS))); /* a live cache from the start */
  pthread_mutex_lock(&t->mu);
  w->tc = hak_tc;
  pthread_cond_broadcast(&t->cv);
  for (;;) {
    while (w->cmd == FW_NONE) pthread_cond_wait(&t->cv, &t->mu);
    int cmd = w->cmd;
    pthread_mutex_unlock(&t->mu);
    if (cmd == FW_EXIT) return NULL; /* the key destructor flushes and orphans */
    if (cmd == FW_ALLOC) fw_do_alloc(w); else fw_free_slots(t, w->frees, w->nfrees);
    pthread_mutex_lock(&t->mu);
    w->cmd = FW_NONE;
    pthread_cond_broadcast(&t->cv);
  }
}

/* Starts w unless it is alive; false when the input has used up its FW_MAX_SPAWNS starts. */
static inline bool fw_spawn(fw_team_t *t, fw_worker_t *w, unsigned *spawns) {
  if (w->alive) return true;
  if (*spawns >= FW_MAX_SPAWNS) return false;
  ++*spawns;
  w->team = t;
  w->id = ++t->next_id;
  w->tc = NULL;
  w->cmd = FW_NONE;
  w->alive = true;
  t_start(&w->th, fw_worker_main, w);
  pthread_mutex_lock(&t->mu);
  while (w->tc == NULL) pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
  return true;
}

static inline void fw_post(fw_worker_t *w, int cmd) {
  pthread_mutex_lock(&w->team->mu);
  w->cmd = cmd;
  pthread_cond_broadcast(&w->team->cv);
  pthread_mutex_unlock(&w->team->mu);
}

static inline void fw_wait_idle(fw_worker_t *w) {
  pthread_mutex_lock(&w->team->mu);
  while (w->cmd != FW_NONE) pthread_cond_wait(&w->team->cv, &w->team->mu);
  pthread_mutex_unlock(&w->team->mu);
}

/* Ends w: on return its thread has exited, its cache flushed and its runs orphaned. */
static inline void fw_stop(fw_worker_t *w) {
  fw_post(w, FW_EXIT);
  t_join(w->th);
  w->alive = false;
}

static inline fw_worker_t *fw_worker_of(fw_team_t *t, unsigned id) {
  for (int i = 0; i < FW_WORKERS; i++)
    if (t->worker[i].alive && t->worker[i].id == id) return &t->worker[i];
  return NULL;
}

/* The live worker whose cache owns m, FW_OWNER_NONE or FW_OWNER_OTHER. */
static inline unsigned fw_owner_id(const fw_team_t *t, const hak_slab_t *m) {
  hak_tcache_t *o = hak_owner_of(m);
  if (o == NULL) return FW_OWNER_NONE;
  for (int i = 0; i < FW_WORKERS; i++)
    if (t->worker[i].alive && t->worker[i].tc == o) return t->worker[i].id;
  return FW_OWNER_OTHER;
}

/* Whether m is on w's partial or full list of its class (w idle). */
static inline bool fw_on_lists(const fw_worker_t *w, const hak_slab_t *m) {
  for (hak_slab_t *s = w->tc->partial[m->class_idx]; s != NULL; s = s->next)
    if (s == m) return true;
  for (hak_slab_t *s = w->tc->full[m->class_idx]; s != NULL; s = s->next)
    if (s == m) return true;
  return false;
}

/* ---- runs with live blocks, at rest ---------------------------------------------------------- */

typedef struct fw_runrec_s {
  hak_slab_t *m;
  unsigned owner;        /* fw_owner_id() */
  uint32_t live;         /* live blocks of the slots in it */
  uintptr_t word;        /* its remote word (remote_queue.h) */
  uint32_t queued;       /* blocks on the word's stack */
  uint32_t delivered;    /* blocks on its owner's notify stack (they still count in used) */
  uint32_t stray;        /* blocks on the notify stack of a live worker that does not own it */
  void *freelist;        /* freelist, used and carved: only the owner changes them */
  uint32_t used, carved;
  bool old;              /* holds a block live at the last check: the same binding as then */
} fw_runrec_t;

/* Length of a chain of blocks linked at HAK_LINK_OFF; with m, counts only the blocks of run m.
 * Bounded: a cycle is a broken invariant. */
static inline uint32_t fw_chain_len(const void *head, const hak_slab_t *m) {
  uint32_t n = 0, steps = 0;
  for (const void *b = head; b != NULL; b = hak_link_get(b)) {
    T_INVARIANT(++steps <= 1u << 20, "a chain from %p does not end", head);
    n += m == NULL || t_run_of(b) == m;
  }
  return n;
}

/* Blocks of run m on a notify stack from head (HAK_NOTIFY_CLOSED: none). The stack mixes
 * classes, so its links are decoded, not validated as a free list's (the checked build's
 * hak_link_get() wants a block of the same class), as hak_notify_collect_chain() does. */
static inline uint32_t fw_notify_len(const void *head, const hak_slab_t *m) {
  uint32_t n = 0, steps = 0;
  for (const void *b = head; b != NULL && b != HAK_NOTIFY_CLOSED; b = hak_link_decode(b)) {
    T_INVARIANT(++steps <= 1u << 20, "a notify stack from %p does not end", head);
    n += t_run_of(b) == m;
  }
  return n;
}

/* Blocks of run m on the notify stacks of the live workers: its owner's (*mine), the others'
 * (*others). */
static inline void fw_notified(const fw_team_t *t, const hak_slab_t *m, uint32_t *mine,
                               uint32_t *others) {
  *mine = *others = 0;
  hak_tcache_t *o = hak_owner_of(m);
  for (int i = 0; i < FW_WORKERS; i++) {
    const fw_worker_t *w = &t->worker[i];
    if (!w->alive) continue;
    void *head = atomic_load_explicit(&w->tc->notify, memory_order_acquire);
    T_INVARIANT(head != HAK_NOTIFY_CLOSED, "live worker %u: notify stack closed", w->id);
    *(w->tc == o ? mine : others) += fw_notify_len(head, m);
  }
}

/* The runs of the live blocks now (at most nslots), in out. Returns their number. */
static inline unsigned fw_collect(const fw_team_t *t, fw_runrec_t *out) {
  unsigned n = 0;
  for (int i = 0; i < t->nslots; i++) {
    const fw_block_t *b = &t->slot[i];
    if (b->p == NULL) continue;
    hak_slab_t *m = t_run_of(b->p);
    unsigned k = 0;
    while (k < n && out[k].m != m) k++;
    if (k == n) {
      uintptr_t w = atomic_load_explicit(&m->remote, memory_order_acquire);
      out[n] = (fw_runrec_t){m, fw_owner_id(t, m), 0, w, fw_chain_len(hak_rq_head(w), NULL), 0,
                             0, m->freelist, m->used, m->carved, false};
      fw_notified(t, m, &out[n].delivered, &out[n].stray);
      n++;
    }
    out[k].live++;
    out[k].old |= b->old;
  }
  return n;
}

static inline const fw_runrec_t *fw_find_run(const fw_runrec_t *set, unsigned n,
                                             const hak_slab_t *m) {
  for (unsigned k = 0; k < n; k++)
    if (set[k].m == m) return &set[k];
  return NULL;
}

/* The live blocks now are the old ones of the next check. */
static inline void fw_mark_old(const fw_team_t *t) {
  for (int i = 0; i < t->nslots; i++) t->slot[i].old = t->slot[i].p != NULL;
}

/* ---- a pool of threads that never allocate --------------------------------------------------- */

#define FW_POOL_MAX 4

typedef struct fw_pool_s fw_pool_t;

typedef struct fw_member_s {
  fw_pool_t *pool;
  unsigned id; /* 0..size-1 */
} fw_member_t;

struct fw_pool_s {
  pthread_mutex_t mu;
  pthread_cond_t go, done_cv; /* a round started; a member finished its part */
  void (*work)(unsigned id);  /* a member's part of a round, run without mu */
  unsigned size;              /* members, <= FW_POOL_MAX */
  bool started;               /* harness thread only */
  uint64_t seq;               /* bumped to start a round; mu */
  unsigned n;                 /* members taking part in the round; mu */
  _Atomic(unsigned) done;     /* members done with the round; written under mu */
  fw_member_t member[FW_POOL_MAX];
};

/* static fw_pool_t pool = FW_POOL_INIT(work, size); */
#define FW_POOL_INIT(work_fn, nmembers)                             \
  {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, \
   .done_cv = PTHREAD_COND_INITIALIZER, .work = (work_fn), .size = (nmembers)}

static inline void *fw_member_main(void *arg) {
  const fw_member_t *me = arg;
  fw_pool_t *p = me->pool;
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->seq == seen || me->id >= p->n) {
      seen = p->seq;
      pthread_cond_wait(&p->go, &p->mu);
    }
    seen = p->seq;
    pthread_mutex_unlock(&p->mu);
    p->work(me->id);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->done, 1);
    pthread_cond_signal(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

/* Starts the members on the first call; they are detached and live as long as the process. */
static inline void fw_pool_start(fw_pool_t *p) {
  if (p->started) return;
  T_INVARIANT(p->size <= FW_POOL_MAX, "a pool of %u threads", p->size);
  p->started = true;
  for (unsigned i = 0; i < p->size; i++) {
    pthread_t t;
    p->member[i] = (fw_member_t){p, i};
    t_start(&t, fw_member_main, &p->member[i]);
    pthread_detach(t);
  }
}

/* Starts a round of members 0..n-1 (the previous round over: fw_pool_wait(p, its n)). */
static inline void fw_pool_go(fw_pool_t *p, unsigned n) {
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->done, 0);
  p->n = n;
  p->seq++;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
}

/* Waits until k members are done with the round. */
static inline void fw_pool_wait(fw_pool_t *p, unsigned k) {
  pthread_mutex_lock(&p->mu);
  while (atomic_load(&p->done) < k) pthread_cond_wait(&p->done_cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

#endif /* HAKMEM_FUZZ_WORKER_H */
