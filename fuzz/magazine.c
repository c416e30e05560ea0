/* Fuzz harness of refill / magazine (src/tiny/magazine.c): batch moves between a thread's TLS
 * SLLs and the slab runs it owns, and the owner's lists of those runs.
 *
 * A thread allocates and frees blocks in bursts big enough to empty its TLS SLL (refill) and
 * push it over its capacity (spill), over tiny and mid classes; it hands blocks to short-lived
 * threads that free them remotely (onto the runs' remote words, drained by the next refill, or,
 * for an armed full run, delivered onto the thread's notify stack, collected by the next
 * refill), and it may end, leaving its live blocks to the next thread (its runs are orphaned,
 * then adopted by a refill). The harness keeps the live blocks. After every operation it audits the
 * class the operation touched (every class before a thread ends), with every other thread
 * quiet:
 *   - the TLS SLL: count == length, count <= cap, no block twice;
 *   - every run on the thread's partial and full lists of the class: tagged with that list,
 *     a bound run head of the class owned by the thread, used <= carved <= capacity; its remote
 *     word is an owned one (no ORPHAN or PUBLISHED flag, no count: remote_queue.h); its
 *     freelist, the stack of its remote word and its blocks on the thread's notify stack hold
 *     carved base pointers of that run only, no block twice or on two of them, none live and
 *     none on the SLL;
 *   - the notify stack is open and holds blocks of runs on the thread's lists only;
 *   - used counts balance: used == the run's live blocks + its blocks on the SLL + its remote
 *     stack + its blocks on the notify stack (blocks pushed but not drained, or delivered but
 *     not collected, are still out), and used + freelist == carved;
 *   - a run on the full list has nothing left to give (no freelist, fully carved) and is armed:
 *     its word has NOTIFY, or the free that took the notification delivered a block of it that
 *     is still on the notify stack; at most one run of a class with nothing out (used == 0) is
 *     kept on the partial list (the spare that hak_slab_give_back() keeps; a notified full run
 *     moved back to the partial list may sit beside it, so "the only partial run" does not hold
 *     there);
 *   - each run is on one list once: the live blocks in runs the thread owns and the SLL blocks
 *     all lie in runs on its lists, and every block the thread allocated lies in a run it owns.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 class k          malloc k % 128 + 1 blocks of class (at most BURST_BYTES, but at least
 *                      BURST_MIN blocks)
 *   1 class k order    free up to k % 128 + 1 live blocks of class; order % 3: newest first,
 *                      oldest first, every other one
 *   2 class k          up to k % 64 + 1 live blocks of class are freed by another thread
 *   3                  end the thread running the operations, go on in a new one (at most
 *                      MAX_THREADS per input; later ones audit every class)
 *   4 class            free every live block of class
 *   5                  audit every class */
#include "fast.h"
#include "fuzz.h"
#include "fuzz_seq.h"

#define MAX_LIVE 1024
#define MAX_SLL 2048   /* above the largest TLS capacity (1024) */
#define MAX_BLOCKS 4096 /* blocks per run: 64 KiB of 16-byte blocks */
#define MAX_OPS 256
#define MAX_THREADS 4 /* threads running operations per input (each start costs) */
#define BURST_BYTES ((size_t)2 << 20) /* bursts of large classes stop at about 2 MiB ... */
#define BURST_MIN 8                   /* ... or 8 blocks */

typedef struct blk_s {
  uint8_t *p;      /* user pointer */
  unsigned cls;    /* its class */
  unsigned thread; /* number of the thread that allocated it */
} blk_t;

static blk_t live[MAX_LIVE]; /* in allocation order */
static unsigned nlive;
static unsigned thread_no; /* of the thread running the operations */

/* ---- sorted pointer sets -------------------------------------------------------------------- */

