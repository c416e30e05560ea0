/* Fuzz harness of Box 2, the remote queue (src/tiny/remote_queue.c): the one cross-thread word of
 * a run (m->remote, format in remote_queue.h) into which threads that do not own the run free
 * chains of blocks, and which the owner, or the thread that claimed an orphan, drains.
 *
 * The harness thread takes a run of the input's class, binds it to a cache of its own (a static
 * dummy: the owner word only compares pointers, and a drain needs no live cache) and carves up to
 * MAX_K of its blocks by hand, all of them out (used == carved). Then, round after round, as the
 * input says:
 *   - the owner takes some blocks back off the run's freelist (as a refill would: used grows);
 *   - the run stays owned, or is armed (hak_rq_arm: 0 -> NOTIFY, as for a full run), or is
 *     orphaned (hak_rq_orphan: ORPHAN with the count of its blocks out; the owner word is
 *     Box 3's and Box 2 never reads it, so it stays);
 *   - the input picks a subset of the blocks that are out and splits it among 1..4 producer
 *     threads, which free them with hak_rq_free_mt() in chains of 1..4 blocks they link
 *     themselves, each block with a payload word written first, in the normal or the forced
 *     notify mode. A chain whose free is delivered goes to the owner (as onto its notify stack),
 *     or, in odd rounds, is freed again in push mode (as adopt.c does when there is no cache to
 *     deliver to);
 *   - an owned run is drained with hak_remote_drain() after the producers are done, or
 *     concurrently (in a loop), or once after the first j producers are done and again at the
 *     end; an orphan is adopted with hak_rq_adopt() at those times instead (the adopter then
 *     drains as the owner); an orphan whose last block came back is drained by the harness for
 *     the producer whose free claimed it.
 * Checked by the producers, at each free:
 *   - the outcome: a free into an owned word pushes, or delivers (the word armed, or forced
 *     notify mode), never LAST; a free into an orphan pushes, LAST exactly when its CAS took the
 *     count to 0, never delivers; a free in push mode pushes;
 *   - the word the CAS installed: a push put the chain's first block at the head of the stack
 *     and left no NOTIFY; an orphan's count went down by at least the chain's length since the
 *     producer's last look (it only goes down), an owned word has no count; a delivery left no
 *     NOTIFY; no word is ever PUBLISHED (nothing here publishes).
 * Checked by the harness thread after every round, and, in rounds where nothing drains or adopts
 * during the frees, right after them:
 *   - the frees alone touch nothing of the run but its word: every other field of the run, its
 *     owner and the owner's notify stack are unchanged (t_run_same); the word's flags are the
 *     round's (ORPHAN for an orphan; NOTIFY while no free took it), an orphan's count is its
 *     blocks still out, an owned word has none; the stack holds exactly the pushed blocks, each
 *     once, each chain in one piece and in its order, payloads intact; exactly one chain found
 *     the stack empty (when any was pushed), and its last block is the stack's bottom; arming or
 *     orphaning a word that is not 0 leaves it as it is, and fails (arming succeeds only on a
 *     word that is just NOTIFY: still armed);
 *   - outcomes: at most one delivery per armed round, exactly one when nothing drained during
 *     the frees and a chain was freed, none in an unarmed round, every chain in forced notify
 *     mode; at most one LAST per orphan round, none once the orphan was adopted, exactly one of
 *     the two when every block out was freed; adopting a claimed orphan fails and leaves its
 *     word as it is;
 *   - each block is drained exactly once: the drains took exactly the pushed blocks, none of
 *     them twice, and right after a drain none of what it took heads the stack; each drain
 *     lowered used by its count; each non-empty drain took a whole stack (its bottom, which the
 *     drain leaves n-th on the freelist, is the last block of a pushed chain, a different one
 *     for each drain); after the final drain the word is 0 (NOTIFY disarmed, no stack, no
 *     count) and a further drain finds nothing; a claimed orphan's drain leaves used at 0;
 *   - the delivered chains reach the owner intact (the box does not touch a delivered chain's
 *     links) and still counted in used; once the owner has taken them back, the freelist holds
 *     exactly the free blocks, each once and with its payload intact, used == blocks out, and
 *     the owner is unchanged.
 * The producer threads are a pool kept across inputs: they never allocate, so they hold no
 * thread cache and nothing of the allocator's; starting 4 threads per input would cost most of
 * the time under the sanitizers.
 *
 * Input:
 *   cls nprod rounds               class of the run, 1 + nprod % 4 producers, 1 + rounds % 8
 *                                  rounds; then per round:
 *   mode take                      mode % 3: 0 drain (adopt) after the frees, 1 concurrently,
 *                                  2 after j producers are done and at the end; bit 2: explicit
 *                                  subset; bit 3: arm the run; bit 4: orphan it instead (when
 *                                  blocks are out); bits 5-6: chains of 1 + (mode >> 5 & 3)
 *                                  blocks; bit 7: forced notify mode; take: blocks the owner
 *                                  takes back first
 *   [mode bit 2 clear] seed32 density   a random subset: each block out is freed with
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
enum { MODE_EXPLICIT = 4, MODE_ARM = 8, MODE_ORPHAN = 16, MODE_CHAIN_SHIFT = 5, MODE_FORCE = 128 };

static hak_tcache_t owner_cache; /* the owner's identity; never a thread's cache */
static hak_slab_t *m;
static uint32_t K;
static void *blk[MAX_K];
static uint8_t state[MAX_K]; /* shadow: OUT (in use, freed or delivered) or FREE (freelist) */
static uint64_t payload[MAX_K];

