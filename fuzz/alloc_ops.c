/* Fuzz harness of the whole allocator against a shadow model (DESIGN §7: alloc_ops).
 *
 * The input is a sequence of operations on 64 slots, run by the harness's main thread, with
 * three persistent worker threads that free and allocate on its behalf:
 *   - malloc, calloc, realloc (and reallocarray), and the aligned calls (hak_memalign,
 *     hak_aligned_alloc, hak_posix_memalign, alignments 8 .. 4 MiB, mostly 32 .. 4096) of tiny
 *     (0 .. 1 KiB), mid (1 KiB .. 256 KiB: runs of several 64 KiB slabs, so blocks also lie in
 *     a run's 2nd or 3rd slab), large (256 KiB .. 4.25 MiB) and class-boundary sizes;
 *   - free; free by a worker (the block goes to the worker's mailbox and is freed there,
 *     asynchronously: a remote free when another thread owns its run); worker allocation (a
 *     worker allocates a block, so it owns the run, and hands it back: main later frees it
 *     remotely or hands it to another worker);
 *   - exit of a worker (its caches are flushed, its runs released or orphaned for adoption),
 *     re-created on its next use;
 *   - fill and check of contents, a burst (k <= 1024 blocks of one size, allocated together,
 *     then freed in an order the input chooses, partly or wholly by a worker: the TLS SLL
 *     spills to the slabs and refills from them), hak_trim(), a sync with the workers.
 *
 * Shadow model, checked after every operation (T_INVARIANT aborts with one line):
 *   - live blocks never overlap: each new block's [p, p + usable) against every live block's;
 *   - contents stay intact: each live block carries a pattern keyed by its own key over its
 *     usable size (every byte of a block up to 64 KiB; of a bigger one 64 bytes of every KiB,
 *     so every page of it is written), checked at its head and tail after every operation and
 *     whole before it is freed or handed off; realloc keeps the prefix; calloc gives zeros;
 *   - alignment: 16 for every malloc of more than 8 bytes and every calloc and realloc result,
 *     the requested alignment for the aligned calls;
 *   - hak_usable_size(p) >= the request and stays what it was; hak_owns(p) for live blocks;
 *   - when the workers are quiet (trim, end of input): every region a block of this input lay
 *     in is either unregistered or mapped with its magic intact (a registry entry outliving
 *     its unmap is caught right after the trim that unmapped it).
 * After the input everything is freed, the workers are synced, and hakmem's live_blocks is
 * exactly what it was before: hakmem_core has no other user in the process.
 *
 * Determinism: the main thread decides everything; a worker handles its mailbox in order and
 * main waits for every allocation it asks for. The only nondeterminism is when a worker's
 * frees land relative to main's operations; SYNC (and TRIM) wait for all of them. Workers
 * persist across inputs (libFuzzer's main thread never exits, so neither do its caches).
 *
 * Input: one opcode byte (mod OP_COUNT) then its arguments; a size is 3 bytes, kind then a
 * 16-bit value (see size_of); past the end of the input every byte reads 0.
 *   0 MALLOC      slot size
 *   1 CALLOC      slot size split        (split 0xFF: an overflowing count * size)
 *   2 REALLOC     slot size mode         (realloc, reallocarray, overflow, small delta)
 *   3 ALIGNED     slot fn align size     (fn%4: memalign, aligned_alloc, posix_memalign,
 *                                         memalign of a non-power-of-two; align: see align_of)
 *   4 FREE        slot
 *   5 FREE_REMOTE slot worker            (the worker frees it)
 *   6 WORKER_ALLOC slot worker fn size   (fn%3: malloc, calloc, memalign of 32 << fn/3 % 8)
 *   7 WORKER_EXIT worker
 *   8 CHECK       slot                   (whole contents, usable size, ownership)
 *   9 FILL        slot                   (new key over the whole usable size)
 *  10 BURST       size count16 fn order arg
 *                 k = 1 + count % 1024 blocks (at most 8 MiB in all) allocated by fn%4: malloc,
 *                 calloc, memalign of 32 << fn/4 % 8, malloc of size + j % 64; checked against
 *                 each other and the slots; freed in the order ord%6: forward, reverse, even
 *                 then odd, shuffled (seeded by arg), every other one by worker arg, all of
 *                 them by worker arg
 *  11 TRIM
 *  12 SYNC
 *  13 FREE_ALL    mode                   (mode even: main frees; odd: worker mode/2 does) */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fast.h"