/* Heap sort (qsort would allocate for arrays this large, on every audit). */
F_NOCOV static void sift(uintptr_t *a, size_t root, size_t n) {
  for (size_t child; (child = 2 * root + 1) < n; root = child) {
    if (child + 1 < n && a[child] < a[child + 1]) child++;
    if (a[root] >= a[child]) return;
    uintptr_t t = a[root];
    a[root] = a[child];
    a[child] = t;
  }
}

F_NOCOV static void sort_ptrs(uintptr_t *a, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
  for (size_t end = n; end-- > 1;) {
    uintptr_t t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(a, 0, end);
  }
}

F_NOCOV static size_t lower_bound(const uintptr_t *a, size_t n, uintptr_t v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

F_NOCOV static bool contains(const uintptr_t *a, size_t n, uintptr_t v) {
  size_t i = lower_bound(a, n, v);
  return i < n && a[i] == v;
}

F_NOCOV static size_t count_range(const uintptr_t *a, size_t n, uintptr_t lo, uintptr_t hi) {
  return lower_bound(a, n, hi) - lower_bound(a, n, lo);
}

/* ---- audit ---------------------------------------------------------------------------------- */

typedef struct audit_s {
  unsigned c;
  uintptr_t live[MAX_LIVE]; /* live bases of class c, sorted */
  size_t nl;
  uintptr_t sll[MAX_SLL];   /* SLL nodes of class c, sorted */
  size_t ns;
  uintptr_t dlv[MAX_LIVE];  /* blocks of class c on the thread's notify stack, sorted */
  size_t nd;
  size_t live_in, sll_in, dlv_in; /* of those, in runs on the thread's lists */
  unsigned empty;           /* partial runs with nothing out */
} audit_t;

static audit_t au;
static uint32_t seen[MAX_BLOCKS]; /* == stamp: block already met in this run's lists */
static uint32_t stamp;

/* Checks one node of a run's freelist, remote stack or delivered blocks. */
F_NOCOV static void check_free_node(const hak_slab_t *m, uintptr_t b, const char *list) {
  uintptr_t d = (uintptr_t)m->data;
  T_INVARIANT(b >= d && (b - d) % m->stride == 0 && (b - d) / m->stride < m->carved,
              "class %u run %p: %s node %#lx is not a carved block of the run", au.c, (void *)m,
              list, (unsigned long)b);
  size_t idx = (b - d) / m->stride;
  T_INVARIANT(seen[idx] != stamp,
              "class %u run %p: block %zu twice on its freelist, remote stack "
              "and notify stack",
              au.c, (void *)m, idx);
  seen[idx] = stamp;
  T_INVARIANT(!contains(au.sll, au.ns, b), "class %u: block %#lx on the TLS SLL and a %s", au.c,
              (unsigned long)b, list);
  T_INVARIANT(!contains(au.live, au.nl, b), "class %u: live block %#lx on a %s", au.c,
              (unsigned long)b, list);
}

F_NOCOV static uint32_t walk_freelist(const hak_slab_t *m) {
  uint32_t n = 0;
  for (const void *b = m->freelist; b != NULL; b = hak_link_get(b)) {
    T_INVARIANT(++n <= m->carved, "class %u run %p: freelist longer than carved", au.c, (void *)m);
    check_free_node(m, (uintptr_t)b, "freelist");
  }
  return n;
}

/* The stack of an owned run's remote word (remote_queue.h). */
F_NOCOV static uint32_t walk_remote(const hak_slab_t *m, uintptr_t w) {
  uint32_t n = 0;
  T_INVARIANT((w & HAK_RQ_FLAGS & ~HAK_RQ_NOTIFY) == 0 && hak_rq_count(w) == 0,
              "class %u run %p owned by the thread: remote word %#lx has orphan flags or a count",
              au.c, (void *)m, (unsigned long)w);
  for (const void *b = hak_rq_head(w); b != NULL; b = hak_link_get(b)) {
    T_INVARIANT(++n <= m->carved, "class %u run %p: remote stack longer than carved", au.c,
                (void *)m);
    check_free_node(m, (uintptr_t)b, "remote stack");
  }
  return n;
}

/* The run's blocks on the thread's notify stack (au.dlv). */
F_NOCOV static uint32_t walk_delivered(const hak_slab_t *m, uintptr_t lo, uintptr_t hi) {
  size_t i = lower_bound(au.dlv, au.nd, lo), end = lower_bound(au.dlv, au.nd, hi);
  for (size_t k = i; k < end; k++) check_free_node(m, au.dlv[k], "notify stack");
  return (uint32_t)(end - i);
}

F_NOCOV static void audit_run(const hak_slab_t *m, uint8_t tag) {
  unsigned c = au.c;
  T_INVARIANT(m->list == tag, "class %u run %p: list tag %d on list %d", c, (void *)m, m->list,
              tag);
  T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == c,
              "run %p on class %u lists: state %d "
              "class %d",
              (void *)m, c, m->state, m->class_idx);
  T_INVARIANT(hak_owner_of(m) == hak_tc, "class %u run %p owned by %p", c, (void *)m,
              (void *)hak_owner_of(m));
  T_INVARIANT(m->used <= m->carved && m->carved <= m->capacity && m->capacity <= MAX_BLOCKS,
              "class %u run %p: used %u carved %u capacity %u", c, (void *)m, m->used,
              (unsigned)m->carved, m->capacity);
  T_INVARIANT(m->next == NULL || m->next->prev == m, "class %u run %p: broken list links", c,
              (void *)m);
  stamp++;
  uintptr_t w = atomic_load_explicit(&((hak_slab_t *)m)->remote, memory_order_acquire);
  uintptr_t lo = (uintptr_t)m->data, hi = lo + (uintptr_t)m->capacity * m->stride;
  uint32_t fl = walk_freelist(m), rq = walk_remote(m, w), dl = walk_delivered(m, lo, hi);
  size_t li = count_range(au.live, au.nl, lo, hi), si = count_range(au.sll, au.ns, lo, hi);
  T_INVARIANT(m->used == li + si + rq + dl,
              "class %u run %p: used %u, but %zu live + %zu on the SLL "
              "+ %u on the remote stack + %u delivered",
              c, (void *)m, m->used, li, si, rq, dl);
  T_INVARIANT(m->used + fl == m->carved, "class %u run %p: used %u + freelist %u != carved %u", c,
              (void *)m, m->used, fl, (unsigned)m->carved);
  if (tag == HAK_LIST_FULL) {
    T_INVARIANT(fl == 0 && m->carved == m->capacity,
                "class %u run %p on the full list: freelist %u, "
                "carved %u of %u",
                c, (void *)m, fl, (unsigned)m->carved, m->capacity);
    T_INVARIANT((w & HAK_RQ_NOTIFY) || dl > 0,
                "class %u run %p on the full list: not armed (word "
                "%#lx) and none of its blocks delivered",
                c, (void *)m, (unsigned long)w);
  } else if (m->used == 0) {
    T_INVARIANT(++au.empty == 1, "class %u run %p: a second partial run with nothing out", c,
                (void *)m);
  }
  au.live_in += li;
  au.sll_in += si;
  au.dlv_in += dl;
}

