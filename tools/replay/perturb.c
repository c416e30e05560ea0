/* --perturb SEED: replays a trace under one interleaving of its threads, chosen by SEED.
 *
 * Boundary: this file decides which replay thread runs when; run.c performs the calls. hakmem
 * reaches it only through hak_sched_hook, which is set for the perturbed replay alone.
 *
 * One replay thread runs at a time, the one holding the baton (s.cur). It gives the baton away
 * only at a decision:
 *   - after each of its calls ("call"): who runs next. Usually the thread whose next call comes
 *     first in the recorded order; at the seed's shuffle odds, one of the first few such
 *     threads at random, so that calls of different threads trade places;
 *   - at each hakmem schedule point (named after the point): stay; switch (another thread runs
 *     until a later decision gives the baton back); or park (the thread is not chosen for the
 *     next K decisions, K up to thousands, so that the others make real progress while it
 *     sits in the window);
 *   - when a thread is gone, its exit path done ("gone"): who runs next.
 * Each seed first draws its mix (choose_mix): how often calls trade places and among how many,
 * how often a point switches or parks, how long parks last, at which points they happen.
 * Each decision draws from one PRNG seeded by SEED, in one order, so one seed, trace and build
 * give one sequence of decisions; hakmem's clock (its decay) is the only input outside them.
 * --schedule-log writes one line per decision.
 *
 * Invariants:
 * - Only the baton holder runs hakmem code or touches the scheduler's state (under s.mu); the
 *   other replay threads wait on their own condition variable.
 * - A thread's calls run in their order, and a free or realloc of block b after the call that
 *   made b (s.made): every schedule is one a real program could have had.
 * - A thread that holds a hakmem lock (hak_sched_locks > 0) is never stopped: another thread
 *   might spin on that lock forever.
 * - A thread exits under the baton: it returns from thread_main holding it, hakmem's key
 *   destructor flushes its cache (its points decide as any), then ours, on a key created after
 *   hakmem's and so run after it, marks it gone and hands the baton on for good.
 * - While threads remain, one of them can take the baton: when nobody else can run, the parked
 *   thread whose park ends first is unparked (the thread of the earliest call not yet run in
 *   the recorded order is never blocked otherwise).
 *
 * A baton holder blocked outside any point, on something only a stopped thread can do, makes no
 * decision: a watchdog notices after STALL_SECONDS, says so on stderr and lets every thread run
 * unscheduled, each waiting only for the blocks its calls need, so the replay still ends (and
 * is not reproducible). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "replay.h"

#if !HAKMEM_SCHED_POINTS
#error "perturb.c: link hakmem-replay with hakmem_sched (HAKMEM_SCHED_POINTS=1)"
#endif

#define STALL_SECONDS 3
#define IDLE_SCAN 64 /* idle threads looked at per decision, at most */

enum { PT_IDLE, PT_LIVE, PT_GONE };

typedef struct sthread_s {
  pthread_t th;
  pthread_cond_t cv;   /* the baton came, or the schedule was let loose                  */
  size_t pos;          /* its call under way or next to run; n: none left              */
  uint64_t park_until; /* not chosen before this decision; nonzero only while inside   */
  uint32_t num;        /* recorded thread number                                       */
  uint8_t state;       /* PT_IDLE (not started), PT_LIVE, PT_GONE (exit path done)     */
  bool inside;         /* call pos under way (stopped at a point), or exiting          */
  size_t slot;         /* index in s.live while PT_LIVE                                */
} sthread_t;