/* The round's chains, set by the harness thread before the round. */
static int chain_next[MAX_K];      /* the next block of k's chain, or -1: k is its last */
static uint8_t chain_first[MAX_K]; /* k begins a chain */
/* Written by block k's producer before the round ends: k's chain went into the stack. */
static uint8_t pushed[MAX_K];
static uint8_t drained[MAX_K]; /* a drain of this round took block k */

/* ---- the producer pool ----------------------------------------------------------------------- */

typedef struct chain_s {
  uint32_t first, n; /* block index of its first block; blocks */
} chain_t;

typedef struct producer_s {
  uint32_t list[MAX_K]; /* block indices, cut into chains of rd.chain */
  uint32_t n;
  chain_t dlv[MAX_K];    /* chains delivered to the owner (not freed again) */
  uint32_t ndlv;
  uint32_t chains, pushed; /* chains freed; blocks pushed (pushed again included) */
  uint32_t delivered, lasts; /* outcomes DELIVER and LAST */
  uint32_t found_empty;  /* exact rounds: chains pushed onto an empty stack */
  int bottom;            /* ... the last block of the latest of them */
} producer_t;

static producer_t prod[NPROD];

/* The round's parameters, set before fw_pool_go() and read by the producers. */
static struct {
  bool exact;      /* nothing drains or adopts during the frees */
  bool orphan;     /* the run is orphaned for the round */
  bool push_again; /* a delivered chain is freed again in push mode */
  uint32_t chain;  /* blocks per chain */
  uint32_t out0;   /* blocks out when the round began */
  enum hak_rq_mode mode;
} rd;

/* Checks the word a push installed; *count: the orphan count the producer saw last. */
static void check_pushed_word(uintptr_t w, void *first, uint32_t n, uint32_t *count) {
  T_INVARIANT(hak_rq_head(w) == first, "a push installed head %p, not its chain's first block %p",
              hak_rq_head(w), first);
  T_INVARIANT(!(w & (HAK_RQ_NOTIFY | HAK_RQ_PUBLISHED)), "a push installed flags %#lx",
              (unsigned long)(w & HAK_RQ_FLAGS));
  if (!(w & HAK_RQ_ORPHAN)) {
    T_INVARIANT(hak_rq_count(w) == 0, "a push installed count %u on an owned word",
                hak_rq_count(w));
    return;
  }
  T_INVARIANT(rd.orphan, "a push into an owned run installed ORPHAN (word %#lx)", (unsigned long)w);
  T_INVARIANT(hak_rq_count(w) + n <= *count,
              "an orphan's count went from %u to %u over a chain of %u", *count, hak_rq_count(w),
              n);
  *count = hak_rq_count(w);
}

