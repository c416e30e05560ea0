/* Deterministic replay: one thread per recorded thread, every call in the recorded order; and
 * the calls themselves (replay_prepare, replay_call), which the perturbed driver (perturb.c)
 * runs in an order of its own.
 *
 * The turn (the index of the next call) is handed from thread to thread under each thread's
 * own mutex and condition variable; consecutive calls of one thread run without a hand-off.
 * A thread exit is replayed where it was recorded: the exiting thread waits for its turn and
 * returns, the main thread joins it (hakmem's thread-exit path has run by then) and hands the
 * turn on. Calls go to the hak_* API with the recorded arguments.
 *
 * Every block carries a pattern of its id over its first and last PAT_SPAN bytes, checked
 * before it is freed and across a realloc; a mismatch exits 1 with
 * `hakmem-replay: block N (op M) corrupt`. A hakmem fail-fast abort or a signal ends the replay
 * as it would have ended the program. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"
#include "replay.h"
#include "replay_stats.h"

#define PAT_SPAN 256

typedef struct rthread_s {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t go;  /* the turn handed to this thread; mu                                  */
  bool started; /* set by the thread that starts it, read by main at the end            */
  bool joined;
} rthread_t;

typedef struct blk_s {
  uint8_t *p;   /* what the replay's call returned (kept after the free: a double free) */
  uint64_t req; /* bytes asked for                                                       */
} blk_t;

static const trace_t *tr;
static size_t *next_own;   /* next_own[i]: the next call of call i's thread, or tr->n */
static size_t *first_own;  /* by recorded thread number: its first call, or tr->n */
static rthread_t *threads; /* by recorded thread number; [0] is the main thread */
static blk_t *blocks;

/* ---- patterns ---------------------------------------------------------------------------- */

static uint8_t pat(int64_t id, uint64_t i) {
  return (uint8_t)((uint64_t)id * 0x9e3779b1u + i * 0x3d + (i >> 8));
}

static void fill(int64_t id) {
  blk_t *b = &blocks[id];
  uint64_t head = b->req < PAT_SPAN ? b->req : PAT_SPAN;
  uint64_t tail = b->req - head < PAT_SPAN ? b->req - head : PAT_SPAN;
  for (uint64_t i = 0; i < head; i++)
    b->p[i] = pat(id, i);
  for (uint64_t i = b->req - tail; i < b->req; i++)
    b->p[i] = pat(id, i);
}

static void corrupt(int64_t id, size_t op, uint64_t off) {
  fprintf(stderr, "hakmem-replay: block %lld (op %zu) corrupt at offset %llu\n", (long long)id, op,
          (unsigned long long)off);
  exit(1);
}

/* Checks block id's pattern below limit bytes. */
static void check(int64_t id, size_t op, uint64_t limit) {
  blk_t *b = &blocks[id];
  uint64_t head = b->req < PAT_SPAN ? b->req : PAT_SPAN;
  uint64_t tail = b->req - head < PAT_SPAN ? b->req - head : PAT_SPAN;
  for (uint64_t i = 0; i < head && i < limit; i++)
    if (b->p[i] != pat(id, i))
      corrupt(id, op, i);
  for (uint64_t i = b->req - tail; i < b->req && i < limit; i++)
    if (b->p[i] != pat(id, i))
      corrupt(id, op, i);
}

static void check_zero(int64_t id, size_t op) {
  blk_t *b = &blocks[id];
  for (uint64_t i = 0; i < b->req && i < PAT_SPAN; i++)
    if (b->p[i] != 0) {
      fprintf(stderr, "hakmem-replay: block %lld (op %zu) from calloc not zeroed at %llu\n",
              (long long)id, op, (unsigned long long)i);
      exit(1);
    }
}

/* ---- one call ---------------------------------------------------------------------------- */

static void *do_realloc(const rop_t *o, size_t i) {
  void *old = o->old >= 0 ? blocks[o->old].p : NULL;
  if (o->old >= 0)
    check(o->old, i, UINT64_MAX);
  void *q = hak_realloc(old, o->size);
  if (q != NULL && o->old >= 0) {
    /* The prefix moved along: check it under the old id's pattern at the new place. */
    blk_t moved = {q, blocks[o->old].req};
    blk_t keep = blocks[o->old];
    blocks[o->old] = moved;
    check(o->old, i, o->size);
    blocks[o->old] = keep;
  }
  return q;
}

static void *call(const rop_t *o, size_t i) {
  void *p = NULL;
  switch (o->op) {
  case HAK_TR_MALLOC:
    return hak_malloc(o->size);
  case HAK_TR_CALLOC:
    return hak_calloc(o->size, o->aux);
  case HAK_TR_REALLOC:
    return do_realloc(o, i);
  case HAK_TR_MEMALIGN:
    return hak_memalign(o->aux, o->size);
  case HAK_TR_ALIGNED_ALLOC:
    return hak_aligned_alloc(o->aux, o->size);
  case HAK_TR_POSIX_MEMALIGN:
    return hak_posix_memalign(&p, o->aux, o->size) == 0 ? p : NULL;
  case HAK_TR_VALLOC:
    return hak_valloc(o->size);
  case HAK_TR_PVALLOC:
    return hak_pvalloc(o->size);
  case HAK_TR_TRIM:
    hak_trim();
    return NULL;
  case HAK_TR_FREE:
    if (!o->twice)
      check(o->old, i, UINT64_MAX);
    hak_free(blocks[o->old].p);
    return NULL;
  default:
    return NULL;
  }
}