F_NOCOV static unsigned list_length(const hak_slab_t *m) {
  unsigned n = 0;
  for (; m != NULL; m = m->next)
    T_INVARIANT(++n <= 4096, "class %u: run list cycles", au.c);
  return n;
}

F_NOCOV static void collect(unsigned c) {
  au.c = c;
  au.nl = au.ns = au.nd = au.live_in = au.sll_in = au.dlv_in = 0;
  au.empty = 0;
  for (unsigned i = 0; i < nlive; i++)
    if (live[i].cls == c)
      au.live[au.nl++] = (uintptr_t)t_base_of(live[i].p);
  sort_ptrs(au.live, au.nl);
  for (size_t i = 1; i < au.nl; i++)
    T_INVARIANT(au.live[i] != au.live[i - 1], "class %u: block %#lx handed out twice", c,
                (unsigned long)au.live[i]);
  const hak_sll_t *s = &hak_tc->sll[c];
  for (const void *b = s->head; b != NULL; b = hak_link_get(b)) {
    T_INVARIANT(au.ns < hak_sll_count(s) && au.ns < MAX_SLL,
                "class %u: SLL longer than its count %u", c, hak_sll_count(s));
    au.sll[au.ns++] = (uintptr_t)b;
  }
  T_INVARIANT(au.ns == hak_sll_count(s) && hak_sll_count(s) <= s->cap,
              "class %u: SLL length %zu count %u cap %u", c, au.ns, hak_sll_count(s), s->cap);
  sort_ptrs(au.sll, au.ns);
  for (size_t i = 1; i < au.ns; i++)
    T_INVARIANT(au.sll[i] != au.sll[i - 1], "class %u: block %#lx twice on the SLL", c,
                (unsigned long)au.sll[i]);
  void *d = atomic_load_explicit(&hak_tc->notify, memory_order_acquire);
  T_INVARIANT(d != HAK_NOTIFY_CLOSED, "the notify stack of a live thread is closed");
  for (size_t steps = 0; d != NULL; d = hak_link_decode(d)) { /* mixed classes: decoded */
    T_INVARIANT(++steps <= MAX_LIVE, "the notify stack holds more blocks than were ever live");
    if (t_run_of(d)->class_idx == c) au.dlv[au.nd++] = (uintptr_t)d;
  }
  sort_ptrs(au.dlv, au.nd); /* a block twice: walk_delivered() meets it twice */
}

