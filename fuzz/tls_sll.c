/* Fuzz harness of the TLS SLL (src/tiny/tls_sll.h): the per-thread, per-class LIFO of free
 * blocks that malloc pops and free pushes.
 *
 * A thread runs hak_malloc/hak_free sequences per class (single blocks and bursts, so that the
 * lists are popped empty and refilled, pushed over capacity and spilled) over tiny and mid
 * classes; it may end and hand its live blocks to the next thread, whose frees of them are
 * remote until it adopts their runs. The harness keeps the live blocks (a set of base pointers)
 * and models each list operation:
 *   - malloc of class c pops the head: it returns the old head's user pointer and count drops
 *     by one; on an empty list it refills (refill counter + 1) to at most cap / 2 blocks left;
 *   - a local free pushes the block's base pointer: it becomes the head, linked to the old
 *     head, count + 1; a push above cap spills from the head down to exactly cap / 2 (the new
 *     head is the node the spill stopped at); a remote free leaves the list alone;
 *   - a free followed by a malloc of the same class returns the same pointer (LIFO), unless the
 *     free spilled;
 * and after every operation walks the calling thread's list of each class it touched
 * (hak_tc->sll[c]): count == length, no cycle, count <= cap, hak_sll_validate() agrees, and
 * every node is a base pointer (alignment (16 - HAK_HDR_SIZE) % 16) of a carved block of a
 * run of class c this thread owns, never a live block, and in header mode never carries the
 * in-use header. Before each thread ends, every class is walked.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 class size16          malloc one block of a size in class
 *   1 index16               free a live block
 *   2 class k               malloc k % 64 + 1 blocks of class (at most BURST_BYTES, but at
 *                           least BURST_MIN blocks)
 *   3 class k order         free up to k % 64 + 1 live blocks of class, newest (order even) or
 *                           oldest first
 *   4 index16               free a live block, then malloc its size again (LIFO)
 *   5                       end the thread running the operations, go on in a new one (at
 *                           most MAX_THREADS per input; later ones walk every list)
 *   6 class                 free every live block of class
 *   7                       walk the lists of every class */
#include "fast.h"
#include "fuzz.h"
#include "fuzz_seq.h"

#define MAX_LIVE 512
#define MAX_OPS 256
#define MAX_THREADS 4 /* threads running operations per input (each start costs) */
#define BURST 64
#define BURST_BYTES ((size_t)2 << 20) /* bursts of large classes stop at about 2 MiB ... */
#define BURST_MIN 8                   /* ... or 8 blocks */
#define SET_BITS 11 /* live set: 2048 entries, at most a quarter full */
#define SET_SIZE ((size_t)1 << SET_BITS)

typedef struct blk_s {
  uint8_t *p;   /* user pointer */
  size_t n;     /* bytes requested */
  unsigned cls; /* its class */
} blk_t;

static blk_t live[MAX_LIVE]; /* in allocation order */
static unsigned nlive;

/* ---- set of live base pointers (linear probing, backward-shift deletion) --------------------- */

static uintptr_t live_set[SET_SIZE];

F_NOCOV static size_t set_home(uintptr_t k) {
  return (size_t)(((uint64_t)k >> 3) * 0x9E3779B97F4A7C15ull >> (64 - SET_BITS));
}

F_NOCOV static size_t set_find(uintptr_t k) {
  size_t i = set_home(k);
  while (live_set[i] != 0 && live_set[i] != k) i = (i + 1) & (SET_SIZE - 1);
  return i;
}

F_NOCOV static bool set_has(uintptr_t k) { return live_set[set_find(k)] == k; }

static void set_add(uintptr_t k) {
  size_t i = set_find(k);
  T_INVARIANT(live_set[i] == 0, "block %#lx handed out twice", (unsigned long)k);
  live_set[i] = k;
}

/* Between the hole i and j, the entry at j may move to i when its home is not in (i, j]. */
static bool may_fill(size_t i, size_t j, size_t home) {
  return i <= j ? home <= i || home > j : home <= i && home > j;
}

static void set_del(uintptr_t k) {
  size_t i = set_find(k);
  T_INVARIANT(live_set[i] == k, "freed block %#lx not in the live set", (unsigned long)k);
  for (size_t j = (i + 1) & (SET_SIZE - 1); live_set[j] != 0; j = (j + 1) & (SET_SIZE - 1)) {
    if (may_fill(i, j, set_home(live_set[j]))) {
      live_set[i] = live_set[j];
      i = j;
    }
  }
  live_set[i] = 0;
}

/* ---- the list walk -------------------------------------------------------------------------- */