static struct {
  pthread_mutex_t mu;      /* guards everything below but loose_flag                  */
  pthread_cond_t main_cv;  /* remaining reached 0                                     */
  pthread_cond_t loose_cv; /* unscheduled: a block was made                           */
  pthread_cond_t watch_cv; /* the replay ended (CLOCK_MONOTONIC)                      */
  pthread_key_t key;       /* value: the thread's sthread_t; destructor thread_gone   */
  const trace_t *tr;
  sthread_t *thr;          /* by recorded thread number                               */
  sthread_t **live;        /* the PT_LIVE threads, in no order                        */
  size_t nlive;            /* how many                                                */
  sthread_t **idle;        /* every thread with calls, by first call; started stay    */
  size_t nidle;            /* how many: the threads the replay runs                   */
  size_t idle_head;        /* idle[< idle_head] are all started                       */
  sthread_t **cand;        /* scratch: the threads that may run now                   */
  uint8_t *made;           /* by block id: the call that makes it has run             */
  sthread_t *cur;          /* baton holder; NULL once loose                           */
  uint64_t decision;       /* decisions made                                          */
  uint64_t rng;            /* xorshift64* state                                       */
  size_t remaining;        /* threads with calls not gone yet                         */
  bool ended;              /* remaining reached 0                                     */
  bool loose;              /* the watchdog let every thread run unscheduled           */
  _Atomic bool loose_flag; /* loose, for the hook to read without s.mu                */
  size_t stall_call;       /* --test-stall: the call whose thread blocks first, or n  */
  uint32_t shuffle;        /* the seed's mix: a call decision picks at random 1 in
                              shuffle times (0: never) ...                            */
  uint32_t window;         /* ... among the window threads whose calls come first     */
  uint32_t switch_1;       /* a point switches 1 in switch_1 times                    */
  uint32_t park_1;         /* a point parks 1 in park_1 times ...                     */
  uint32_t park_bits;      /* ... for 1 .. 2^park_bits decisions (log-uniform) ...    */
  uint32_t park_at;        /* ... if the point's bit (1 << point) is in this mask     */
  FILE *log;               /* --schedule-log, line-buffered, or NULL                  */
} s = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .main_cv = PTHREAD_COND_INITIALIZER,
       .loose_cv = PTHREAD_COND_INITIALIZER};

static __thread sthread_t *self; /* the replay thread running here, NULL elsewhere */

static const char *const point_names[HAK_SP_COUNT] = {
    [HAK_SP_BEFORE_PUSH] = "before_push",       [HAK_SP_AFTER_PUSH] = "after_push",
    [HAK_SP_BEFORE_DELIVER] = "before_deliver", [HAK_SP_DRAIN] = "drain",
    [HAK_SP_ORPHAN_PUBLISH] = "orphan_publish", [HAK_SP_BEFORE_RELEASE] = "before_release",
    [HAK_SP_PURGE_SLEEP] = "purge_sleep",       [HAK_SP_BEFORE_UNMAP] = "before_unmap",
    [HAK_SP_LARGE_GROW] = "large_grow",         [HAK_SP_REALLOC_FREED] = "realloc_freed",
};

/* ---- choices --------------------------------------------------------------------------------- */