/* Live blocks of class c in runs this thread owns; those it allocated itself are all there. */
F_NOCOV static size_t owned_live(unsigned c) {
  size_t n = 0;
  for (unsigned i = 0; i < nlive; i++) {
    if (live[i].cls != c) continue;
    bool own = hak_owner_of(t_run_of(t_base_of(live[i].p))) == hak_tc;
    T_INVARIANT(own || live[i].thread != thread_no,
                "class %u: block %p of this thread in a run it "
                "does not own",
                c, (void *)live[i].p);
    n += own;
  }
  return n;
}

F_NOCOV static void audit(unsigned c) {
  collect(c);
  list_length(hak_tc->partial[c]);
  list_length(hak_tc->full[c]);
  for (const hak_slab_t *m = hak_tc->partial[c]; m != NULL; m = m->next)
    audit_run(m, HAK_LIST_PARTIAL);
  for (const hak_slab_t *m = hak_tc->full[c]; m != NULL; m = m->next)
    audit_run(m, HAK_LIST_FULL);
  size_t own = owned_live(c);
  T_INVARIANT(au.live_in == own,
              "class %u: %zu live blocks in owned runs, %zu in runs on the lists", c, own,
              au.live_in);
  T_INVARIANT(au.sll_in == au.ns, "class %u: %zu SLL blocks, %zu of them in runs on the lists", c,
              au.ns, au.sll_in);
  T_INVARIANT(au.dlv_in == au.nd,
              "class %u: %zu blocks on the notify stack, %zu of them in runs on "
              "the lists",
              c, au.nd, au.dlv_in);
}

F_NOCOV static void audit_all(void) {
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) audit(c);
}

/* ---- operations ----------------------------------------------------------------------------- */

static void alloc_burst(unsigned c, unsigned k) {
  size_t most = BURST_BYTES / hak_class_size((int)c);
  if (k > most) k = most < BURST_MIN ? BURST_MIN : (unsigned)most;
  for (unsigned i = 0; i < k && nlive < MAX_LIVE; i++) {
    uint8_t *p = hak_malloc(f_size_in_class(c, i * 7919u));
    T_INVARIANT(p != NULL, "hak_malloc of class %u failed", c);
    live[nlive++] = (blk_t){p, c, thread_no};
  }
}

