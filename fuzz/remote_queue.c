/* Fuzz harness of Box 2, the remote queue (src/tiny/remote_queue.c): the MPSC stack a thread
 * that does not own a run pushes its frees onto, and the owner drains.
 *
 * The harness thread takes a run of the input's class, owns it (an owner token of its own: a
 * drain needs no thread cache) and carves up to MAX_K of its blocks by hand, all of them out
 * (used == carved). Then, round after round, as the input says:
 *   - the owner takes some blocks back off the run's freelist (as a refill would: used grows);
 *   - the input picks a subset of the blocks that are out and splits it among 1..4 producer
 *     threads, which push them with hak_remote_push_mt(), each writing a payload word into the
 *     block first;
 *   - the owner drains with hak_remote_drain() after the producers are done, or concurrently
 *     (in a loop), or once after the first j producers are done and again at the end.
 * Checked after every round (and, in rounds where the owner only drains at the end, right after
 * the pushes):
 *   - pushes alone touch only the queue and its count: every other field of the run, its owner
 *     and the owner's notify stack are unchanged; the queue holds exactly the pushed blocks, each
 *     once, and remote_count equals their number; the count a push reports lies between its
 *     rank in its producer's list and the round's total;
 *   - after the final drain the queue is empty (head and count), a further drain finds nothing,
 *     the freelist holds exactly the blocks that were pushed or already on it, each once and
 *     with its payload intact, used == blocks out, the owner is unchanged;
 *   - the pushes that found the queue empty are exactly as many as the drains that found
 *     blocks: each block is drained exactly once.
 * The producer threads are a pool kept across inputs: they never allocate, so they hold no
 * thread cache and nothing of the allocator's; starting 4 threads per input would cost most of
 * the time under the sanitizers.
 *
 * Input:
 *   cls nprod rounds               class of the run, 1 + nprod % 4 producers, 1 + rounds % 8
 *                                  rounds; then per round:
 *   mode take                      mode % 3: 0 drain after the pushes, 1 drain concurrently,
 *                                  2 drain after j producers are done and at the end; bit 2:
 *                                  explicit subset; take: blocks the owner takes back first
 *   [mode bit 2 clear] seed32 density   a random subset: each block out is pushed with
 *                                  probability density / 256, by a random producer
 *   [mode bit 2 set] n (block producer)*n   an explicit subset (blocks not out are skipped)
 *   [mode 2] j                     drain once after 1 + j % nprod producers are done */
#include <sched.h>

#include "fuzz_worker.h"

#define NPROD 4
#define MAX_K 256
#define MAX_ROUNDS 8
#define PAYLOAD_OFF (HAK_LINK_OFF + 8) /* a word of the block the lists never touch */

enum { OUT = 0, FREE = 1 };

static hak_tcache_t owner_token; /* never a thread's cache: only compared by the owner CAS */
static hak_slab_t *m;
static uint32_t K;
static void *blk[MAX_K];
static uint8_t state[MAX_K]; /* shadow: OUT (in use, or pushed) or FREE (on the freelist) */
static uint64_t payload[MAX_K];

/* ---- the producer pool ----------------------------------------------------------------------- */

typedef struct producer_s {
  void *list[MAX_K];
  uint32_t n;
  uint64_t was_empty;   /* pushes that found the queue empty */
  uint32_t bad_after;   /* pushes whose reported count was out of range (exact rounds only) */
} producer_t;

static producer_t prod[NPROD];
/* The round's parameters, set before fw_pool_go() and read by the producers. */
static bool round_exact;    /* no drain during the pushes: counts are exact */
static uint32_t round_want; /* blocks pushed this round */

/* Producer id's part of a round: pushes its list. */
static void push_all(unsigned id) {
  producer_t *p = &prod[id];
  for (uint32_t i = 0; i < p->n; i++) {
    uint8_t *b = p->list[i];
    long k = (long)(((uintptr_t)b - (uintptr_t)m->data) / m->stride);
    memcpy(b + PAYLOAD_OFF, &payload[k], sizeof payload[k]);
    uint32_t after = 0;
    if (hak_remote_push_mt(m, b, &after)) p->was_empty++;
    if (round_exact && (after < i + 1 || after > round_want)) p->bad_after++;
  }
}

static fw_pool_t pool = FW_POOL_INIT(push_all, NPROD);

/* ---- the run --------------------------------------------------------------------------------- */