static uint64_t rnd(void) {
  uint64_t x = s.rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s.rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* Spreads consecutive seeds over the state space (splitmix64's finaliser); never 0. */
static uint64_t seed_state(uint64_t seed) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z != 0 ? z : 1;
}

/* Each seed has its own mix of the three perturbations (swarm testing): a race needs one
 * kind more than the others, and a seed that does every kind at once drowns it. */
static void choose_mix(void) {
  static const uint32_t shuffle[] = {0, 2, 8, 32}, window[] = {2, 3, 4, 8},
                        switch_1[] = {2, 4, 16, 64}, park_1[] = {1, 2, 8, 32},
                        park_bits[] = {4, 7, 10, 13};
  s.shuffle = shuffle[rnd() % 4];
  s.window = window[rnd() % 4];
  s.switch_1 = switch_1[rnd() % 4];
  s.park_1 = park_1[rnd() % 4];
  s.park_bits = park_bits[rnd() % 4];
  s.park_at = (uint32_t)(rnd() & ((1u << HAK_SP_COUNT) - 1));
  if (s.park_at == 0)
    s.park_at = (1u << HAK_SP_COUNT) - 1;
}

static uint64_t park_length(void) {
  uint32_t bits = 1 + (uint32_t)(rnd() % s.park_bits);
  return 1 + rnd() % (1ull << bits);
}

/* May run now: not gone, not parked, and between calls only when its next call's block (the
 * one it frees or reallocs) exists. */
static bool ready(const sthread_t *p) {
  if (p->state == PT_GONE || p->park_until > s.decision)
    return false;
  if (p->inside || p->pos >= s.tr->n)
    return true;
  int64_t old = s.tr->ops[p->pos].old;
  return old < 0 || s.made[old];
}

static bool before(const sthread_t *a, const sthread_t *b) {
  return a->pos < b->pos || (a->pos == b->pos && a->num < b->num);
}

/* Fills s.cand with the threads that may run now, skip aside: every live one and the first
 * s.window ready idle ones (by first call: no other idle thread comes first in the recorded
 * order or among the first s.window). Returns how many. */
static size_t ready_set(const sthread_t *skip) {
  size_t k = 0;
  for (size_t i = 0; i < s.nlive; i++)
    if (s.live[i] != skip && ready(s.live[i]))
      s.cand[k++] = s.live[i];
  while (s.idle_head < s.nidle && s.idle[s.idle_head]->state != PT_IDLE)
    s.idle_head++;
  uint32_t found = 0, looked = 0;
  for (size_t i = s.idle_head; i < s.nidle && found < s.window && looked < IDLE_SCAN; i++) {
    sthread_t *p = s.idle[i];
    if (p->state != PT_IDLE)
      continue;
    looked++;
    if (p != skip && ready(p)) {
      s.cand[k++] = p;
      found++;
    }
  }
  return k;
}

/* Nobody else can run: the parked thread whose park ends first runs now. */
static sthread_t *unpark(void) {
  sthread_t *best = NULL;
  for (size_t i = 0; i < s.nlive; i++) {
    sthread_t *p = s.live[i];
    if (p->park_until > s.decision && (best == NULL || p->park_until < best->park_until ||
                                       (p->park_until == best->park_until && p->num < best->num)))
      best = p;
  }
  if (best != NULL)
    best->park_until = 0;
  return best;
}

static void sort_by_pos(sthread_t **c, size_t k) {
  for (size_t i = 1; i < k; i++)
    for (size_t j = i; j > 0 && before(c[j], c[j - 1]); j--) {
      sthread_t *t = c[j];
      c[j] = c[j - 1];
      c[j - 1] = t;
    }
}

/* Who runs next, skip aside. NULL: nobody but skip can run (with skip NULL: nobody at all,
 * which the invariants rule out while threads remain). */
static sthread_t *choose(const sthread_t *skip) {
  size_t k = ready_set(skip);
  if (k == 0)
    return skip != NULL ? NULL : unpark();
  if (k > 1 && s.shuffle != 0 && rnd() % s.shuffle == 0) {
    sort_by_pos(s.cand, k);
    return s.cand[rnd() % (k < s.window ? k : s.window)];
  }
  sthread_t *best = s.cand[0];
  for (size_t i = 1; i < k; i++)
    if (before(s.cand[i], best))
      best = s.cand[i];
  return best;
}

static void note_mix(uint64_t seed) {
  fprintf(s.log, "seed %" PRIu64 ": shuffle ", seed);
  if (s.shuffle == 0)
    fprintf(s.log, "never");
  else
    fprintf(s.log, "1/%u among %u", s.shuffle, s.window);
  fprintf(s.log, ", switch 1/%u, park 1/%u for up to 2^%u at", s.switch_1, s.park_1, s.park_bits);
  for (int p = 0; p < HAK_SP_COUNT; p++)
    if (s.park_at >> p & 1)
      fprintf(s.log, " %s", point_names[p]);
  fprintf(s.log, "\n");
}

static void note(const char *where, const sthread_t *me, const sthread_t *next, const char *how) {
  if (s.log == NULL)
    return;
  fprintf(s.log, "%" PRIu64 " %s t%u -> t%u op %zu%s\n", s.decision, where,
          me != NULL ? me->num : 0, next->num, next->pos, how);
}

/* ---- the baton ------------------------------------------------------------------------------- */

static void *thread_main(void *arg);

static void start(sthread_t *p) {
  p->state = PT_LIVE;
  p->slot = s.nlive;
  s.live[s.nlive++] = p;
  if (pthread_create(&p->th, NULL, thread_main, p) != 0) {
    fprintf(stderr, "hakmem-replay: cannot start a thread\n");
    exit(2);
  }
}

static void give(sthread_t *p) {
  if (p == NULL) {
    fprintf(stderr, "hakmem-replay: perturbed schedule: no thread can run\n");
    exit(2);
  }
  s.cur = p;
  if (p->state == PT_IDLE)
    start(p);
  else
    pthread_cond_signal(&p->cv);
}

/* Returns (s.mu held) when me may go on: it holds the baton, or, unscheduled, what its next
 * call needs exists. */
static void await_turn(sthread_t *me) {
  for (;;) {
    if (s.loose ? me->inside || ready(me) : s.cur == me)
      return;
    pthread_cond_wait(s.loose ? &s.loose_cv : &me->cv, &s.mu);
  }
}

/* me has run call i: its block exists now. */
static void after_call(sthread_t *me, size_t i) {
  int64_t id = s.tr->ops[i].id;
  if (id >= 0)
    s.made[id] = 1;
  me->pos = replay_next_call(i);
  me->inside = false;
  if (s.loose) {
    pthread_cond_broadcast(&s.loose_cv);
  } else {
    s.decision++;
    sthread_t *next = choose(NULL);
    note("call", me, next, "");
    if (next != me)
      give(next);
  }
  await_turn(me);
}

static void at_point(sthread_t *me, enum hak_sched_point point) {
  s.decision++;
  uint64_t r = rnd();
  sthread_t *next = me;
  char how[40] = "";
  if ((s.park_at >> point & 1) && r % s.park_1 == 0) {
    uint64_t k = park_length();
    me->park_until = s.decision + k;
    next = choose(NULL); /* me again when nobody else can run */
    snprintf(how, sizeof how, " park %" PRIu64, k);
  } else if ((r >> 32) % s.switch_1 == 0) {
    sthread_t *other = choose(me);
    if (other != NULL) {
      next = other;
      snprintf(how, sizeof how, " switch");
    }
  }
  note(point_names[point], me, next, how);
  if (next != me) {
    give(next);
    await_turn(me);
  }
  me->park_until = 0;
}

static void hook(enum hak_sched_point point, const void *obj) {
  (void)obj; /* addresses differ from run to run: no decision may depend on them */
  sthread_t *me = self;
  if (me == NULL || hak_sched_locks > 0 ||
      atomic_load_explicit(&s.loose_flag, memory_order_relaxed))
    return;
  pthread_mutex_lock(&s.mu);
  if (!s.loose)
    at_point(me, point);
  pthread_mutex_unlock(&s.mu);
}

/* --test-stall: the thread blocks outside the scheduler until the watchdog lets go. */
static void wait_loose(void) {
  struct timespec nap = {0, 10 * 1000 * 1000};
  while (!atomic_load(&s.loose_flag))
    nanosleep(&nap, NULL);
}

static void *thread_main(void *arg) {
  sthread_t *me = arg;
  self = me;
  pthread_setspecific(s.key, me);
  pthread_mutex_lock(&s.mu);
  await_turn(me);
  while (me->pos < s.tr->n && s.tr->ops[me->pos].op != HAK_TR_THREAD_EXIT) {
    size_t i = me->pos;
    me->inside = true;
    pthread_mutex_unlock(&s.mu);
    if (i == s.stall_call)
      wait_loose();
    replay_call(i);
    pthread_mutex_lock(&s.mu);
    after_call(me, i);
  }
  me->inside = true; /* hakmem's exit path next, then thread_gone */
  pthread_mutex_unlock(&s.mu);
  return NULL;
}

/* Key destructor: the thread's exit path is done. */
static void thread_gone(void *arg) {
  sthread_t *me = arg;
  if (hak_tc->state == HAK_TC_LIVE) {
    /* hakmem's destructor has not run yet (the key order is glibc's, by index): come back in
     * the next round, after it. */
    pthread_setspecific(s.key, me);
    return;
  }
  pthread_mutex_lock(&s.mu);
  self = NULL;
  me->state = PT_GONE;
  s.live[me->slot] = s.live[--s.nlive];
  s.live[me->slot]->slot = me->slot;
  if (--s.remaining == 0) {
    s.ended = true;
    pthread_cond_signal(&s.main_cv);
  } else if (!s.loose) {
    s.decision++;
    sthread_t *next = choose(NULL);
    note("gone", me, next, "");
    give(next);
  }
  pthread_mutex_unlock(&s.mu);
}

/* ---- the watchdog ---------------------------------------------------------------------------- */

static void let_loose(void) {
  fprintf(stderr,
          "hakmem-replay: perturbed schedule stalled at decision %" PRIu64
          "; running unscheduled (not reproducible)\n",
          s.decision);
  if (s.log != NULL)
    fprintf(s.log, "%" PRIu64 " stalled: unscheduled from here\n", s.decision);
  s.loose = true;
  atomic_store(&s.loose_flag, true);
  s.cur = NULL;
  for (size_t i = s.idle_head; i < s.nidle; i++)
    if (s.idle[i]->state == PT_IDLE)
      start(s.idle[i]);
  for (size_t i = 0; i < s.nlive; i++)
    pthread_cond_broadcast(&s.live[i]->cv);
  pthread_cond_broadcast(&s.loose_cv);
}

static void *watchdog(void *arg) {
  (void)arg;
  pthread_mutex_lock(&s.mu);
  uint64_t seen = s.decision;
  double since = replay_now();
  while (!s.ended && !s.loose) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000 * 1000 * 1000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000 * 1000 * 1000;
    }
    pthread_cond_timedwait(&s.watch_cv, &s.mu, &ts);
    if (s.decision != seen) {
      seen = s.decision;
      since = replay_now();
    } else if (!s.ended && replay_now() - since >= STALL_SECONDS) {
      let_loose();
    }
  }
  pthread_mutex_unlock(&s.mu);
  return NULL;
}

