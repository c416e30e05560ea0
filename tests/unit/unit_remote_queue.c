/* Box 2, remote queue (src/tiny/remote_queue.c): the run's one cross-thread word, in isolation.
 *
 * The test takes a fresh run, binds it to its own thread cache, carves K blocks by hand and
 * lets 4 producer threads free disjoint subsets with hak_rq_free_mt(), round after round, in
 * the three states a run's word can be in:
 *   - owned: every free pushes (PUSHED). In some rounds the owner drains only after the
 *     producers are done; then the frees must have touched nothing but the word, and its
 *     stack holds exactly the freed blocks. In the others it drains concurrently. Either way
 *     the drained blocks (the freelist) are exactly the freed ones, each once, and used drops
 *     by the number drained;
 *   - armed (hak_rq_arm on an empty word): exactly one free of the round takes the
 *     notification (DELIVER, its block not pushed), every other one pushes, NOTIFY is off
 *     after; with the forced mode every free is a DELIVER and the word does not move;
 *   - orphaned (hak_rq_orphan with every block out): producers free chains of random length;
 *     the count in the word goes down by each chain's length, exactly one free (the one that
 *     brings it to 0) gets LAST, and an adoption is refused after that; in other rounds the
 *     owner adopts (hak_rq_adopt) half-way, after which the count is gone and every free
 *     pushes. */
#include "unit.h"

#define NPROD 4
#define ROUNDS 60
#define MAX_K 2048

enum round_kind { R_OWNED, R_OWNED_CONCURRENT, R_ARMED, R_FORCED, R_ORPHAN, R_ADOPT, R_KINDS };

static hak_slab_t *m;
static uint32_t K;
static void *blk[MAX_K];
static uint8_t mark[MAX_K];

static struct producer_s {
  void *list[MAX_K];
  uint32_t chain[MAX_K]; /* lengths of the chains list is cut into (orphan rounds) */
  uint32_t n, nchains;
  uint32_t outcome[3]; /* per round */
  uint32_t delivered_blocks;
} prod[NPROD];

static pthread_barrier_t start_bar, end_bar;
static atomic_int frees_done;
static enum round_kind round_kind;

static void *producer(void *arg) {
  struct producer_s *p = arg;
  for (int r = 0; r < ROUNDS; r++) {
    pthread_barrier_wait(&start_bar);
    enum hak_rq_mode mode = round_kind == R_FORCED ? HAK_RQ_MODE_NOTIFY : HAK_RQ_MODE_NORMAL;
    memset(p->outcome, 0, sizeof p->outcome);
    p->delivered_blocks = 0;
    uint32_t at = 0;
    for (uint32_t c = 0; c < p->nchains; c++) {
      uint32_t len = p->chain[c];
      for (uint32_t i = 0; i + 1 < len; i++) hak_link_set(p->list[at + i], p->list[at + i + 1]);
      uintptr_t w;
      enum hak_rq_outcome o = hak_rq_free_mt(m, p->list[at], p->list[at + len - 1], len, mode, &w);
      p->outcome[o]++;
      if (o == HAK_RQ_DELIVER) p->delivered_blocks += len;
      at += len;
    }
    atomic_fetch_add(&frees_done, 1);
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
    T_CHECK(idx >= 0 && (uint32_t)idx < K, "round %d: %s holds %p, not a carved block", round, what,
            b);
    T_CHECK(!mark[idx], "round %d: block %ld twice on the %s", round, idx, what);
    mark[idx] = 1;
    T_CHECK(++n <= K, "round %d: %s longer than the run", round, what);
  }
  return n;
}

static uint32_t sum_outcome(enum hak_rq_outcome o) {
  uint32_t s = 0;
  for (int p = 0; p < NPROD; p++) s += prod[p].outcome[o];
  return s;
}