/* Frees the chain ks[0..n-1]; each block's payload first, then the links between them. */
static void free_chain(producer_t *p, const uint32_t *ks, uint32_t n, uint32_t *count) {
  for (uint32_t i = 0; i < n; i++) {
    memcpy((uint8_t *)blk[ks[i]] + PAYLOAD_OFF, &payload[ks[i]], sizeof payload[0]);
    if (i + 1 < n) hak_link_set(blk[ks[i]], blk[ks[i + 1]]);
    pushed[ks[i]] = 1; /* before the CAS: a drain may take the chain right after it */
  }
  void *first = blk[ks[0]], *last = blk[ks[n - 1]];
  uintptr_t w = 0;
  p->chains++;
  enum hak_rq_outcome o = hak_rq_free_mt(m, first, last, n, rd.mode, &w);
  if (o == HAK_RQ_DELIVER) {
    T_INVARIANT(!(w & (HAK_RQ_ORPHAN | HAK_RQ_NOTIFY)), "a delivery left word %#lx",
                (unsigned long)w);
    T_INVARIANT(!rd.orphan || rd.mode == HAK_RQ_MODE_NOTIFY,
                "a free in the normal mode delivered into a run orphaned for the round");
    p->delivered++;
    if (!rd.push_again) {
      for (uint32_t i = 0; i < n; i++) pushed[ks[i]] = 0;
      p->dlv[p->ndlv++] = (chain_t){ks[0], n};
      return;
    }
    o = hak_rq_free_mt(m, first, last, n, HAK_RQ_MODE_PUSH, &w);
    T_INVARIANT(o == HAK_RQ_PUSHED, "a free in push mode into an owned run: outcome %d", (int)o);
  }
  check_pushed_word(w, first, n, count);
  bool last_out = (w & HAK_RQ_ORPHAN) && hak_rq_count(w) == 0;
  T_INVARIANT((o == HAK_RQ_LAST) == last_out, "outcome %d, word %#lx after the CAS", (int)o,
              (unsigned long)w);
  p->lasts += o == HAK_RQ_LAST;
  p->pushed += n;
  if (rd.exact && hak_link_decode(last) == NULL) { /* nobody drains: the link stays */
    p->found_empty++;
    p->bottom = (int)ks[n - 1];
  }
}

/* Producer id's part of a round: frees its list, chain by chain. */
static void free_all(unsigned id) {
  producer_t *p = &prod[id];
  uint32_t count = rd.out0;
  for (uint32_t i = 0; i < p->n; i += rd.chain) {
    uint32_t n = p->n - i < rd.chain ? p->n - i : rd.chain;
    free_chain(p, &p->list[i], n, &count);
  }
}

static fw_pool_t pool = FW_POOL_INIT(free_all, NPROD);

/* ---- the run --------------------------------------------------------------------------------- */

static uintptr_t word(void) { return atomic_load_explicit(&m->remote, memory_order_acquire); }

static long index_of(const void *b) {
  uintptr_t u = (uintptr_t)b, d = (uintptr_t)m->data;
  if (u < d || u >= d + (uintptr_t)K * m->stride || (u - d) % m->stride != 0) return -1;
  return (long)((u - d) / m->stride);
}

static void check_payload(long k, const char *what) {
  uint64_t v;
  memcpy(&v, (uint8_t *)blk[k] + PAYLOAD_OFF, sizeof v);
  T_INVARIANT(v == payload[k], "block %ld on the %s: payload changed", k, what);
}

/* Walks the freelist: every block on it must be one of ours, on it once, and FREE in the model.
 * Returns its length. */
static uint32_t walk_freelist(void) {
  static uint8_t seen[MAX_K];
  memset(seen, 0, sizeof seen);
  uint32_t n = 0;
  for (void *b = m->freelist; b != NULL; b = hak_link_get(b)) {
    long k = index_of(b);
    T_INVARIANT(k >= 0, "the freelist holds %p, not one of the run's %u carved blocks", b, K);
    T_INVARIANT(!seen[k], "block %ld twice on the freelist", k);
    T_INVARIANT(state[k] == FREE, "block %ld on the freelist is out in the model", k);
    check_payload(k, "freelist");
    seen[k] = 1;
    n++;
  }
  return n;
}

/* Walks the stack of word w: pushed blocks of this round, each once, chains whole and in order.
 * Returns its length; *bottom: its last block, or -1. */