#include "fuzz.h"

#define SLOTS 64
#define WORKERS 3
#define MAX_OPS 1024
#define BURST_MAX 1024
#define BURST_BYTES ((size_t)8 << 20)  /* bytes of one burst, at most */
#define QCAP 2048                      /* mailbox requests per worker */
#define REGION_SET 4096                /* power of two */
#define SAMPLE_HEAD 1024               /* bytes checked after every op, at the start... */
#define SAMPLE_TAIL 64                 /* ... and at the end of each live block */

/* ---- blocks and their pattern ---------------------------------------------------------------- */

typedef struct blk_s {
  uint8_t *p;
  size_t req;    /* bytes asked for */
  size_t usable; /* hak_usable_size when it was allocated */
  size_t align;  /* alignment it must have */
  uint64_t key;  /* byte i of its pattern pieces (see pieces()) is t_expected_byte(key, i) */
} blk_t;

/* The bytes of a block that carry its pattern: every byte of a block of up to DENSE_MAX usable
 * bytes; of a bigger one its first SPARSE_HEAD bytes, SPARSE_LEN bytes of every SPARSE_STEP, and
 * its last SPARSE_LEN bytes: every page of it is written, at a fraction of the cost.
 * pieces() calls fn(b, lo, hi) for each piece below limit, in order. */
#define DENSE_MAX ((size_t)64 << 10)
#define SPARSE_HEAD ((size_t)4096)
#define SPARSE_STEP ((size_t)1024)
#define SPARSE_LEN ((size_t)64)

typedef void (*piece_fn)(const blk_t *b, size_t lo, size_t hi, const char *what);

static void pieces(const blk_t *b, size_t limit, piece_fn fn, const char *what) {
  size_t u = b->usable, end = limit < u ? limit : u;
  if (u <= DENSE_MAX) {
    if (end > 0) fn(b, 0, end, what);
    return;
  }
  for (size_t lo = 0; lo < end; lo = lo < SPARSE_HEAD ? SPARSE_HEAD : lo + SPARSE_STEP) {
    size_t hi = lo < SPARSE_HEAD ? SPARSE_HEAD : lo + SPARSE_LEN;
    if (hi > u - SPARSE_LEN) break;
    fn(b, lo, hi < end ? hi : end, what);
  }
  if (end > u - SPARSE_LEN) fn(b, u - SPARSE_LEN, end, what);
}

static void fill_piece(const blk_t *b, size_t lo, size_t hi, const char *what) {
  (void)what;
  t_fill_range(b->p, lo, hi, b->key);
}

static void check_pattern(const blk_t *b, size_t lo, size_t hi, const char *what) {
  size_t bad = t_find_bad_range(b->p, lo, hi, b->key);
  T_INVARIANT(bad == SIZE_MAX,
              "%s: block %p (req %zu, usable %zu) corrupt at offset %zu: %#x != %#x", what,
              (void *)b->p, b->req, b->usable, bad, b->p[bad], t_expected_byte(b->key, bad));
}

/* Gives a block its pattern (its key and usable size set). */
static void block_fill(const blk_t *b) { pieces(b, SIZE_MAX, fill_piece, NULL); }

/* Checks the pattern of a block below limit (SIZE_MAX: all of it). */
static void block_check(const blk_t *b, size_t limit, const char *what) {
  pieces(b, limit, check_pattern, what);
}

/* After every operation: the block's first SAMPLE_HEAD and last SAMPLE_TAIL bytes (both always
 * carry the pattern). */
static void check_sampled(const blk_t *b, const char *what) {
  size_t head = b->usable < SAMPLE_HEAD ? b->usable : SAMPLE_HEAD;
  size_t tail = b->usable - head < SAMPLE_TAIL ? b->usable - head : SAMPLE_TAIL;
  check_pattern(b, 0, head, what);
  check_pattern(b, b->usable - tail, b->usable, what);
}