F_NOCOV static void check_node(unsigned c, const uint8_t *b) {
  uintptr_t u = (uintptr_t)b;
  T_INVARIANT((u & 15) == (16 - HAK_HDR_SIZE) % 16, "class %u: node %p is not a base pointer", c,
              (const void *)b);
  T_INVARIANT(hak_registry_kind(u) == HAK_REGION_SS && hak_registry_ss_peek(u) == hak_ss_of(b),
              "class %u: node %p not in a registered SuperSlab", c, (const void *)b);
  hak_slab_t *m = t_run_of(b);
  T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == c,
              "class %u: node %p in a run of state %d class %d", c, (const void *)b, m->state,
              m->class_idx);
  T_INVARIANT(hak_owner_of(m) == hak_tc, "class %u: node %p in a run owned by %p, not by %p", c,
              (const void *)b, (void *)hak_owner_of(m), (void *)hak_tc);
  uintptr_t d = (uintptr_t)m->data;
  T_INVARIANT(u >= d && (u - d) % m->stride == 0 && (u - d) / m->stride < m->carved,
              "class %u: node %p is not a carved block of its run", c, (const void *)b);
  T_INVARIANT(!set_has(u), "class %u: node %p is a live block", c, (const void *)b);
#if !HAKMEM_TINY_HEADERLESS
  uint64_t h;
  memcpy(&h, b, sizeof h);
  T_INVARIANT(h != HAK_HDR_ALLOC(c), "class %u: node %p carries the in-use header", c,
              (const void *)b);
#endif
}

F_NOCOV static void check_list(unsigned c) {
  const hak_sll_t *l = &hak_tc->sll[c];
  uint32_t n = 0;
  for (const uint8_t *b = l->head; b != NULL; b = hak_link_get(b)) {
    T_INVARIANT(++n <= hak_sll_count(l), "class %u: list longer than its count %u (cycle?)", c,
                hak_sll_count(l));
    check_node(c, b);
  }
  T_INVARIANT(n == hak_sll_count(l), "class %u: length %u, count %u", c, n, hak_sll_count(l));
  T_INVARIANT(hak_sll_count(l) <= l->cap, "class %u: count %u above cap %u", c, hak_sll_count(l),
              l->cap);
  T_INVARIANT(hak_sll_validate(l), "class %u: hak_sll_validate refuses a valid list", c);
}

F_NOCOV static void check_every_list(void) {
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) check_list(c);
}

/* ---- malloc and free against the model ------------------------------------------------------ */

static uint64_t counter(_Atomic(uint64_t) *v) { return atomic_load_explicit(v, memory_order_relaxed); }

static void alloc_one(unsigned c, size_t n) {
  if (nlive == MAX_LIVE) return;
  hak_sll_t *l = &hak_tc->sll[c];
  void *head = l->head;
  void *next = head ? hak_link_get(head) : NULL;
  uint32_t count = hak_sll_count(l);
  uint64_t refills = counter(&hak_tc->stat.refills[c]);
  uint8_t *p = hak_malloc(n);
  T_INVARIANT(p != NULL, "hak_malloc(%zu) failed", n);
  if (head != NULL) {
    T_INVARIANT(t_base_of(p) == head, "malloc(%zu) gave %p, the head of class %u was %p", n,
                (void *)p, c, head);
    T_INVARIANT(l->head == next && hak_sll_count(l) == count - 1,
                "class %u: pop left head %p count %u", c, l->head, hak_sll_count(l));
  } else {
    T_INVARIANT(counter(&hak_tc->stat.refills[c]) == refills + 1, "class %u: empty list, no refill",
                c);
    T_INVARIANT(hak_sll_count(l) <= l->cap / 2, "class %u: refill left %u blocks, cap %u", c,
                hak_sll_count(l), l->cap);
  }
  set_add((uintptr_t)t_base_of(p));
  memset(p, 0xA5, n < 32 ? n : 32);
  live[nlive++] = (blk_t){p, n, c};
}

/* The node at index k of the list [b, then the list from head]. */
static void *nth_after_push(void *b, void *head, uint32_t k) {
  if (k == 0) return b;
  void *x = head;
  for (uint32_t i = 1; i < k && x != NULL; i++) x = hak_link_get(x);
  return x;
}

/* Frees the newest live block and checks the push (or the spill, or for a remote free the
 * untouched list). */
