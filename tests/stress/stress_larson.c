/* stress_larson SECONDS: producer/consumer cross-thread frees, larson-shaped (DESIGN §7).
 *
 * Two producers allocate blocks of 16..2048 bytes, pattern them and pass them over two bounded
 * queues; two consumers check and free them. The run is cut into rounds and every round
 * starts fresh threads: at the end of a round each producer allocates a batch it leaves
 * behind, each consumer leaves the blocks it kept for itself, and the next round's consumers
 * free those after their allocating threads have exited (orphaned slabs, adoption, last-free
 * release). At the end live_blocks must be back at its starting value. */
#include <pthread.h>
#include <stdatomic.h>

#include "hak_test.h"

#define QCAP 512
#define PRODUCERS 2
#define CONSUMERS 2
#define PRODUCER_LEFTOVER 48
#define CONSUMER_STASH 64
#define LEFTOVER_MAX (PRODUCERS * PRODUCER_LEFTOVER + CONSUMERS * CONSUMER_STASH)
#define MIN_PER_ROUND 200 /* blocks a producer makes per round even when time is short */

typedef struct block_s {
  void *p;
  size_t size;
} block_t;

typedef struct queue_s {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  block_t items[QCAP]; /* ring; protected by lock */
  size_t head, count;  /* protected by lock */
  int closed;          /* no more pushes; protected by lock */
} queue_t;

typedef struct consumer_s {
  pthread_t thread;
  int id;
  block_t inherited[LEFTOVER_MAX]; /* blocks whose allocating threads have exited */
  size_t ninherited;
} consumer_t;

typedef struct producer_s {
  pthread_t thread;
  int id;
  uint64_t seed;
} producer_t;

static queue_t queues[CONSUMERS];
static double round_deadline;
static atomic_ullong total_allocs;

static pthread_mutex_t leftover_lock = PTHREAD_MUTEX_INITIALIZER;
static block_t leftovers[LEFTOVER_MAX]; /* protected by leftover_lock */
static size_t nleftovers;

static block_t make_block(t_rng_t *rng) {
  block_t b;
  b.size = t_rng_range(rng, 16, 2048);
  b.p = T_MALLOC(b.size);
  t_check(b.p != NULL, "malloc(%zu) returned NULL", b.size);
  t_check(t_aligned(b.p, 16), "malloc(%zu) = %p is not 16-aligned", b.size, b.p);
  t_fill(b.p, b.size, b.size);
  atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
  return b;
}

static void release(block_t b) {
  t_verify(b.p, b.size, b.size);
  T_FREE(b.p);
}

static void leave_behind(const block_t *blocks, size_t n) {
  pthread_mutex_lock(&leftover_lock);
  t_check(nleftovers + n <= LEFTOVER_MAX, "leftover list overflow");
  memcpy(&leftovers[nleftovers], blocks, n * sizeof(block_t));
  nleftovers += n;
  pthread_mutex_unlock(&leftover_lock);
}