static long index_of(const void *b) {
  uintptr_t u = (uintptr_t)b, d = (uintptr_t)m->data;
  if (u < d || u >= d + (uintptr_t)K * m->stride || (u - d) % m->stride != 0) return -1;
  return (long)((u - d) / m->stride);
}

/* Walks a chain linked at HAK_LINK_OFF; every block on it must be one of ours, on it once, and
 * (want >= 0) in shadow state want. Returns its length. */
static uint32_t walk(void *head, const char *what, int want, bool check_payload) {
  static uint8_t seen[MAX_K];
  memset(seen, 0, sizeof seen);
  uint32_t n = 0;
  for (void *b = head; b != NULL; b = hak_link_get(b)) {
    long k = index_of(b);
    F_CHECK(k >= 0, "the %s holds %p, not one of the run's %u carved blocks", what, b, K);
    F_CHECK(!seen[k], "block %ld twice on the %s", k, what);
    F_CHECK(want < 0 || state[k] == want, "block %ld on the %s is %s in the model", k, what,
            state[k] == OUT ? "out" : "free");
    uint64_t v;
    memcpy(&v, (uint8_t *)b + PAYLOAD_OFF, sizeof v);
    F_CHECK(!check_payload || v == payload[k], "block %ld on the %s: payload changed", k, what);
    seen[k] = 1;
    n++;
  }
  return n;
}

static uint32_t count_state(int s) {
  uint32_t n = 0;
  for (uint32_t k = 0; k < K; k++) n += state[k] == s;
  return n;
}

static void setup_run(int cls) {
  m = hak_superslab_take_run(cls);
  F_CHECK(m != NULL, "take_run(%d) failed", cls);
  F_CHECK(hak_owner_acquire(m, &owner_token), "a fresh run of class %d has an owner", cls);
  K = m->capacity < MAX_K ? m->capacity : MAX_K;
  for (uint32_t k = 0; k < K; k++) {
    blk[k] = m->data + (size_t)k * m->stride;
    state[k] = OUT;
  }
  m->carved = K;
  m->used = K;
}

static void teardown_run(void) {
  F_CHECK(atomic_load(&m->remote_head) == 0, "queue not empty at the end");
  m->freelist = NULL;
  m->used = m->carved = 0;
  hak_owner_release(m, &owner_token);
  hak_superslab_release_run(m);
  m = NULL;
}

/* ---- one round ------------------------------------------------------------------------------- */

/* The owner takes n blocks back off the freelist, as a refill does. */
static void take_back(uint32_t n) {
  for (uint32_t i = 0; i < n && m->freelist != NULL; i++) {
    void *b = m->freelist;
    long k = index_of(b);
    F_CHECK(k >= 0 && state[k] == FREE, "freelist head %p is %s", b,
            k < 0 ? "not a block of the run" : "out in the model");
    m->freelist = hak_link_get(b);
    state[k] = OUT;
    m->used++;
  }
}

static void assign(uint32_t k, unsigned p, uint8_t *chosen, uint32_t *want) {
  if (state[k] != OUT || chosen[k]) return;
  chosen[k] = 1;
  prod[p].list[prod[p].n++] = blk[k];
  ++*want;
}

/* Splits a subset of the blocks that are out among the producers; returns its size. */
static uint32_t choose(f_in_t *in, unsigned nprod, bool explicit_set, uint8_t *chosen) {
  uint32_t want = 0;
  for (unsigned p = 0; p < NPROD; p++) prod[p].n = 0;
  memset(chosen, 0, MAX_K);
  if (explicit_set) {
    unsigned n = f_u8(in);
    for (unsigned i = 0; i < n; i++) {
      uint32_t k = f_below(in, K);
      assign(k, f_below(in, nprod), chosen, &want);
    }
    return want;
  }
  uint64_t x = f_u32(in) | 1;
  unsigned density = f_u8(in);
  for (uint32_t k = 0; k < K; k++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    if ((x & 0xFF) < density) assign(k, (unsigned)(x >> 8) % nprod, chosen, &want);
  }
  return want;
}

/* One drain; counts it in *drains when it found blocks. */
static uint32_t drain_counted(uint64_t *drains) {
  uint32_t n = hak_remote_drain(m);
  *drains += n > 0;
  return n;
}