static void drop(unsigned i) {
  memmove(&live[i], &live[i + 1], (nlive - i - 1) * sizeof live[0]);
  nlive--;
}

/* Index of the n-th live block of class c (from the newest when newest), or nlive. */
static unsigned find_class(unsigned c, unsigned n, bool newest) {
  for (unsigned t = 0; t < nlive; t++) {
    unsigned i = newest ? nlive - 1 - t : t;
    if (live[i].cls == c && n-- == 0) return i;
  }
  return nlive;
}

static void free_burst(unsigned c, unsigned k, unsigned order) {
  for (unsigned done = 0; done < k; done++) {
    unsigned i = find_class(c, order == 2 ? done : 0, order == 0);
    if (i == nlive) return;
    hak_free(live[i].p);
    drop(i);
  }
}

/* The remote freer: one thread for the whole process that never allocates (so it has no cache
 * and nothing to flush); it frees the batches it is handed and reports back. */
typedef struct remote_s {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void *p[64];
  unsigned n; /* blocks posted; 0 once freed */
} remote_t;

static remote_t rf = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};

static void *remote_main(void *arg) {
  pthread_mutex_lock(&rf.mu);
  for (;;) {
    while (rf.n == 0) pthread_cond_wait(&rf.cv, &rf.mu);
    for (unsigned i = 0; i < rf.n; i++) hak_free(rf.p[i]);
    rf.n = 0;
    pthread_cond_broadcast(&rf.cv);
  }
  pthread_mutex_unlock(&rf.mu);
  return arg;
}

/* The remote freer frees up to k blocks of class c; this thread waits for it. */
static void remote_burst(unsigned c, unsigned k) {
  static pthread_t freer;
  static bool started;
  if (!started) {
    t_start(&freer, remote_main, NULL);
    started = true;
  }
  pthread_mutex_lock(&rf.mu);
  unsigned n = 0;
  for (unsigned i; n < k && (i = find_class(c, 0, false)) != nlive;) {
    rf.p[n++] = live[i].p;
    drop(i);
  }
  rf.n = n;
  pthread_cond_broadcast(&rf.cv);
  while (rf.n != 0) pthread_cond_wait(&rf.cv, &rf.mu);
  pthread_mutex_unlock(&rf.mu);
}

/* Runs one operation; returns false when the thread should end (only if may_end). */
static bool run_op(f_in_t *in, bool may_end) {
  unsigned op = f_u8(in) % 6;
  if (op == 3 && may_end) return false;
  if (op == 3 || op == 5) {
    audit_all();
    return true;
  }
  unsigned c = f_below(in, HAK_NUM_CLASSES);
  switch (op) {
  case 0: alloc_burst(c, f_u8(in) % 128 + 1); break;
  case 1: {
    unsigned k = f_u8(in) % 128 + 1;
    free_burst(c, k, f_u8(in) % 3);
    break;
  }
  case 2: remote_burst(c, f_u8(in) % 64 + 1); break;
  default: free_burst(c, MAX_LIVE, 0); break;
  }
  audit(c);
  return true;
}

/* Each thread makes its cache live and starts from a clean audit. */
static void thread_start(void) {
  hak_free(hak_malloc(1)); /* a live cache, so hak_tc stays the same from here on */
  thread_no++;
  audit_all();
}

/* The last thread frees what is left (blocks of earlier threads remotely) and adopts what
 * earlier threads left published. */
static void finish(void) {
  for (unsigned i = 0; i < nlive; i++) hak_free(live[i].p);
  nlive = 0;
  audit_all();
  f_seq_adopt_leftovers();
}

static const f_seq_t seq = {.op = run_op, .thread_start = thread_start, .thread_end = audit_all,
                            .finish = finish, .max_ops = MAX_OPS, .max_threads = MAX_THREADS};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hak_opt.remote_batch = 1; /* the model follows each remote free to its run at once */
  return f_seq_run(&seq, data, size);
}
