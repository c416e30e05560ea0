/* stress_churn SECONDS: thread churn, exit -> orphan -> adopt (DESIGN §7, DROPIN 17).
 *
 * Short-lived workers run in waves of 8. Each allocates ~200 blocks of mixed sizes, hands half
 * of them to a long-lived survivor thread through a queue, frees the rest itself and exits.
 * The survivor frees half of what it receives at once (while the worker may still run: remote
 * frees) and holds the other half until the worker's wave has been joined (frees into slabs
 * whose owner has exited). At least 1,000 workers (times HAK_TEST_SCALE) are started, and
 * waves continue until SECONDS have passed.
 *
 * At the end: live_blocks is back at its starting value; if hakmem counts threads, every
 * worker was seen starting and exiting; slabs were orphaned or adopted. */
#include <pthread.h>
#include <stdatomic.h>

#include "hak_test.h"

#define WAVE 8
#define BLOCKS_PER_WORKER 200
#define QCAP 4096
#define PENDING_MAX 16384
#define MIN_WORKERS 1000

typedef struct item_s {
  void *p;
  size_t size;
  uint64_t wave; /* the wave of the allocating worker */
  int deferred;  /* free only after that wave has been joined */
} item_t;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* an item arrived, a wave was joined, or the queue closed */
  pthread_cond_t not_full;
  item_t items[QCAP]; /* ring; protected by lock */
  size_t head, count; /* protected by lock */
  uint64_t joined;    /* waves 1..joined have been joined; protected by lock */
  int closed;         /* protected by lock */
} q = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .changed = PTHREAD_COND_INITIALIZER,
       .not_full = PTHREAD_COND_INITIALIZER};

static atomic_ullong total_allocs;

typedef struct worker_s {
  pthread_t thread;
  uint64_t wave;
  uint64_t seed;
} worker_t;

static size_t mixed_size(t_rng_t *rng) {
  uint64_t r = t_rng_below(rng, 100);
  if (r < 70)
    return t_rng_range(rng, 8, 256);
  if (r < 95)
    return t_rng_range(rng, 257, 4096);
  return t_rng_range(rng, 4097, 32768);
}

static void release(void *p, size_t size) {
  t_verify(p, size, size);
  T_FREE(p);
}

static void hand_over(item_t it) {
  pthread_mutex_lock(&q.lock);
  while (q.count == QCAP)
    pthread_cond_wait(&q.not_full, &q.lock);
  q.items[(q.head + q.count) % QCAP] = it;
  q.count++;
  pthread_cond_signal(&q.changed);
  pthread_mutex_unlock(&q.lock);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  t_rng_t rng;
  t_rng_seed(&rng, w->seed);
  void *mine[BLOCKS_PER_WORKER];
  size_t sizes[BLOCKS_PER_WORKER];
  int kept = 0;
  for (int i = 0; i < BLOCKS_PER_WORKER; i++) {
    size_t size = mixed_size(&rng);
    void *p = T_MALLOC(size);
    t_check(p != NULL, "worker: malloc(%zu) returned NULL", size);
    t_check(t_aligned(p, 16), "worker: malloc(%zu) = %p is not 16-aligned", size, p);
    t_fill(p, size, size);
    if (i % 2 == 0) {
      item_t it = {p, size, w->wave, i % 4 == 0};
      hand_over(it);
    } else {
      mine[kept] = p;
      sizes[kept++] = size;
    }
  }
  atomic_fetch_add(&total_allocs, BLOCKS_PER_WORKER);
  /* Free the own half in a scrambled order. */
  for (int i = 0; i < kept; i++) {
    int j = i + (int)t_rng_below(&rng, (uint64_t)(kept - i));
    void *p = mine[j];
    size_t s = sizes[j];
    mine[j] = mine[i], sizes[j] = sizes[i];
    release(p, s);
  }
  return NULL;
}

static item_t pending[PENDING_MAX]; /* survivor-private */