static void queue_push(queue_t *q, block_t b) {
  pthread_mutex_lock(&q->lock);
  while (q->count == QCAP)
    pthread_cond_wait(&q->not_full, &q->lock);
  q->items[(q->head + q->count) % QCAP] = b;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

/* Returns 0 once the queue is closed and empty. */
static int queue_pop(queue_t *q, block_t *out) {
  pthread_mutex_lock(&q->lock);
  while (q->count == 0 && !q->closed)
    pthread_cond_wait(&q->not_empty, &q->lock);
  int got = q->count > 0;
  if (got) {
    *out = q->items[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->lock);
  return got;
}

static void *producer_main(void *arg) {
  producer_t *pr = arg;
  t_rng_t rng;
  t_rng_seed(&rng, pr->seed);
  for (uint64_t i = 0;; i++) {
    if (i >= MIN_PER_ROUND && (i & 63) == 0 && t_now() >= round_deadline)
      break;
    queue_push(&queues[(i + (uint64_t)pr->id) % CONSUMERS], make_block(&rng));
  }
  block_t left[PRODUCER_LEFTOVER];
  for (int i = 0; i < PRODUCER_LEFTOVER; i++)
    left[i] = make_block(&rng);
  leave_behind(left, PRODUCER_LEFTOVER);
  return NULL;
}

static void *consumer_main(void *arg) {
  consumer_t *c = arg;
  t_rng_t rng;
  t_rng_seed(&rng, (uint64_t)c->id * 7919 + 3);
  /* Blocks from threads that no longer exist. */
  for (size_t i = 0; i < c->ninherited; i++)
    release(c->inherited[i]);
  block_t stash[CONSUMER_STASH];
  for (int i = 0; i < CONSUMER_STASH; i++)
    stash[i] = make_block(&rng);
  block_t b;
  for (uint64_t n = 0; queue_pop(&queues[c->id], &b); n++) {
    release(b);
    if ((n & 7) == 0) {
      int slot = (int)t_rng_below(&rng, CONSUMER_STASH);
      release(stash[slot]);
      stash[slot] = make_block(&rng);
    }
  }
  leave_behind(stash, CONSUMER_STASH);
  return NULL;
}

static void run_round(int round, double seconds, consumer_t *consumers, producer_t *producers) {
  /* Hand the previous round's leftovers to this round's consumers. */
  pthread_mutex_lock(&leftover_lock);
  for (int c = 0; c < CONSUMERS; c++)
    consumers[c].ninherited = 0;
  for (size_t i = 0; i < nleftovers; i++) {
    consumer_t *c = &consumers[i % CONSUMERS];
    c->inherited[c->ninherited++] = leftovers[i];
  }
  nleftovers = 0;
  pthread_mutex_unlock(&leftover_lock);

  for (int c = 0; c < CONSUMERS; c++) {
    queues[c].closed = 0;
    queues[c].head = queues[c].count = 0;
  }
  round_deadline = t_now() + seconds;
  for (int c = 0; c < CONSUMERS; c++) {
    consumers[c].id = c;
    t_check(pthread_create(&consumers[c].thread, NULL, consumer_main, &consumers[c]) == 0,
            "pthread_create (consumer) failed");
  }
  for (int p = 0; p < PRODUCERS; p++) {
    producers[p].id = p;
    producers[p].seed = (uint64_t)round * 1000 + (uint64_t)p;
    t_check(pthread_create(&producers[p].thread, NULL, producer_main, &producers[p]) == 0,
            "pthread_create (producer) failed");
  }
  for (int p = 0; p < PRODUCERS; p++)
    pthread_join(producers[p].thread, NULL);
  for (int c = 0; c < CONSUMERS; c++) {
    pthread_mutex_lock(&queues[c].lock);
    queues[c].closed = 1;
    pthread_cond_broadcast(&queues[c].not_empty);
    pthread_mutex_unlock(&queues[c].lock);
  }
  for (int c = 0; c < CONSUMERS; c++)
    pthread_join(consumers[c].thread, NULL);
  for (int c = 0; c < CONSUMERS; c++)
    t_check(queues[c].count == 0, "queue %d still holds %zu blocks", c, queues[c].count);
}

static consumer_t consumers[CONSUMERS];
static producer_t producers[PRODUCERS];

int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  int rounds = (int)(seconds * 4);
  if (rounds < 4)
    rounds = 4;
  hak_stats_t before;
  hak_stats_get(&before);
  for (int c = 0; c < CONSUMERS; c++) {
    pthread_mutex_init(&queues[c].lock, NULL);
    pthread_cond_init(&queues[c].not_empty, NULL);
    pthread_cond_init(&queues[c].not_full, NULL);
  }
  for (int r = 0; r < rounds; r++)
    run_round(r, seconds / rounds, consumers, producers);
  /* The last round's leftovers: their threads are gone too. */
  t_check(nleftovers == LEFTOVER_MAX, "expected %d leftover blocks, found %zu", LEFTOVER_MAX,
          nleftovers);
  for (size_t i = 0; i < nleftovers; i++)
    release(leftovers[i]);
  nleftovers = 0;

  uint64_t allocs = atomic_load(&total_allocs);
  t_check_stats_moved(&before, allocs);
  t_check_live(before.live_blocks, 4 * (PRODUCERS + CONSUMERS) + 16);
  printf("stress_larson: rounds=%d allocations=%llu\n", rounds, (unsigned long long)allocs);
  return 0;
}