static void check_zero(const uint8_t *p, size_t n, const char *what) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    if (x != 0) break;
  }
  for (; i < n; i++)
    T_INVARIANT(p[i] == 0, "%s: %p not zeroed at offset %zu of %zu", what, (void *)p, i, n);
}

/* ---- decoding -------------------------------------------------------------------------------- */

/* Sizes near the limits the allocator switches at (class sizes, tiny, mid). */
static size_t boundary_size(uint16_t v) {
  int d = (int)(v >> 8) % 3 - 1;
  unsigned c = (v & 0xFF) % (HAK_NUM_CLASSES + 2);
  size_t s = c < HAK_NUM_CLASSES ? hak_class_size((int)c)
                                 : c == HAK_NUM_CLASSES ? HAK_TINY_MAX : HAK_SLAB_REQ_MAX;
  return (size_t)((long)s + d);
}

static size_t size_of(uint8_t kind, uint16_t v) {
  switch (kind % 4) {
  case 0: return v % (HAK_TINY_MAX + 1);
  case 1: return HAK_TINY_MAX + 1 + (size_t)v * 4 % (HAK_MID_MAX - HAK_TINY_MAX);
  case 2: return HAK_MID_MAX + 1 + (size_t)v * 64;
  default: return boundary_size(v);
  }
}

static size_t f_size(f_in_t *in) {
  uint8_t kind = f_u8(in);
  return size_of(kind, f_u16(in));
}

/* Alignment: high bit clear, 32 .. 4096; set, 8 .. 4 MiB. */
static size_t align_of(uint8_t a) {
  return (size_t)1 << (a & 0x80 ? 3 + (a & 0x7F) % 20 : 5 + a % 8);
}

/* The alignment a malloc-family result of n bytes needs. */
static size_t natural_align(size_t n) { return n > 8 ? 16 : 8; }

/* ---- regions: every 2 MiB region a block of this input lay in -------------------------------- */

static uintptr_t region_set[REGION_SET];

static void remember_region(const void *p) {
  uintptr_t r = (uintptr_t)p & ~(uintptr_t)HAK_SS_MASK;
  size_t h = (size_t)((r >> HAK_SS_SHIFT) * 0x9e3779b97f4a7c15ull >> 52) & (REGION_SET - 1);
  for (size_t n = 0; n < REGION_SET; n++, h = (h + 1) & (REGION_SET - 1)) {
    if (region_set[h] == r) return;
    if (region_set[h] == 0) {
      region_set[h] = r;
      return;
    }
  }
}

/* Workers quiet only: a registered region is mapped, and a SuperSlab's magic is intact. */
static void check_regions(const char *when) {
  for (size_t i = 0; i < REGION_SET; i++) {
    uintptr_t r = region_set[i];
    if (r == 0) continue;
    unsigned kind = hak_registry_kind(r);
    if (kind == HAK_REGION_NONE) continue;
    unsigned char v;
    T_INVARIANT(mincore((void *)r, HAK_PAGE_SIZE, &v) == 0,
                "%s: region %#lx is registered (kind %u) but not mapped", when, (unsigned long)r,
                kind);
    if (kind == HAK_REGION_SS)
      T_INVARIANT(hak_registry_ss_peek(r) != NULL,
                  "%s: SuperSlab %#lx registered without its magic", when, (unsigned long)r);
  }
}

/* ---- workers ----------------------------------------------------------------------------------
 */

enum { W_FREE = 1, W_ALLOC, W_SYNC, W_EXIT };

typedef struct wreq_s {
  int op;
  blk_t b;     /* W_FREE: the block; W_ALLOC: req, align, key */
  int fn;      /* W_ALLOC: 0 malloc, 1 calloc, 2 memalign */
  bool tagged; /* W_FREE: a burst block, its pattern only at head and tail */
} wreq_t;

typedef struct worker_s {
  bool running;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t work, done_cv;
  wreq_t q[QCAP];
  uint64_t head, tail; /* q[head % QCAP] is handled next; a request leaves when done */
  blk_t reply;         /* W_ALLOC result */
} worker_t;

static worker_t workers[WORKERS];
static bool workers_init;