/* ---- the replay ------------------------------------------------------------------------------ */

static bool open_log(const char *path, uint64_t seed) {
  s.log = fopen(path, "w");
  if (s.log == NULL) {
    fprintf(stderr, "hakmem-replay: cannot write %s\n", path);
    return false;
  }
  setvbuf(s.log, NULL, _IOLBF, 0); /* a crash loses no decision made before it */
  note_mix(seed);
  return true;
}

static bool setup(const trace_t *t, const size_t *first, uint64_t seed, const char *log_path,
                  size_t stall_call) {
  size_t nt = (size_t)t->threads + 1;
  s.tr = t;
  s.thr = calloc(nt, sizeof *s.thr);
  s.live = calloc(nt, sizeof *s.live);
  s.idle = calloc(nt, sizeof *s.idle);
  s.cand = calloc(nt, sizeof *s.cand);
  s.made = calloc((size_t)t->blocks + 1, 1);
  if (s.thr == NULL || s.live == NULL || s.idle == NULL || s.cand == NULL || s.made == NULL)
    return false;
  for (uint32_t i = 0; i < nt; i++) {
    pthread_cond_init(&s.thr[i].cv, NULL);
    s.thr[i].num = i;
    s.thr[i].pos = first[i];
  }
  for (size_t i = 0; i < t->n; i++)
    if (first[t->ops[i].thread] == i)
      s.idle[s.nidle++] = &s.thr[t->ops[i].thread];
  s.remaining = s.nidle;
  s.stall_call = stall_call;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s.watch_cv, &ca);
  s.rng = seed_state(seed);
  choose_mix();
  return log_path == NULL || open_log(log_path, seed);
}

