/* Box 2, remote queue (src/tiny/remote_queue.c), in isolation.
 *
 * The test takes a fresh run, makes its own thread cache the owner, carves K blocks by hand
 * and lets 4 producer threads push disjoint subsets with hak_remote_push_mt(), round after
 * round. In some rounds the owner drains only after the producers are done; then the pushes
 * must have touched nothing but remote_head and remote_count. In the others it drains
 * concurrently with hak_remote_drain(). Either way:
 *   - the drained blocks (the run's freelist) are exactly the pushed ones, each once;
 *   - remote_count returns to 0 and used drops by the number drained;
 *   - a push reports "was empty" exactly for the first push after each drain, so the number of
 *     such reports equals the number of drains that found something. */
#include "unit.h"

#define NPROD 4
#define ROUNDS 60
#define MAX_K 2048

static hak_slab_t *m;
static uint32_t K;
static void *blk[MAX_K];
static uint8_t mark[MAX_K];

static struct producer_s {
  void *list[MAX_K];
  uint32_t n;
  uint64_t was_empty;
  uint32_t bad_count_after;
} prod[NPROD];

static pthread_barrier_t start_bar, end_bar;
static atomic_int pushes_done;
static uint32_t round_want; /* blocks pushed this round, set before the start barrier */

static void *producer(void *arg) {
  struct producer_s *p = arg;
  for (int r = 0; r < ROUNDS; r++) {
    pthread_barrier_wait(&start_bar);
    for (uint32_t i = 0; i < p->n; i++) {
      uint32_t after = 0;
      if (hak_remote_push_mt(m, p->list[i], &after)) p->was_empty++;
      /* Without a concurrent drain the count after a push is exact; a drain may subtract blocks
       * whose push has not yet added its count, so it is only settled afterwards. */
      if (r % 2 == 0 && (after < i + 1 || after > round_want)) p->bad_count_after++;
    }
    atomic_fetch_add(&pushes_done, 1);
    pthread_barrier_wait(&end_bar);
  }
  return NULL;
}

/* Walks a chain linked at HAK_LINK_OFF, marking each block; returns its length. */
static uint32_t walk_mark(void *head, const char *what, int round) {
  memset(mark, 0, sizeof mark);
  uint32_t n = 0;
  for (void *b = head; b != NULL; b = hak_link_get(b)) {
    long idx = t_block_index(m, b);
    U_CHECK(idx >= 0 && (uint32_t)idx < K, "round %d: %s holds %p, not a carved block", round,
            what, b);
    U_CHECK(!mark[idx], "round %d: block %ld twice on the %s", round, idx, what);
    mark[idx] = 1;
    U_CHECK(++n <= K, "round %d: %s longer than the run", round, what);
  }
  return n;
}