static void burst_check_tag(const blk_t *b);

static void worker_free(const blk_t *b, bool tagged) {
  if (tagged) burst_check_tag(b);
  else check_sampled(b, "worker free");
  hak_free(b->p);
}

static void worker_alloc(blk_t *b, int fn) {
  void *p = NULL;
  switch (fn) {
  case 0: p = hak_malloc(b->req); break;
  case 1: p = hak_calloc(1, b->req); break;
  default: p = hak_memalign(b->align, b->req); break;
  }
  T_INVARIANT(p != NULL, "worker allocation (fn %d) of %zu bytes failed", fn, b->req);
  b->p = p;
  if (fn == 1) check_zero(b->p, b->req, "worker calloc");
  b->usable = hak_usable_size(p);
  T_INVARIANT(b->usable >= b->req, "worker block %p: usable %zu < %zu", p, b->usable, b->req);
  block_fill(b);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->head == w->tail) pthread_cond_wait(&w->work, &w->mu);
    wreq_t r = w->q[w->head % QCAP];
    pthread_mutex_unlock(&w->mu);
    if (r.op == W_FREE) worker_free(&r.b, r.tagged);
    else if (r.op == W_ALLOC) worker_alloc(&r.b, r.fn);
    pthread_mutex_lock(&w->mu);
    if (r.op == W_ALLOC) w->reply = r.b;
    w->head++;
    pthread_cond_broadcast(&w->done_cv);
    if (r.op == W_EXIT) break;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL; /* thread exit: hakmem flushes the caches and orphans the runs */
}

static worker_t *worker(unsigned i) {
  if (!workers_init) {
    for (int j = 0; j < WORKERS; j++) {
      pthread_mutex_init(&workers[j].mu, NULL);
      pthread_cond_init(&workers[j].work, NULL);
      pthread_cond_init(&workers[j].done_cv, NULL);
    }
    workers_init = true;
  }
  return &workers[i % WORKERS];
}

/* Queues r (starting the worker if needed); returns its sequence number. */
static uint64_t w_send(worker_t *w, const wreq_t *r) {
  if (!w->running) {
    t_start(&w->thread, worker_main, w);
    w->running = true;
  }
  pthread_mutex_lock(&w->mu);
  while (w->tail - w->head == QCAP) pthread_cond_wait(&w->done_cv, &w->mu);
  w->q[w->tail % QCAP] = *r;
  uint64_t seq = ++w->tail;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
  return seq;
}