static void *survivor_main(void *arg) {
  (void)arg;
  size_t npending = 0;
  uint64_t seen_joined = 0;
  pthread_mutex_lock(&q.lock);
  for (;;) {
    while (q.count == 0 && !q.closed && q.joined == seen_joined)
      pthread_cond_wait(&q.changed, &q.lock);
    int closed = q.closed && q.count == 0;
    int have = q.count > 0;
    item_t it = {0};
    if (have) {
      it = q.items[q.head];
      q.head = (q.head + 1) % QCAP;
      q.count--;
      pthread_cond_signal(&q.not_full);
    }
    uint64_t joined = q.joined;
    pthread_mutex_unlock(&q.lock);

    if (have) {
      if (!it.deferred) {
        release(it.p, it.size);
      } else {
        if (npending == PENDING_MAX) { /* never expected; stay live rather than block */
          release(pending[0].p, pending[0].size);
          pending[0] = pending[--npending];
        }
        pending[npending++] = it;
      }
    }
    if (joined != seen_joined || closed) {
      seen_joined = joined;
      for (size_t i = 0; i < npending;) {
        if (pending[i].wave <= joined || closed) {
          release(pending[i].p, pending[i].size);
          pending[i] = pending[--npending];
        } else {
          i++;
        }
      }
    }
    if (closed)
      break;
    pthread_mutex_lock(&q.lock);
  }
  t_check(npending == 0, "survivor ended with %zu pending blocks", npending);
  return NULL;
}

int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  size_t min_workers = t_scaled(MIN_WORKERS);
  hak_stats_t before;
  hak_stats_get(&before);

  pthread_t survivor;
  t_check(pthread_create(&survivor, NULL, survivor_main, NULL) == 0, "pthread_create failed");
  double deadline = t_now() + seconds;
  worker_t workers[WAVE];
  uint64_t started = 0, wave = 0;
  while (started < min_workers || (t_now() < deadline && started < 20 * min_workers)) {
    wave++;
    for (int i = 0; i < WAVE; i++) {
      workers[i].wave = wave;
      workers[i].seed = started + (uint64_t)i;
      t_check(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0,
              "pthread_create failed after %llu workers", (unsigned long long)started);
    }
    for (int i = 0; i < WAVE; i++)
      pthread_join(workers[i].thread, NULL);
    started += WAVE;
    pthread_mutex_lock(&q.lock);
    q.joined = wave;
    pthread_cond_signal(&q.changed);
    pthread_mutex_unlock(&q.lock);
  }
  pthread_mutex_lock(&q.lock);
  q.closed = 1;
  pthread_cond_signal(&q.changed);
  pthread_mutex_unlock(&q.lock);
  pthread_join(survivor, NULL);

  uint64_t allocs = atomic_load(&total_allocs);
  t_check(allocs == started * BLOCKS_PER_WORKER, "workers made %llu allocations, expected %llu",
          (unsigned long long)allocs, (unsigned long long)(started * BLOCKS_PER_WORKER));
  t_check_stats_moved(&before, allocs);
  t_check_live(before.live_blocks, 4 * (WAVE + 1) + 16);

  hak_stats_t after;
  hak_stats_get(&after);
  uint64_t threads = started; /* the workers; the survivor only frees */
  uint64_t d_started = after.threads_started - before.threads_started;
  uint64_t d_exited = after.threads_exited - before.threads_exited;
  if (d_started == 0 && d_exited == 0) {
    printf("stress_churn: note: hakmem does not count threads; thread checks skipped\n");
  } else {
    t_check(d_started >= threads, "threads_started grew by %llu, but %llu workers allocated",
            (unsigned long long)d_started, (unsigned long long)threads);
    t_check(d_exited >= threads, "threads_exited grew by %llu, but %llu workers exited",
            (unsigned long long)d_exited, (unsigned long long)threads);
  }
  uint64_t d_orphaned = after.orphaned_slabs - before.orphaned_slabs;
  uint64_t d_adopted = after.adoptions - before.adoptions;
  /* Every worker exits with blocks still live in its slabs (the deferred half). */
  t_check(started < 2 * WAVE || d_orphaned + d_adopted > 0,
          "%llu workers exited holding live blocks, but no slab was orphaned or adopted",
          (unsigned long long)started);
  printf("stress_churn: workers=%llu waves=%llu allocations=%llu orphaned_slabs=%llu "
         "adoptions=%llu\n",
         (unsigned long long)started, (unsigned long long)wave, (unsigned long long)allocs,
         (unsigned long long)d_orphaned, (unsigned long long)d_adopted);
  return 0;
}