int replay_perturbed(const trace_t *t, uint64_t seed, const char *log_path, const char *stats_path,
                     size_t stall_call) {
  const size_t *first = replay_prepare(t);
  if (first == NULL || !setup(t, first, seed, log_path, stall_call))
    return 2;
  hak_process_init(); /* hakmem's thread key exists before ours: its destructor runs first */
  pthread_t dog;
  if (pthread_key_create(&s.key, thread_gone) != 0 ||
      pthread_create(&dog, NULL, watchdog, NULL) != 0)
    return 2;
  atomic_store(&hak_sched_hook, hook);
  pthread_mutex_lock(&s.mu);
  if (s.remaining > 0) {
    sthread_t *p = choose(NULL);
    note("start", NULL, p, "");
    give(p);
  }
  while (s.remaining > 0)
    pthread_cond_wait(&s.main_cv, &s.mu);
  s.ended = true;
  pthread_cond_signal(&s.watch_cv);
  pthread_mutex_unlock(&s.mu);
  pthread_join(dog, NULL);
  for (size_t i = 0; i < s.nidle; i++)
    pthread_join(s.idle[i]->th, NULL);
  atomic_store(&hak_sched_hook, NULL);
  if (s.log != NULL && fclose(s.log) != 0) {
    fprintf(stderr, "hakmem-replay: cannot write the schedule log\n");
    return 2;
  }
  if (stats_path != NULL)
    replay_write_stats(stats_path);
  return 0;
}