static void w_wait(worker_t *w, uint64_t seq) {
  pthread_mutex_lock(&w->mu);
  while (w->head < seq) pthread_cond_wait(&w->done_cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

static void w_sync(worker_t *w) {
  if (!w->running) return;
  wreq_t r = {.op = W_SYNC};
  w_wait(w, w_send(w, &r));
}

static void sync_all(void) {
  for (unsigned i = 0; i < WORKERS; i++) w_sync(worker(i));
}

static void w_exit(worker_t *w) {
  if (!w->running) return;
  wreq_t r = {.op = W_EXIT};
  w_send(w, &r);
  t_join(w->thread);
  w->running = false;
}

static void w_free(worker_t *w, const blk_t *b, bool tagged) {
  wreq_t r = {.op = W_FREE, .b = *b, .tagged = tagged};
  w_send(w, &r);
}

/* ---- the shadow model -------------------------------------------------------------------------
 */

static blk_t slot[SLOTS];
static uint64_t next_key;

static uint64_t new_key(void) { return ++next_key * 0x100000001ull + 0x5a5a; }

static bool overlaps(uintptr_t a, size_t an, uintptr_t b, size_t bn) {
  return a < b + bn && b < a + an;
}

/* Checks a block just handed out (by anyone) before it enters slot `self` (or a burst), and
 * records its usable size (b->usable: what the allocating worker saw, or 0). */
static void check_new(blk_t *b, int self, const char *what) {
  T_INVARIANT(b->p != NULL, "%s of %zu bytes returned NULL", what, b->req);
  T_INVARIANT(((uintptr_t)b->p & (b->align - 1)) == 0, "%s of %zu bytes: %p not aligned to %zu",
              what, b->req, (void *)b->p, b->align);
  T_INVARIANT(hak_owns(b->p), "%s: hak_owns(%p) is 0 for a new block", what, (void *)b->p);
  size_t u = hak_usable_size(b->p);
  T_INVARIANT(b->usable == 0 || u == b->usable, "%s: usable size of %p is %zu, was %zu", what,
              (void *)b->p, u, b->usable);
  T_INVARIANT(u >= b->req, "%s: usable size %zu of %p below the request %zu", what, u, (void *)b->p,
              b->req);
  b->usable = u;
  for (int i = 0; i < SLOTS; i++)
    T_INVARIANT(i == self || slot[i].p == NULL ||
                    !overlaps((uintptr_t)b->p, b->usable, (uintptr_t)slot[i].p, slot[i].usable),
                "%s: new block [%p, +%zu) overlaps live block [%p, +%zu) of slot %d", what,
                (void *)b->p, b->usable, (void *)slot[i].p, slot[i].usable, i);
  remember_region(b->p);
}

/* Takes a block allocated by this thread into slot i: checks, fills with a new key. */
static void place(int i, void *p, size_t req, size_t align, bool zeroed, const char *what) {
  blk_t b = {p, req, 0, align, new_key()};
  check_new(&b, i, what);
  if (zeroed) check_zero(b.p, req, what);
  block_fill(&b);
  slot[i] = b;
}

static void check_slot_full(int i, const char *what) {
  blk_t *b = &slot[i];
  T_INVARIANT(hak_owns(b->p), "%s: hak_owns(%p) is 0 for live slot %d", what, (void *)b->p, i);
  size_t u = hak_usable_size(b->p);
  T_INVARIANT(u == b->usable, "%s: usable size of %p changed from %zu to %zu", what, (void *)b->p,
              b->usable, u);
  block_check(b, SIZE_MAX, what);
}

static void free_slot(int i) {
  check_slot_full(i, "free");
  hak_free(slot[i].p);
  slot[i].p = NULL;
}

static void remote_free_slot(int i, unsigned w) {
  check_slot_full(i, "hand-off");
  w_free(worker(w), &slot[i], false);
  slot[i].p = NULL;
}

static void clear_slot(int i) {
  if (slot[i].p != NULL) free_slot(i);
}

/* After every operation: every live block is owned, keeps its usable size and its contents
 * (sampled: its head and its tail). */
static void check_slots(void) {
  for (int i = 0; i < SLOTS; i++) {
    blk_t *b = &slot[i];
    if (b->p == NULL) continue;
    T_INVARIANT(hak_owns(b->p), "hak_owns(%p) is 0 for live slot %d", (void *)b->p, i);
    size_t u = hak_usable_size(b->p);
    T_INVARIANT(u == b->usable, "usable size of live %p changed from %zu to %zu", (void *)b->p,
                b->usable, u);
    check_sampled(b, "live block");
  }
}

/* ---- operations ---------------------------------------------------------------------------------
 */

static void op_malloc(int i, size_t n) {
  clear_slot(i);
  place(i, hak_malloc(n), n, natural_align(n), false, "hak_malloc");
}

static void op_calloc(int i, size_t n, uint8_t split) {
  if (split == 0xFF) {
    errno = 0;
    void *p = hak_calloc(SIZE_MAX / 2 + 1, 2 + n % 7);
    T_INVARIANT(p == NULL && errno == ENOMEM, "overflowing hak_calloc gave %p, errno %d", p, errno);
    return;
  }
  size_t count = (size_t)1 << (split % 8);
  size_t elem = (n + count - 1) / count;
  if (elem == 0) count = split % 2; /* calloc(0, 0) and calloc(1, 0) */
  clear_slot(i);
  place(i, hak_calloc(count, elem), count * elem, 16, true, "hak_calloc");
}

static void op_realloc(int i, size_t n, uint8_t mode) {
  blk_t old = slot[i];
  if (old.p != NULL) check_slot_full(i, "realloc");
  if (mode % 4 == 2) {
    /* count * size overflows: NULL, ENOMEM, the block untouched. */
    errno = 0;
    void *q = hak_reallocarray(old.p, SIZE_MAX / 4 + 1, 8);
    T_INVARIANT(q == NULL && errno == ENOMEM, "overflowing hak_reallocarray gave %p, errno %d", q,
                errno);
    if (old.p != NULL) check_slot_full(i, "failed reallocarray");
    return;
  }
  if (mode % 4 == 3 && old.p != NULL) {
    /* A small change of the current request: mostly in place. */
    long d = (long)(n % 33) - 16;
    n = (long)old.req + d > 0 ? (size_t)((long)old.req + d) : 1;
  }
  void *q;
  if (mode % 4 == 1 && n % 4 == 0 && n > 0) {
    q = hak_reallocarray(old.p, n / 4, 4);
  } else {
    q = hak_realloc(old.p, n);
  }
  slot[i].p = NULL;
  if (n == 0 && old.p != NULL) {
    T_INVARIANT(q == NULL, "hak_realloc(%p, 0) returned %p instead of freeing", (void *)old.p, q);
    return;
  }
  blk_t b = {q, n, 0, 16, new_key()};
  check_new(&b, i, "hak_realloc");
  if (old.p != NULL) {
    /* The prefix moves along: every byte the old block could hold that fits the new one. */
    blk_t moved = b;
    moved.key = old.key;
    moved.usable = old.usable;
    block_check(&moved, n, "realloc prefix");
  }
  block_fill(&b);
  slot[i] = b;
}

static void op_aligned(int i, uint8_t fn, uint8_t a, size_t n) {
  size_t align = align_of(a);
  clear_slot(i);
  void *p = NULL;
  switch (fn % 4) {
  case 0: p = hak_memalign(align, n); break;
  case 1: p = hak_aligned_alloc(align, n); break;
  case 2: {
    int rc = hak_posix_memalign(&p, align, n);
    T_INVARIANT(rc == 0, "hak_posix_memalign(%zu, %zu) failed: %d", align, n, rc);
    break;
  }
  default: {
    /* A non-power-of-two alignment: posix_memalign and aligned_alloc refuse it, memalign
     * rounds it up to the next power of two. */
    size_t odd = align + align / 2;
    void *keep = &slot[i];
    int rc = hak_posix_memalign(&keep, odd, n);
    T_INVARIANT(rc == EINVAL && keep == (void *)&slot[i], "hak_posix_memalign(%zu): %d", odd, rc);
    errno = 0;
    T_INVARIANT(hak_aligned_alloc(odd, n) == NULL && errno == EINVAL, "hak_aligned_alloc(%zu)",
                odd);
    p = hak_memalign(odd, n);
    align *= 2;
    break;
  }
  }
  size_t need = natural_align(n) > align ? natural_align(n) : align;
  place(i, p, n, need, false, "aligned allocation");
}

static void op_worker_alloc(int i, unsigned w, uint8_t fn, size_t n) {
  clear_slot(i);
  wreq_t r = {.op = W_ALLOC, .fn = fn % 3, .b = {.req = n, .key = new_key()}};
  r.b.align = r.fn == 2 ? (size_t)32 << (fn / 3 % 8) : 1;
  worker_t *wk = worker(w);
  w_wait(wk, w_send(wk, &r));
  pthread_mutex_lock(&wk->mu);
  blk_t b = wk->reply;
  pthread_mutex_unlock(&wk->mu);
  b.align = r.fn == 2 ? (natural_align(n) > r.b.align ? natural_align(n) : r.b.align)
                      : r.fn == 1 ? 16 : natural_align(n);
  check_new(&b, i, "worker allocation");
  block_check(&b, SIZE_MAX, "worker allocation");
  slot[i] = b;
}

static void op_fill(int i) {
  if (slot[i].p == NULL) return;
  check_slot_full(i, "fill");
  slot[i].key = new_key();
  block_fill(&slot[i]);
}

/* ---- burst ------------------------------------------------------------------------------------
 */

typedef struct iv_s {
  uintptr_t lo, hi;
  int who; /* burst index, or -1 - slot */
} iv_t;

static blk_t burst[BURST_MAX];
static iv_t ivs[BURST_MAX + SLOTS];
static uint16_t order[BURST_MAX];

static int iv_cmp(const void *a, const void *b) {
  const iv_t *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Head and tail of each burst block carry its pattern (the whole block would cost too much). */
static size_t tag_len(const blk_t *b) { return b->usable < 64 ? b->usable : 64; }

static void burst_tag(blk_t *b) {
  t_fill_range(b->p, 0, tag_len(b), b->key);
  t_fill_range(b->p, b->usable - tag_len(b), b->usable, b->key);
}

static void burst_check_tag(const blk_t *b) {
  check_pattern(b, 0, tag_len(b), "burst block");
  check_pattern(b, b->usable - tag_len(b), b->usable, "burst block");
}

static uint32_t xorshift(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static void op_burst(size_t n, uint16_t count, uint8_t fn, uint8_t ord, uint8_t arg) {
  size_t k = 1 + count % BURST_MAX;
  size_t per = n + 64;
  if (k * per > BURST_BYTES) k = BURST_BYTES / per ? BURST_BYTES / per : 1;
  size_t align = (size_t)32 << (fn / 4 % 8);
  for (size_t j = 0; j < k; j++) {
    blk_t *b = &burst[j];
    void *p;
    b->req = fn % 4 == 3 ? n + j % 64 : n;
    switch (fn % 4) {
    case 1: p = hak_calloc(1, b->req); b->align = 16; break;
    case 2: p = hak_memalign(align, b->req); b->align = align; break;
    default: p = hak_malloc(b->req); b->align = natural_align(b->req); break;
    }
    T_INVARIANT(p != NULL, "burst allocation %zu of %zu bytes failed", j, b->req);
    b->p = p;
    b->key = new_key();
    T_INVARIANT(((uintptr_t)p & (b->align - 1)) == 0,
                "burst block %p of %zu bytes not aligned to %zu", p, b->req, b->align);
    T_INVARIANT(hak_owns(p), "burst block %p: hak_owns is 0", p);
    b->usable = hak_usable_size(p);
    T_INVARIANT(b->usable >= b->req, "burst block %p: usable %zu < %zu", p, b->usable, b->req);
    if (fn % 4 == 1) check_zero(b->p, b->req < 256 ? b->req : 256, "burst calloc");
    burst_tag(b);
    remember_region(p);
  }
  /* No two live blocks overlap: burst blocks and slots, sorted by address. */
  size_t m = 0;
  for (size_t j = 0; j < k; j++)
    ivs[m++] = (iv_t){(uintptr_t)burst[j].p, (uintptr_t)burst[j].p + burst[j].usable, (int)j};
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL)
      ivs[m++] = (iv_t){(uintptr_t)slot[i].p, (uintptr_t)slot[i].p + slot[i].usable, -1 - i};
  qsort(ivs, m, sizeof ivs[0], iv_cmp);
  for (size_t j = 1; j < m; j++)
    T_INVARIANT(ivs[j - 1].hi <= ivs[j].lo,
                "burst: blocks [%#lx, %#lx) (%d) and [%#lx, %#lx) (%d) overlap",
                (unsigned long)ivs[j - 1].lo, (unsigned long)ivs[j - 1].hi, ivs[j - 1].who,
                (unsigned long)ivs[j].lo, (unsigned long)ivs[j].hi, ivs[j].who);
  for (size_t j = 0; j < k; j++) burst_check_tag(&burst[j]);
  /* Free order. */
  size_t o = 0;
  switch (ord % 6) {
  case 1:
    for (size_t j = k; j-- > 0;) order[o++] = (uint16_t)j;
    break;
  case 2:
    for (size_t j = 0; j < k; j += 2) order[o++] = (uint16_t)j;
    for (size_t j = 1; j < k; j += 2) order[o++] = (uint16_t)j;
    break;
  case 3: {
    uint32_t s = 0x9e3779b9u ^ (uint32_t)arg * 0x01000193u;
    for (size_t j = 0; j < k; j++) order[o++] = (uint16_t)j;
    for (size_t j = k; j > 1; j--) {
      size_t r = xorshift(&s) % j;
      uint16_t t = order[j - 1];
      order[j - 1] = order[r];
      order[r] = t;
    }
    break;
  }
  default:
    for (size_t j = 0; j < k; j++) order[o++] = (uint16_t)j;
    break;
  }
  /* 4: every other block goes to worker arg; 5: all of them. */
  for (size_t j = 0; j < k; j++) {
    blk_t *b = &burst[order[j]];
    if (ord % 6 == 5 || (ord % 6 == 4 && j % 2)) {
      w_free(worker(arg), b, true);
    } else {
      burst_check_tag(b);
      hak_free(b->p);
    }
    b->p = NULL;
  }
}

static void op_trim(void) {
  sync_all();
  hak_trim();
  check_regions("after hak_trim");
}

static void op_free_all(uint8_t mode) {
  for (int i = 0; i < SLOTS; i++) {
    if (slot[i].p == NULL) continue;
    if (mode % 2) remote_free_slot(i, mode / 2);
    else free_slot(i);
  }
}

/* ---- the input ----------------------------------------------------------------------------------
 */

enum {
  OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_ALIGNED, OP_FREE, OP_FREE_REMOTE, OP_WORKER_ALLOC,
  OP_WORKER_EXIT, OP_CHECK, OP_FILL, OP_BURST, OP_TRIM, OP_SYNC, OP_FREE_ALL, OP_COUNT
};

static void run_op(f_in_t *in) {
  uint8_t op = f_u8(in) % OP_COUNT;
  switch (op) {
  case OP_MALLOC: {
    int i = (int)f_below(in, SLOTS);
    op_malloc(i, f_size(in));
    break;
  }
  case OP_CALLOC: {
    int i = (int)f_below(in, SLOTS);
    size_t n = f_size(in);
    op_calloc(i, n, f_u8(in));
    break;
  }
  case OP_REALLOC: {
    int i = (int)f_below(in, SLOTS);
    size_t n = f_size(in);
    op_realloc(i, n, f_u8(in));
    break;
  }
  case OP_ALIGNED: {
    int i = (int)f_below(in, SLOTS);
    uint8_t fn = f_u8(in), a = f_u8(in);
    op_aligned(i, fn, a, f_size(in));
    break;
  }
  case OP_FREE: {
    int i = (int)f_below(in, SLOTS);
    clear_slot(i);
    break;
  }
  case OP_FREE_REMOTE: {
    int i = (int)f_below(in, SLOTS);
    unsigned w = f_u8(in);
    if (slot[i].p != NULL) remote_free_slot(i, w);
    break;
  }
  case OP_WORKER_ALLOC: {
    int i = (int)f_below(in, SLOTS);
    unsigned w = f_u8(in);
    uint8_t fn = f_u8(in);
    op_worker_alloc(i, w, fn, f_size(in));
    break;
  }
  case OP_WORKER_EXIT:
    w_exit(worker(f_u8(in)));
    break;
  case OP_CHECK: {
    int i = (int)f_below(in, SLOTS);
    if (slot[i].p != NULL) check_slot_full(i, "check");
    break;
  }
  case OP_FILL:
    op_fill((int)f_below(in, SLOTS));
    break;
  case OP_BURST: {
    size_t n = f_size(in);
    uint16_t count = f_u16(in);
    uint8_t fn = f_u8(in), ord = f_u8(in), arg = f_u8(in);
    op_burst(n, count, fn, ord, arg);
    break;
  }
  case OP_TRIM:
    op_trim();
    break;
  case OP_SYNC:
    sync_all();
    break;
  default:
    op_free_all(f_u8(in));
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Workers are quiet between inputs: the last one ended with a sync. */
  uint64_t live0 = t_live_blocks();
  memset(region_set, 0, sizeof region_set);
  next_key = 0;
  f_in_t in = f_in(data, size);
  for (int ops = 0; ops < MAX_OPS && f_more(&in); ops++) {
    run_op(&in);
    check_slots();
  }
  for (int i = 0; i < SLOTS; i++) clear_slot(i);
  sync_all();
  uint64_t live = t_live_blocks();
  T_INVARIANT(live == live0, "live_blocks is %llu after the input, %llu before",
              (unsigned long long)live, (unsigned long long)live0);
  hak_trim();
  check_regions("after the input");
  return 0;
}