/* The pushes alone: only the queue and its count moved. */
static void check_pushes_only(const t_run_snapshot_t *before, uint32_t want, int r) {
  t_run_snapshot_t after = t_run_snap(m, &owner_token);
  F_CHECK(t_run_same(before, &after), "round %d: a push touched the run beyond its "
          "queue (used %u -> %u, freelist %p -> %p, owner %p -> %p)", r, before->used,
          after.used, before->freelist, after.freelist, (void *)before->owner,
          (void *)after.owner);
  F_CHECK(atomic_load(&m->remote_count) == want, "round %d: remote_count %u, %u pushed", r,
          atomic_load(&m->remote_count), want);
  uint32_t q = walk((void *)atomic_load(&m->remote_head), "remote queue", OUT, true);
  F_CHECK(q == want, "round %d: the queue holds %u blocks, %u pushed", r, q, want);
}

static void check_after_round(const uint8_t *chosen, uint64_t drained, uint32_t want,
                              uint64_t drains, uint64_t was_empty, int r) {
  F_CHECK(drained == want, "round %d: drained %llu, pushed %u", r, (unsigned long long)drained,
          want);
  F_CHECK(atomic_load(&m->remote_head) == 0 && atomic_load(&m->remote_count) == 0,
          "round %d: queue not empty after the drain (head %#lx, count %u)", r,
          (unsigned long)atomic_load(&m->remote_head), atomic_load(&m->remote_count));
  F_CHECK(hak_remote_drain(m) == 0, "round %d: a second drain found blocks", r);
  F_CHECK(hak_owner_of(m) == &owner_token, "round %d: the owner changed", r);
  for (uint32_t k = 0; k < K; k++)
    if (chosen[k]) state[k] = FREE;
  uint32_t nfree = count_state(FREE);
  F_CHECK(m->used == K - nfree, "round %d: used %u, %u blocks out", r, m->used, K - nfree);
  uint32_t fl = walk(m->freelist, "freelist", FREE, true);
  F_CHECK(fl == nfree, "round %d: the freelist holds %u blocks, %u free", r, fl, nfree);
  F_CHECK(was_empty == drains, "round %d: %llu pushes found the queue empty, %llu drains found "
          "blocks", r, (unsigned long long)was_empty, (unsigned long long)drains);
  for (unsigned p = 0; p < NPROD; p++)
    F_CHECK(prod[p].bad_after == 0, "round %d: producer %u saw a count out of range", r, p);
}

static void round_once(f_in_t *in, unsigned nprod, int r) {
  unsigned mode = f_u8(in);
  take_back(f_u8(in));
  static uint8_t chosen[MAX_K];
  uint32_t want = choose(in, nprod, mode & 4, chosen);
  unsigned timing = mode % 3, early = timing == 2 ? 1 + f_below(in, nprod) : 0;
  uint64_t was_empty0 = 0, drains = 0, drained = 0;
  for (unsigned p = 0; p < NPROD; p++) was_empty0 += prod[p].was_empty;
  for (unsigned k = 0; k < K; k++)
    if (chosen[k]) payload[k] = (uint64_t)r << 32 ^ k ^ (uint64_t)(uintptr_t)blk[k];
  t_run_snapshot_t before = t_run_snap(m, &owner_token);
  round_exact = timing == 0;
  round_want = want;
  fw_pool_go(&pool, nprod);
  while (timing == 1 && atomic_load(&pool.done) < nprod) {
    uint32_t n = drain_counted(&drains);
    drained += n;
    if (n == 0) sched_yield();
  }
  if (timing == 2) {
    fw_pool_wait(&pool, early);
    drained += drain_counted(&drains);
  }
  fw_pool_wait(&pool, nprod);
  if (timing == 0) check_pushes_only(&before, want, r);
  drained += drain_counted(&drains);
  uint64_t was_empty = 0;
  for (unsigned p = 0; p < NPROD; p++) was_empty += prod[p].was_empty;
  check_after_round(chosen, drained, want, drains, was_empty - was_empty0, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fw_pool_start(&pool);
  f_in_t in = f_in(data, size);
  int cls = (int)f_below(&in, HAK_NUM_CLASSES);
  unsigned nprod = 1 + f_below(&in, NPROD);
  int rounds = 1 + (int)f_below(&in, MAX_ROUNDS);
  setup_run(cls);
  for (int r = 0; r < rounds && (r == 0 || f_more(&in)); r++) round_once(&in, nprod, r);
  teardown_run();
  return 0;
}