static uint32_t walk_stack(uintptr_t w, long *bottom) {
  static uint8_t seen[MAX_K];
  memset(seen, 0, sizeof seen);
  uint32_t n = 0;
  int expect = -2; /* the block the previous one's chain goes on with; -2: a chain begins */
  *bottom = -1;
  for (void *b = hak_rq_head(w); b != NULL; b = hak_link_get(b)) {
    long k = index_of(b);
    T_INVARIANT(k >= 0, "the stack holds %p, not one of the run's %u carved blocks", b, K);
    T_INVARIANT(!seen[k], "block %ld twice on the stack", k);
    T_INVARIANT(state[k] == OUT && pushed[k], "block %ld on the stack was not pushed", k);
    T_INVARIANT(expect == -2 ? chain_first[k] != 0 : k == expect,
                "block %ld on the stack: %s %d expected (chains in one piece)", k,
                expect == -2 ? "a chain's first block, not a block inside chain" : "block", expect);
    check_payload(k, "stack");
    expect = chain_next[k] < 0 ? -2 : chain_next[k];
    seen[k] = 1;
    *bottom = k;
    n++;
  }
  T_INVARIANT(expect == -2, "the stack ends inside a chain, before block %d", expect);
  return n;
}

static uint32_t count_state(int s) {
  uint32_t n = 0;
  for (uint32_t k = 0; k < K; k++) n += state[k] == s;
  return n;
}

static void setup_run(int cls) {
  hak_slab_t *fresh = hak_superslab_take_run(cls);
  T_INVARIANT(fresh != NULL, "take_run(%d) failed", cls);
  m = hak_run_bind(&owner_cache, fresh, cls);
  T_INVARIANT(m == fresh && hak_owner_of(m) == &owner_cache && m->list == HAK_LIST_PARTIAL,
              "bind of a fresh run of class %d", cls);
  T_INVARIANT(word() == 0, "a fresh run's word is %#lx", (unsigned long)word());
  K = m->capacity < MAX_K ? m->capacity : MAX_K;
  for (uint32_t k = 0; k < K; k++) {
    blk[k] = m->data + (size_t)k * m->stride;
    state[k] = OUT;
  }
  atomic_store(&m->carved, K);
  m->used = K;
}

static void teardown_run(void) {
  T_INVARIANT(word() == 0, "word %#lx at the end", (unsigned long)word());
  m->freelist = NULL;
  m->used = 0;
  atomic_store(&m->carved, 0);
  hak_run_release(&owner_cache, m);
  m = NULL;
}

/* ---- one round ------------------------------------------------------------------------------- */

/* The owner takes n blocks back off the freelist, as a refill does. */
static void take_back(uint32_t n) {
  for (uint32_t i = 0; i < n && m->freelist != NULL; i++) {
    void *b = m->freelist;
    long k = index_of(b);
    T_INVARIANT(k >= 0 && state[k] == FREE, "freelist head %p is %s", b,
                k < 0 ? "not a block of the run" : "out in the model");
    m->freelist = hak_link_get(b);
    state[k] = OUT;
    m->used++;
  }
}