int main(void) {
  hak_tcache_t *tc = u_thread_cache();
  const int c = 1;
  m = hak_superslab_take_run(c);
  U_CHECK(m != NULL, "take_run failed");
  U_CHECK(hak_owner_acquire(m, tc), "could not own a fresh run");
  K = m->capacity < MAX_K ? m->capacity : MAX_K;
  U_CHECK(K >= 64, "run of %u blocks", K);
  for (uint32_t i = 0; i < K; i++) blk[i] = m->data + (size_t)i * m->stride;
  m->carved = K;

  pthread_barrier_init(&start_bar, NULL, NPROD + 1);
  pthread_barrier_init(&end_bar, NULL, NPROD + 1);
  pthread_t th[NPROD];
  for (int i = 0; i < NPROD; i++) u_start(&th[i], producer, &prod[i]);

  uint64_t rng = 42;
  uint64_t total_pushed = 0, total_drains = 0;
  for (int r = 0; r < ROUNDS; r++) {
    /* Every block is out (used == K); about 3/4 of them come back, split among producers. */
    m->freelist = NULL;
    m->used = K;
    static uint8_t chosen[MAX_K];
    uint32_t want = 0;
    for (int p = 0; p < NPROD; p++) prod[p].n = 0;
    for (uint32_t i = 0; i < K; i++) {
      chosen[i] = u_rand(&rng) % 4 != 0;
      if (!chosen[i]) continue;
      struct producer_s *p = &prod[u_rand(&rng) % NPROD];
      p->list[p->n++] = blk[i];
      want++;
    }
    round_want = want;
    uint64_t was_empty0 = 0;
    for (int p = 0; p < NPROD; p++) was_empty0 += prod[p].was_empty;
    atomic_store(&pushes_done, 0);
    bool concurrent = r % 2 == 1;
    uint64_t drains = 0, drained = 0;
    t_run_snapshot_t before = t_run_snap(m, NULL);
    hak_slab_t *notify_before = atomic_load(&tc->notify);

    pthread_barrier_wait(&start_bar);
    if (concurrent) {
      while (atomic_load(&pushes_done) < NPROD) {
        uint32_t n = hak_remote_drain(m);
        if (n) drains++, drained += n;
      }
    }
    pthread_barrier_wait(&end_bar);

    if (!concurrent) {
      /* Pushes alone: only the queue moved. */
      t_run_snapshot_t after = t_run_snap(m, NULL);
      U_CHECK(t_run_same(&before, &after), "round %d: a push touched the run beyond its queue", r);
      U_CHECK(atomic_load(&tc->notify) == notify_before, "round %d: a push notified", r);
      U_CHECK(atomic_load(&m->remote_count) == want, "round %d: remote_count %u, pushed %u", r,
              atomic_load(&m->remote_count), want);
      uint32_t q = walk_mark((void *)atomic_load(&m->remote_head), "remote queue", r);
      U_CHECK(q == want, "round %d: queue holds %u, pushed %u", r, q, want);
    }
    uint32_t n = hak_remote_drain(m);
    if (n) drains++, drained += n;
    U_CHECK(hak_remote_drain(m) == 0, "round %d: a second drain found blocks", r);

    U_CHECK(drained == want, "round %d: drained %llu, pushed %u", r, (unsigned long long)drained,
            want);
    U_CHECK(atomic_load(&m->remote_head) == 0, "round %d: queue not empty after drain", r);
    U_CHECK(atomic_load(&m->remote_count) == 0, "round %d: remote_count %u after drain", r,
            atomic_load(&m->remote_count));
    U_CHECK(m->used == K - want, "round %d: used %u, want %u", r, m->used, K - want);
    U_CHECK(hak_owner_of(m) == tc, "round %d: owner changed", r);
    uint32_t fl = walk_mark(m->freelist, "freelist", r);
    U_CHECK(fl == want, "round %d: freelist holds %u, pushed %u", r, fl, want);
    for (uint32_t i = 0; i < K; i++)
      U_CHECK(mark[i] == chosen[i], "round %d: block %u %s", r, i,
              chosen[i] ? "pushed but not drained" : "drained but never pushed");
    uint64_t was_empty = 0;
    for (int p = 0; p < NPROD; p++) was_empty += prod[p].was_empty;
    U_CHECK(was_empty - was_empty0 == drains,
            "round %d: %llu pushes found the queue empty, %llu drains found blocks", r,
            (unsigned long long)(was_empty - was_empty0), (unsigned long long)drains);
    if (!concurrent) U_CHECK(drains == (want > 0), "round %d: %llu drains", r,
                             (unsigned long long)drains);
    total_pushed += want;
    total_drains += drains;
  }
  for (int i = 0; i < NPROD; i++) u_join(th[i]);
  for (int p = 0; p < NPROD; p++)
    U_CHECK(prod[p].bad_count_after == 0, "producer %d: %u pushes reported a count out of range",
            p, prod[p].bad_count_after);

  /* Give the run back: nothing out, no owner. */
  m->freelist = NULL;
  m->used = 0;
  m->carved = 0;
  hak_owner_release(m, tc);
  U_CHECK(hak_owner_of(m) == NULL, "owner release");
  hak_superslab_release_run(m);
  pthread_barrier_destroy(&start_bar);
  pthread_barrier_destroy(&end_bar);
  printf("unit_remote_queue: %llu blocks pushed, %llu drains OK\n",
         (unsigned long long)total_pushed, (unsigned long long)total_drains);
  return 0;
}