int main(void) {
  hak_tcache_t *tc = t_thread_cache();
  const int c = 1;
  m = hak_superslab_take_run(c);
  T_CHECK(m != NULL, "take_run failed");
  /* Owned but on none of tc's lists, so no refill of this thread takes its blocks. */
  atomic_store(&m->owner, tc);
  K = m->capacity < MAX_K ? m->capacity : MAX_K;
  T_CHECK(K >= 64, "run of %u blocks", K);
  for (uint32_t i = 0; i < K; i++) blk[i] = m->data + (size_t)i * m->stride;
  atomic_store(&m->carved, K);

  pthread_barrier_init(&start_bar, NULL, NPROD + 1);
  pthread_barrier_init(&end_bar, NULL, NPROD + 1);
  pthread_t th[NPROD];
  for (int i = 0; i < NPROD; i++)
    t_start(&th[i], producer, &prod[i]);

  uint64_t rng = 42;
  uint64_t total_freed = 0, total_drains = 0, kinds[R_KINDS] = {0};
  for (int r = 0; r < ROUNDS; r++) {
    enum round_kind kind = (enum round_kind)(r % R_KINDS);
    round_kind = kind;
    kinds[kind]++;
    /* Every block is out (used == K); about 3/4 of them come back, split among producers
     * (orphan rounds: all of them, so that the last one claims the run). */
    m->freelist = NULL;
    m->used = K;
    bool orphan = kind == R_ORPHAN || kind == R_ADOPT;
    static uint8_t chosen[MAX_K];
    uint32_t want = 0;
    for (int p = 0; p < NPROD; p++) prod[p].n = prod[p].nchains = 0;
    for (uint32_t i = 0; i < K; i++) {
      chosen[i] = orphan || t_xorshift(&rng) % 4 != 0;
      if (!chosen[i]) continue;
      struct producer_s *p = &prod[t_xorshift(&rng) % NPROD];
      p->list[p->n++] = blk[i];
      want++;
    }
    for (int pi = 0; pi < NPROD; pi++) { /* chains of 1..8 in orphan rounds, else single */
      struct producer_s *p = &prod[pi];
      for (uint32_t at = 0; at < p->n;) {
        uint32_t len = orphan ? 1 + (uint32_t)(t_xorshift(&rng) % 8) : 1;
        if (len > p->n - at) len = p->n - at;
        p->chain[p->nchains++] = len;
        at += len;
      }
    }
    if (kind == R_ARMED)
      T_CHECK(hak_rq_arm(m), "round %d: arming an empty word failed", r);
    if (orphan)
      T_CHECK(hak_rq_orphan(m, K, false), "round %d: orphaning an empty word", r);
    atomic_store(&frees_done, 0);
    bool concurrent = kind == R_OWNED_CONCURRENT;
    uint64_t drains = 0, drained = 0;
    bool adopted = false;
    t_run_snapshot_t before = t_run_snap(m, tc);

    pthread_barrier_wait(&start_bar);
    if (concurrent) {
      while (atomic_load(&frees_done) < NPROD) {
        uint32_t n = hak_remote_drain(m);
        if (n) drains++, drained += n;
      }
    }
    if (kind == R_ADOPT) {
      /* Adopt while the frees go on, unless the last free got there first. */
      while (!adopted && hak_rq_count(atomic_load(&m->remote)) > K / 2) sched_yield();
      adopted = hak_rq_adopt(m);
    }
    pthread_barrier_wait(&end_bar);

    uintptr_t w = atomic_load(&m->remote);
    uint32_t pushed = want, delivered = 0;
    for (int p = 0; p < NPROD; p++) delivered += prod[p].delivered_blocks;
    switch (kind) {
    case R_OWNED:
    case R_OWNED_CONCURRENT:
      T_CHECK(sum_outcome(HAK_RQ_PUSHED) == want, "round %d: %u of %u frees pushed", r,
              sum_outcome(HAK_RQ_PUSHED), want);
      break;
    case R_ARMED:
      T_CHECK(want == 0 || sum_outcome(HAK_RQ_DELIVER) == 1,
              "round %d: %u frees took the notification of an armed run", r,
              sum_outcome(HAK_RQ_DELIVER));
      T_CHECK(!(w & HAK_RQ_NOTIFY) || want == 0, "round %d: still armed after the frees", r);
      pushed = want - delivered;
      break;
    case R_FORCED:
      T_CHECK(sum_outcome(HAK_RQ_DELIVER) == want && w == 0,
              "round %d: forced notify: %u of %u delivered, word %#lx", r,
              sum_outcome(HAK_RQ_DELIVER), want, (unsigned long)w);
      pushed = 0;
      break;
    case R_ORPHAN:
    case R_ADOPT:
      T_CHECK(sum_outcome(HAK_RQ_DELIVER) == 0, "round %d: an orphan notified", r);
      if (!adopted) {
        T_CHECK(sum_outcome(HAK_RQ_LAST) == 1, "round %d: %u frees claimed the orphan", r,
                sum_outcome(HAK_RQ_LAST));
        T_CHECK((w & HAK_RQ_FLAGS) == HAK_RQ_ORPHAN && hak_rq_count(w) == 0,
                "round %d: claimed word %#lx", r, (unsigned long)w);
        T_CHECK(!hak_rq_adopt(m), "round %d: a claimed orphan was adopted", r);
        atomic_fetch_and(&m->remote, HAK_RQ_PTR_MASK); /* as the claimant takes it over */
      } else {
        T_CHECK(sum_outcome(HAK_RQ_LAST) == 0, "round %d: an adopted run was claimed", r);
        T_CHECK((w & ~HAK_RQ_PTR_MASK) == 0, "round %d: adopted word %#lx keeps flags or count", r,
                (unsigned long)w);
      }
      break;
    default:
      break;
    }
    if (!concurrent && kind != R_ADOPT) {
      /* Frees alone: only the word moved. */
      t_run_snapshot_t after = t_run_snap(m, tc);
      T_CHECK(t_run_same(&before, &after), "round %d: a free touched the run beyond its word", r);
      uint32_t q = walk_mark(hak_rq_head(atomic_load(&m->remote)), "remote stack", r);
      T_CHECK(q == pushed, "round %d: stack holds %u, pushed %u", r, q, pushed);
    }
    uint32_t n = hak_remote_drain(m);
    if (n) drains++, drained += n;
    T_CHECK(hak_remote_drain(m) == 0, "round %d: a second drain found blocks", r);
    T_CHECK(atomic_load(&m->remote) == 0, "round %d: word %#lx after drain", r,
            (unsigned long)atomic_load(&m->remote));

    T_CHECK(drained == pushed, "round %d: drained %llu, pushed %u", r, (unsigned long long)drained,
            pushed);
    T_CHECK(m->used == K - pushed, "round %d: used %u, want %u", r, m->used, K - pushed);
    T_CHECK(hak_owner_of(m) == tc, "round %d: owner changed", r);
    uint32_t fl = walk_mark(m->freelist, "freelist", r);
    T_CHECK(fl == pushed, "round %d: freelist holds %u, pushed %u", r, fl, pushed);
    if (kind != R_ARMED && kind != R_FORCED) {
      for (uint32_t i = 0; i < K; i++)
        T_CHECK(mark[i] == chosen[i], "round %d: block %u %s", r, i,
                chosen[i] ? "freed but not drained" : "drained but never freed");
    }
    if (kind == R_OWNED)
      T_CHECK(drains == (want > 0), "round %d: %llu drains", r, (unsigned long long)drains);
    total_freed += want;
    total_drains += drains;
  }
  for (int i = 0; i < NPROD; i++)
    t_join(th[i]);

  /* Give the run back: nothing out. */
  m->freelist = NULL;
  m->used = 0;
  atomic_store(&m->carved, 0);
  atomic_store(&m->owner, NULL);
  hak_superslab_release_run(m);
  pthread_barrier_destroy(&start_bar);
  pthread_barrier_destroy(&end_bar);
  printf("unit_remote_queue: %llu blocks freed, %llu drains, %llu orphan/%llu adopt rounds OK\n",
         (unsigned long long)total_freed, (unsigned long long)total_drains,
         (unsigned long long)kinds[R_ORPHAN], (unsigned long long)kinds[R_ADOPT]);
  return 0;
}