static void free_last(void) {
  blk_t k = live[--nlive];
  uint8_t *b = t_base_of(k.p);
  hak_sll_t *l = &hak_tc->sll[k.cls];
  bool own = hak_owner_of(t_run_of(b)) == hak_tc;
  void *head = l->head;
  uint32_t count = hak_sll_count(l), cap = l->cap;
  bool spill = own && count + 1 > cap;
  void *top = spill ? nth_after_push(b, head, count + 1 - cap / 2) : own ? b : head;
  uint64_t spills = counter(&hak_tc->stat.spills[k.cls]);
  set_del((uintptr_t)b);
  hak_free(k.p);
  uint32_t want = spill ? cap / 2 : own ? count + 1 : count;
  const char *how = own ? spill ? "local, spill" : "local" : "remote";
  T_INVARIANT(hak_sll_count(l) == want,
              "free(%p) of class %u (%s, count %u cap %u): count %u, expected %u", (void *)k.p,
              k.cls, how, count, cap, hak_sll_count(l), want);
  T_INVARIANT(l->head == top, "free(%p) of class %u (%s): head %p, expected %p", (void *)k.p, k.cls,
              how, l->head, top);
  T_INVARIANT(counter(&hak_tc->stat.spills[k.cls]) == spills + spill,
              "free(%p) of class %u (%s): "
              "spill counter moved by %llu",
              (void *)k.p, k.cls, how,
              (unsigned long long)(counter(&hak_tc->stat.spills[k.cls]) - spills));
  if (own && !spill)
    T_INVARIANT(hak_link_get(b) == head, "pushed %p links to %p, not the old head %p", (void *)b,
                hak_link_get(b), head);
}

/* Frees live[i], keeping the others in allocation order. */
static void free_ordered(unsigned i) {
  blk_t k = live[i];
  memmove(&live[i], &live[i + 1], (nlive - i - 1) * sizeof live[0]);
  live[nlive - 1] = k;
  free_last();
}

/* ---- operations ----------------------------------------------------------------------------- */

static void op_free_malloc(unsigned i) {
  blk_t k = live[i];
  bool own = hak_owner_of(t_run_of(t_base_of(k.p))) == hak_tc;
  uint64_t spills = counter(&hak_tc->stat.spills[k.cls]);
  free_ordered(i);
  alloc_one(k.cls, k.n);
  if (own && counter(&hak_tc->stat.spills[k.cls]) == spills)
    T_INVARIANT(live[nlive - 1].p == k.p, "free(%p) then malloc(%zu) gave %p", (void *)k.p, k.n,
                (void *)live[nlive - 1].p);
}

static void op_free_class(unsigned c, unsigned k, bool newest) {
  for (unsigned done = 0; done < k;) {
    unsigned j = nlive;
    for (unsigned t = 0; t < nlive; t++) {
      unsigned i = newest ? nlive - 1 - t : t;
      if (live[i].cls == c) {
        j = i;
        break;
      }
    }
    if (j == nlive) return;
    free_ordered(j);
    done++;
  }
}

/* Runs one operation; returns false when the thread should end (only if may_end). */
static bool run_op(f_in_t *in, bool may_end) {
  unsigned op = f_u8(in) % 8;
  if (op == 5 && may_end) return false;
  unsigned c = op == 1 || op == 4 || op >= 5 ? 0 : f_below(in, HAK_NUM_CLASSES);
  switch (op) {
  case 0: alloc_one(c, f_size_in_class(c, f_u16(in))); break;
  case 2: {
    unsigned k = f_u8(in) % BURST + 1;
    size_t most = BURST_BYTES / hak_class_size((int)c);
    if (k > most) k = most < BURST_MIN ? BURST_MIN : (unsigned)most;
    for (unsigned i = 0; i < k; i++) alloc_one(c, f_size_in_class(c, (uint16_t)(i * 37)));
    break;
  }
  case 1:
  case 4: {
    unsigned i = f_u16(in);
    if (nlive == 0) return true;
    c = live[i % nlive].cls;
    if (op == 1) free_ordered(i % nlive); else op_free_malloc(i % nlive);
    break;
  }
  case 3: {
    unsigned k = f_u8(in) % BURST + 1;
    op_free_class(c, k, (f_u8(in) & 1) == 0);
    break;
  }
  case 6: c = f_below(in, HAK_NUM_CLASSES); op_free_class(c, MAX_LIVE, true); break;
  default: check_every_list(); return true;
  }
  check_list(c);
  return true;
}

static void thread_start(void) {
  hak_free(hak_malloc(1)); /* a live cache, so hak_tc stays the same from here on */
}

/* The last thread frees what is left (blocks of earlier threads remotely) and adopts what
 * earlier threads left published. */
static void finish(void) {
  while (nlive > 0) free_last();
  check_every_list();
  f_seq_adopt_leftovers();
}

static const f_seq_t seq = {.op = run_op, .thread_start = thread_start,
                            .thread_end = check_every_list, .finish = finish,
                            .max_ops = MAX_OPS, .max_threads = MAX_THREADS};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return f_seq_run(&seq, data, size);
}