void replay_call(size_t i) {
  const rop_t *o = &tr->ops[i];
  void *p = call(o, i);
  if (o->id < 0)
    return;
  if (p == NULL) {
    fprintf(stderr, "hakmem-replay: op %zu: %s of %llu bytes failed (it succeeded when recorded)\n",
            i, trace_op_name(o->op), (unsigned long long)o->size);
    exit(1);
  }
  uint64_t req = o->op == HAK_TR_CALLOC ? o->size * o->aux : o->size;
  blocks[o->id] = (blk_t){p, req};
  if (o->op == HAK_TR_CALLOC)
    check_zero(o->id, i);
  fill(o->id);
}

/* ---- turns ------------------------------------------------------------------------------- */

static void *thread_main(void *arg);

static void hand(rthread_t *t, uint64_t turn) {
  pthread_mutex_lock(&t->mu);
  t->go = turn;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

static void await(rthread_t *t, uint64_t turn) {
  pthread_mutex_lock(&t->mu);
  while (t->go != turn)
    pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
}

/* Passes the turn to whoever runs call i (or the main thread at the end); starts the thread
 * of its first call. The caller holds the turn, so nobody else starts threads meanwhile. */
static void pass(uint64_t i) {
  rthread_t *t = i == tr->n ? &threads[0] : &threads[tr->ops[i].thread];
  if (t != &threads[0] && !t->started) {
    t->started = true;
    t->go = i;
    if (pthread_create(&t->th, NULL, thread_main, t) != 0) {
      fprintf(stderr, "hakmem-replay: cannot start a thread\n");
      exit(2);
    }
    return;
  }
  hand(t, i);
}

static void *thread_main(void *arg) {
  rthread_t *self = arg;
  uint32_t me = (uint32_t)(self - threads);
  for (size_t i = first_own[me]; i < tr->n; i = next_own[i]) {
    await(self, i);
    if (tr->ops[i].op == HAK_TR_THREAD_EXIT) {
      hand(&threads[0], i); /* main joins this thread, then passes i + 1 on */
      return NULL;
    }
    replay_call(i);
    if (i + 1 == tr->n || tr->ops[i + 1].thread != me) {
      pass(i + 1);
    } else {
      pthread_mutex_lock(&self->mu);
      self->go = i + 1; /* the next call is ours: no hand-off */
      pthread_mutex_unlock(&self->mu);
    }
  }
  return NULL;
}

/* Main thread: joins exiting threads in their turn until the end of the trace. */
static void reap(void) {
  rthread_t *m = &threads[0];
  uint64_t last = UINT64_MAX;
  for (;;) {
    pthread_mutex_lock(&m->mu);
    while (m->go == last)
      pthread_cond_wait(&m->cv, &m->mu);
    last = m->go;
    pthread_mutex_unlock(&m->mu);
    if (last == tr->n)
      break;
    rthread_t *t = &threads[tr->ops[last].thread];
    pthread_join(t->th, NULL);
    t->joined = true;
    pass(last + 1);
  }
  for (uint32_t i = 1; i <= tr->threads; i++)
    if (threads[i].started && !threads[i].joined)
      pthread_join(threads[i].th, NULL);
}

void replay_write_stats(const char *path) {
  char buf[16384];
  size_t n = hak_replay_stats_format(buf, sizeof buf);
  FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
  if (f == NULL || fwrite(buf, 1, n, f) != n || (f != stdout && fclose(f) != 0)) {
    fprintf(stderr, "hakmem-replay: cannot write %s\n", path);
    exit(2);
  }
}

size_t replay_next_call(size_t i) { return next_own[i]; }

const size_t *replay_prepare(const trace_t *t) {
  tr = t;
  blocks = calloc((size_t)t->blocks + 1, sizeof *blocks);
  first_own = malloc(((size_t)t->threads + 1) * sizeof *first_own);
  next_own = malloc((t->n + 1) * sizeof *next_own);
  if (blocks == NULL || first_own == NULL || next_own == NULL)
    return NULL;
  for (uint32_t i = 0; i <= t->threads; i++)
    first_own[i] = t->n;
  for (size_t i = t->n; i-- > 0;) {
    next_own[i] = first_own[t->ops[i].thread];
    first_own[t->ops[i].thread] = i;
  }
  return first_own;
}

int replay_run(const trace_t *t, const char *stats_path) {
  threads = calloc((size_t)t->threads + 1, sizeof *threads);
  if (threads == NULL || replay_prepare(t) == NULL)
    return 2;
  for (uint32_t i = 0; i <= t->threads; i++) {
    pthread_mutex_init(&threads[i].mu, NULL);
    pthread_cond_init(&threads[i].cv, NULL);
    threads[i].go = UINT64_MAX;
  }
  if (t->n > 0) {
    pass(0);
    reap();
  }
  if (stats_path != NULL)
    replay_write_stats(stats_path);
  return 0;
}