static void assign(uint32_t k, unsigned p, uint8_t *chosen, uint32_t *want) {
  if (state[k] != OUT || chosen[k]) return;
  chosen[k] = 1;
  prod[p].list[prod[p].n++] = k;
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

/* Cuts every producer's list into chains; returns their number. Resets the producers. */
static uint32_t make_chains(int r, const uint8_t *chosen) {
  uint32_t chains = 0;
  for (uint32_t k = 0; k < K; k++) {
    pushed[k] = drained[k] = 0;
    if (chosen[k]) payload[k] = (uint64_t)r << 32 ^ k ^ (uint64_t)(uintptr_t)blk[k];
  }
  for (unsigned p = 0; p < NPROD; p++) {
    producer_t *q = &prod[p];
    for (uint32_t i = 0; i < q->n; i++) {
      bool last = (i + 1) % rd.chain == 0 || i + 1 == q->n;
      chain_next[q->list[i]] = last ? -1 : (int)q->list[i + 1];
      chain_first[q->list[i]] = i % rd.chain == 0;
      chains += i % rd.chain == 0;
    }
    q->ndlv = q->chains = q->pushed = q->delivered = q->lasts = q->found_empty = 0;
    q->bottom = -1;
  }
  return chains;
}

/* The harness's side of a round: what drained and adopted. */
typedef struct side_s {
  bool owned;          /* the run has an owner: never orphaned, or adopted */
  bool adopted;        /* adopted while the producers ran */
  uint64_t drains;     /* drains that found blocks */
  uint64_t drained;    /* blocks they took */
  long bottom[MAX_K + 1]; /* the bottom block of each drain that found blocks */
} side_t;

/* One drain by the owner (or claimant): used goes down by what it took, which is now at the
 * head of the freelist as the stack was (spliced: the top first, its bottom last); none of it
 * was drained before, and none of it is still on the stack (which a concurrent free may have
 * begun again). */
static uint32_t drain(side_t *sd) {
  uint32_t used0 = m->used;
  uint32_t n = hak_remote_drain(m);
  T_INVARIANT(m->used + n == used0, "a drain of %u blocks took used from %u to %u", n, used0,
              m->used);
  if (n == 0) return 0;
  T_INVARIANT(sd->drains < MAX_K, "more drains that found blocks than blocks");
  sd->drained += n;
  void *b = m->freelist;
  long k = -1;
  for (uint32_t i = 0; i < n; i++, b = hak_link_get(b)) {
    k = index_of(b);
    T_INVARIANT(k >= 0 && pushed[k] && !drained[k], "drained block %p (%ld): %s", b, k,
                k < 0       ? "not a block of the run"
                : pushed[k] ? "drained twice"
                            : "never pushed");
    drained[k] = 1;
  }
  sd->bottom[sd->drains++] = k;
  long top = index_of(hak_rq_head(word()));
  T_INVARIANT(top < 0 || !drained[top], "block %ld drained, yet still at the head of the stack",
              top);
  return n;
}

/* hak_rq_arm() and hak_rq_orphan() change only a word that is 0 (arming an armed word says
 * so, and leaves it). */
static void check_cas_from_zero_only(int r) {
  uintptr_t w = word();
  if (w == 0) return;
  T_INVARIANT(hak_rq_arm(m) == (w == HAK_RQ_NOTIFY) && word() == w,
              "round %d: arming word %#lx: wrong answer, or the word changed", r, (unsigned long)w);
  T_INVARIANT(!hak_rq_orphan(m, 1, false) && word() == w, "round %d: orphaning word %#lx succeeded",
              r, (unsigned long)w);
}

typedef struct sums_s {
  uint32_t chains, pushed, delivered, lasts, found_empty;
} sums_t;

static sums_t sum_producers(void) {
  sums_t s = {0, 0, 0, 0, 0};
  for (unsigned p = 0; p < NPROD; p++) {
    s.chains += prod[p].chains;
    s.pushed += prod[p].pushed;
    s.delivered += prod[p].delivered;
    s.lasts += prod[p].lasts;
    s.found_empty += prod[p].found_empty;
  }
  return s;
}

/* The frees alone (nothing drained or adopted during them): only the word moved. */
static void check_frees_only(const t_run_snapshot_t *before, bool armed, const sums_t *s, int r) {
  t_run_snapshot_t after = t_run_snap(m, &owner_cache);
  T_INVARIANT(t_run_same(before, &after),
              "round %d: a free touched the run beyond its word (used "
              "%u -> %u, freelist %p -> %p, owner %p -> %p)",
              r, before->used, after.used, before->freelist, after.freelist, (void *)before->owner,
              (void *)after.owner);
  uintptr_t w = word();
  uintptr_t flags = rd.orphan ? HAK_RQ_ORPHAN : armed && s->delivered == 0 ? HAK_RQ_NOTIFY : 0;
  uint32_t count = rd.orphan ? rd.out0 - s->pushed : 0;
  T_INVARIANT((w & HAK_RQ_FLAGS) == flags && hak_rq_count(w) == count,
              "round %d: word %#lx, flags %#lx and count %u expected", r, (unsigned long)w,
              (unsigned long)flags, count);
  long bottom;
  uint32_t q = walk_stack(w, &bottom);
  T_INVARIANT(q == s->pushed, "round %d: the stack holds %u blocks, %u pushed", r, q, s->pushed);
  T_INVARIANT(s->found_empty == (q > 0),
              "round %d: %u chains found the stack empty, %u blocks on it", r, s->found_empty, q);
  for (unsigned p = 0; p < NPROD; p++)
    T_INVARIANT(
        prod[p].found_empty == 0 || prod[p].bottom == bottom,
        "round %d: producer %u's chain ending in block %d found the stack empty, the bottom "
        "is block %ld",
        r, p, prod[p].bottom, bottom);
  check_cas_from_zero_only(r);
}

/* Outcomes: deliveries and claims, against the round's kind. */
static void check_outcomes(const sums_t *s, bool armed, uint32_t want, const side_t *sd, int r) {
  if (rd.mode == HAK_RQ_MODE_NOTIFY && !rd.orphan)
    T_INVARIANT(s->delivered == s->chains, "round %d: forced notify, %u of %u chains delivered", r,
                s->delivered, s->chains);
  else if (armed)
    T_INVARIANT(s->delivered <= 1 && (!rd.exact || s->delivered == (s->chains > 0)),
                "round %d: armed, %u of %u chains delivered", r, s->delivered, s->chains);
  else if (!sd->adopted || rd.mode != HAK_RQ_MODE_NOTIFY)
    T_INVARIANT(s->delivered == 0, "round %d: %u chains delivered, the run %s", r, s->delivered,
                rd.orphan ? "orphaned" : "not armed");
  if (!rd.orphan) {
    T_INVARIANT(s->lasts == 0, "round %d: %u frees into an owned run were LAST", r, s->lasts);
    return;
  }
  T_INVARIANT(s->lasts <= 1 && !(sd->adopted && s->lasts), "round %d: %u frees LAST, the orphan %s",
              r, s->lasts, sd->adopted ? "adopted" : "not adopted");
  if (want == rd.out0)
    T_INVARIANT(sd->adopted + s->lasts == 1, "round %d: every block freed, %u LAST, %sadopted", r,
                s->lasts, sd->adopted ? "" : "not ");
  else
    T_INVARIANT(s->lasts == 0, "round %d: %u of %u blocks freed, yet a free was LAST", r, want,
                rd.out0);
}

/* An orphan nobody adopted during the frees: its claimant drains it, or the harness adopts. */
static void settle_orphan(const sums_t *s, side_t *sd, int r) {
  uintptr_t w = word();
  if (s->lasts == 1) {
    T_INVARIANT(!hak_rq_adopt(m) && word() == w, "round %d: a claimed orphan (word %#lx) adopted",
                r, (unsigned long)w);
    drain(sd);
    T_INVARIANT(m->used == 0, "round %d: the claimant's drain left used %u", r, m->used);
  } else {
    T_INVARIANT(hak_rq_adopt(m), "round %d: an orphan with %u blocks out (word %#lx) not adopted",
                r, hak_rq_count(w), (unsigned long)w);
    T_INVARIANT(word() == (w & HAK_RQ_PTR_MASK), "round %d: adoption made word %#lx of %#lx", r,
                (unsigned long)word(), (unsigned long)w);
  }
  sd->owned = true;
}

static void check_drains(const uint8_t *chosen, const sums_t *s, const side_t *sd, int r) {
  T_INVARIANT(sd->drained == s->pushed, "round %d: drained %llu, pushed %u", r,
              (unsigned long long)sd->drained, s->pushed);
  T_INVARIANT(word() == 0, "round %d: word %#lx after the drain", r, (unsigned long)word());
  T_INVARIANT(hak_remote_drain(m) == 0, "round %d: a second drain found blocks", r);
  for (uint64_t i = 0; i < sd->drains; i++) {
    long k = sd->bottom[i];
    T_INVARIANT(k >= 0 && chosen[k] && pushed[k] && chain_next[k] < 0,
                "round %d: drain %llu ended in block %ld, not the last block of a pushed chain", r,
                (unsigned long long)i, k);
    for (uint64_t j = 0; j < i; j++)
      T_INVARIANT(sd->bottom[j] != k, "round %d: drains %llu and %llu both ended in block %ld", r,
                  (unsigned long long)j, (unsigned long long)i, k);
  }
  for (uint32_t k = 0; k < K; k++) {
    T_INVARIANT(drained[k] == (chosen[k] && pushed[k]), "round %d: block %u %s", r, k,
                drained[k] ? "drained, never pushed" : "pushed, never drained");
    if (drained[k]) state[k] = FREE;
  }
}

/* The owner takes the delivered chains back, as hak_slab_give_back() does. */
static void give_back_delivered(int r) {
  for (unsigned p = 0; p < NPROD; p++)
    for (uint32_t c = 0; c < prod[p].ndlv; c++) {
      uint32_t k = prod[p].dlv[c].first;
      for (uint32_t i = 0; i < prod[p].dlv[c].n; i++) {
        T_INVARIANT(state[k] == OUT && !pushed[k] && (i == 0) == (chain_first[k] != 0),
                    "round %d: delivered block %u: state %d, pushed %d", r, k, state[k], pushed[k]);
        check_payload(k, "delivered chain");
        int next = chain_next[k];
        T_INVARIANT(next < 0 || hak_link_decode(blk[k]) == blk[next],
                    "round %d: the link inside a delivered chain changed at block %u", r, k);
        hak_link_set(blk[k], m->freelist);
        m->freelist = blk[k];
        m->used--;
        state[k] = FREE;
        k = (uint32_t)next;
      }
    }
}

static void check_after_round(int r) {
  T_INVARIANT(hak_owner_of(m) == &owner_cache && m->list == HAK_LIST_PARTIAL,
              "round %d: owner %p list %d", r, (void *)hak_owner_of(m), m->list);
  uint32_t nfree = count_state(FREE);
  T_INVARIANT(m->used == K - nfree, "round %d: used %u, %u blocks out", r, m->used, K - nfree);
  uint32_t fl = walk_freelist();
  T_INVARIANT(fl == nfree, "round %d: the freelist holds %u blocks, %u free", r, fl, nfree);
}

static void round_once(f_in_t *in, unsigned nprod, int r) {
  unsigned mode = f_u8(in);
  take_back(f_u8(in));
  static uint8_t chosen[MAX_K];
  uint32_t want = choose(in, nprod, mode & MODE_EXPLICIT, chosen);
  unsigned timing = mode % 3, early = timing == 2 ? 1 + f_below(in, nprod) : 0;
  uint32_t out0 = count_state(OUT);
  T_INVARIANT(m->used == out0, "round %d: used %u, %u blocks out", r, m->used, out0);
  rd.exact = timing == 0;
  rd.orphan = (mode & MODE_ORPHAN) && out0 > 0;
  rd.push_again = r % 2 == 1;
  rd.chain = 1 + (mode >> MODE_CHAIN_SHIFT & 3);
  rd.out0 = out0;
  rd.mode = mode & MODE_FORCE ? HAK_RQ_MODE_NOTIFY : HAK_RQ_MODE_NORMAL;
  bool armed = !rd.orphan && (mode & MODE_ARM);
  make_chains(r, chosen);
  if (armed)
    T_INVARIANT(hak_rq_arm(m) && word() == HAK_RQ_NOTIFY, "round %d: arming word 0 gave %#lx", r,
                (unsigned long)word());
  if (rd.orphan)
    T_INVARIANT(hak_rq_orphan(m, out0, false) && word() == hak_rq_word(NULL, HAK_RQ_ORPHAN, out0),
                "round %d: orphaning word 0 with %u out gave %#lx", r, out0, (unsigned long)word());
  check_cas_from_zero_only(r);
  static side_t sd;
  sd.owned = !rd.orphan;
  sd.adopted = false;
  sd.drains = sd.drained = 0;
  t_run_snapshot_t before = t_run_snap(m, &owner_cache);
  fw_pool_go(&pool, nprod);
  while (timing == 1 && atomic_load(&pool.done) < nprod) {
    if (!sd.owned) sd.owned = sd.adopted = hak_rq_adopt(m);
    if (!sd.owned || drain(&sd) == 0) sched_yield();
  }
  if (timing == 2) {
    fw_pool_wait(&pool, early);
    if (!sd.owned) sd.owned = sd.adopted = hak_rq_adopt(m);
    if (sd.owned) drain(&sd);
  }
  fw_pool_wait(&pool, nprod);
  sums_t s = sum_producers();
  if (timing == 0) check_frees_only(&before, armed, &s, r);
  check_outcomes(&s, armed, want, &sd, r);
  if (!sd.owned) settle_orphan(&s, &sd, r);
  drain(&sd);
  check_drains(chosen, &s, &sd, r);
  give_back_delivered(r);
  check_after_round(r);
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
