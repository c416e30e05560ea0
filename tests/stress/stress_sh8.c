/* stress_sh8 SECONDS [THREADS]: an sh8bench-shaped workload (DESIGN §7).
 *
 * Each thread keeps a ring of live blocks with sizes from a small-weighted histogram
 * (60% 8-64 B, 25% 65-512 B, 10% 513-4096 B, 5% up to 64 KiB). Replacing a ring slot frees the
 * old block; about a quarter of those frees are handed to another thread's mailbox and freed
 * there (cross-thread frees). Every block carries a fill pattern checked before it is freed.
 * At the end every block is freed and live_blocks must be back at its starting value. */
#include <pthread.h>
#include <stdatomic.h>

#include "hak_test.h"

#define MAX_THREADS 64
#define RING 2048
#define MAILBOX 4096

typedef struct block_s {
  void *p;
  size_t size;
} block_t;

typedef struct mailbox_s {
  pthread_mutex_t lock;
  size_t count;           /* entries in use; protected by lock */
  block_t items[MAILBOX]; /* blocks handed over by other threads; protected by lock */
} mailbox_t;

typedef struct worker_s {
  int id;
  pthread_t thread;
  uint64_t allocs;   /* allocations by this thread */
  uint64_t handoffs; /* frees handed to another thread */
  block_t ring[RING];
  block_t drained[MAILBOX]; /* scratch for mailbox draining, owned by the thread */
} worker_t;

static int nthreads;
static double deadline;
static mailbox_t mailboxes[MAX_THREADS];
static worker_t workers[MAX_THREADS];
static pthread_barrier_t stop_barrier;

static size_t histogram_size(t_rng_t *rng) {
  uint64_t r = t_rng_below(rng, 100);
  if (r < 60)
    return t_rng_range(rng, 8, 64);
  if (r < 85)
    return t_rng_range(rng, 65, 512);
  if (r < 95)
    return t_rng_range(rng, 513, 4096);
  return t_rng_range(rng, 4097, 65536);
}

static void release(block_t b) {
  t_verify(b.p, b.size, b.size);
  T_FREE(b.p);
}

/* Returns 0 if the mailbox is full (the caller frees locally instead). */
static int post(int to, block_t b) {
  mailbox_t *m = &mailboxes[to];
  int ok = 0;
  pthread_mutex_lock(&m->lock);
  if (m->count < MAILBOX) {
    m->items[m->count++] = b;
    ok = 1;
  }
  pthread_mutex_unlock(&m->lock);
  return ok;
}

static void drain(worker_t *w) {
  mailbox_t *m = &mailboxes[w->id];
  pthread_mutex_lock(&m->lock);
  size_t n = m->count;
  memcpy(w->drained, m->items, n * sizeof(block_t));
  m->count = 0;
  pthread_mutex_unlock(&m->lock);
  for (size_t i = 0; i < n; i++)
    release(w->drained[i]);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  t_rng_t rng;
  t_rng_seed(&rng, 1000 + (uint64_t)w->id);
  for (uint64_t iter = 0;; iter++) {
    if ((iter & 255) == 0) {
      drain(w);
      if (t_now() >= deadline)
        break;
    }
    block_t *slot = &w->ring[iter % RING];
    if (slot->p != NULL) {
      int to = (int)t_rng_below(&rng, (uint64_t)nthreads);
      if (nthreads > 1 && to != w->id && t_rng_below(&rng, 100) < 33 && post(to, *slot))
        w->handoffs++;
      else
        release(*slot);
    }
    slot->size = histogram_size(&rng);
    slot->p = T_MALLOC(slot->size);
    t_check(slot->p != NULL, "thread %d: malloc(%zu) returned NULL", w->id, slot->size);
    t_check(t_aligned(slot->p, 16), "thread %d: malloc(%zu) = %p is not 16-aligned", w->id,
            slot->size, slot->p);
    t_fill(slot->p, slot->size, slot->size);
    w->allocs++;
  }
  for (size_t i = 0; i < RING; i++) {
    if (w->ring[i].p != NULL)
      release(w->ring[i]);
    w->ring[i].p = NULL;
  }
  /* Nobody posts after this barrier, so the last drain empties the mailbox for good. */
  pthread_barrier_wait(&stop_barrier);
  drain(w);
  return NULL;
}

int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  nthreads = argc > 2 ? atoi(argv[2]) : 4;
  t_check(nthreads >= 1 && nthreads <= MAX_THREADS, "thread count %d out of range", nthreads);
  hak_stats_t before;
  hak_stats_get(&before);
  uint64_t live = before.live_blocks;

  pthread_barrier_init(&stop_barrier, NULL, (unsigned)nthreads);
  for (int i = 0; i < nthreads; i++)
    pthread_mutex_init(&mailboxes[i].lock, NULL);
  deadline = t_now() + seconds;
  for (int i = 0; i < nthreads; i++) {
    workers[i].id = i;
    t_check(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0,
            "pthread_create failed");
  }
  uint64_t allocs = 0, handoffs = 0;
  for (int i = 0; i < nthreads; i++) {
    pthread_join(workers[i].thread, NULL);
    allocs += workers[i].allocs;
    handoffs += workers[i].handoffs;
  }
  for (int i = 0; i < nthreads; i++)
    t_check(mailboxes[i].count == 0, "mailbox %d still holds %zu blocks", i, mailboxes[i].count);
  t_check(allocs > 0, "no allocations were made");
  t_check(nthreads == 1 || handoffs > 0, "no cross-thread frees happened");
  t_check_stats_moved(&before, allocs);
  t_check_live(live, 4 * (uint64_t)nthreads + 16);

  hak_stats_t after;
  hak_stats_get(&after);
  /* Thousands of tiny blocks freed by a thread that does not own their slab must have gone
   * through the remote queue (Box 2) at least once. */
  t_check(handoffs < 1000 || after.remote_frees > before.remote_frees,
          "%llu cross-thread frees but hak_stats remote_frees did not grow",
          (unsigned long long)handoffs);
  printf("stress_sh8: threads=%d allocations=%llu cross_thread_frees=%llu remote_frees=%llu\n",
         nthreads, (unsigned long long)allocs, (unsigned long long)handoffs,
         (unsigned long long)(after.remote_frees - before.remote_frees));
  return 0;
}
