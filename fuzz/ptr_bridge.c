/* Fuzz harness of the pointer bridge (src/tiny/ptr_bridge.h and its callers in fast.h and
 * api.c): user pointer <-> base pointer, header encode/decode.
 *
 * One thread per input allocates blocks of every slab class (tiny and mid) into slots, plain and
 * aligned (memalign family, alignments 8 .. 4096, served inside slab blocks), reallocates and
 * frees them, and also pops blocks straight off its TLS SLL and encodes them itself with
 * hak_bridge_out(). The harness knows each slot's request, alignment and expected class. After
 * every operation, for every live slot:
 *   - the block it lies in is a carved block of a bound run of the expected class, owned by
 *     this thread (registry -> SuperSlab -> run geometry); a plain block's user pointer is
 *     exactly base + HAK_HDR_SIZE (the offset applied once), an aligned one sits inside its
 *     block with its marker (magic, inner user pointer) two words below it;
 *   - user pointers are 16-aligned, aligned ones aligned as asked; the request fits the block;
 *   - header mode: the block's header is HAK_HDR_ALLOC(class);
 *   - decode(encode(b)) == b: hak_bridge_base(user) == base and hak_bridge_out(base) == user,
 *     called directly on the live block (re-encoding a live block changes nothing);
 *   - hak_usable_size() == block end - user pointer (the class size for a plain block), at
 *     least the request; hak_owns() accepts it; its fill pattern is intact (head and tail of
 *     the usable bytes), so no block overlaps another or its header.
 * After every free: the base pointer (of the inner block, for an aligned pointer) is on top of
 * the TLS SLL unless the free spilled (decode applied exactly once on the way in); header mode:
 * the header reads HAK_HDR_FREE(class) and hak_owns() refuses the pointer. After the input:
 * every block is freed and hakmem's live block count is back where it was.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 slot class size16 api        allocate a plain block of a size in class (api: malloc, or
 *                                  calloc up to CALLOC_MAX bytes)
 *   1 slot class size16 align api  aligned allocation (align: 1 << (3 + align % 10); api:
 *                                  memalign, aligned_alloc, posix_memalign, valloc, pvalloc)
 *   2 slot                         free slot
 *   3 slot class                   pop a block of class off the TLS SLL (refill if empty) and
 *                                  encode it with hak_bridge_out(), as malloc does
 *   4 slot class size16            realloc slot to a size in class
 *   5                              free every slot */
#include "fast.h"
#include "fuzz.h"
#include "fuzz_seq.h"

#define SLOTS 48
#define MAX_OPS 256
#define FILL_HEAD 64    /* pattern bytes at the start of a block */
#define FILL_TAIL 16    /* ... and at the end of its usable bytes */
#define CALLOC_MAX 8192 /* larger requests use malloc: zeroing whole mid blocks is slow */

typedef struct slot_s {
  uint8_t *p;   /* user pointer; NULL when the slot is empty */
  size_t n;     /* bytes requested */
  size_t align; /* alignment asked for; 0 for a plain allocation */
  unsigned cls; /* class of the block that holds it */
  uint64_t key; /* fill pattern key */
} slot_t;

static slot_t slot[SLOTS];
static uint64_t next_key;

/* ---- geometry ------------------------------------------------------------------------------- */

#if !HAKMEM_TINY_HEADERLESS
F_NOCOV static uint64_t header_of(const uint8_t *base) {
  uint64_t h;
  memcpy(&h, base, sizeof h);
  return h;
}
#endif

/* The block a live slot lies in, after checking the run it belongs to. */
F_NOCOV static uint8_t *block_of(const slot_t *s) {
  uintptr_t u = (uintptr_t)s->p;
  T_INVARIANT(hak_registry_kind(u) == HAK_REGION_SS, "live %p (%zu bytes) not in a SuperSlab", s->p,
              s->n);
  T_INVARIANT(hak_registry_ss_peek(u) == hak_ss_of(s->p), "live %p: SuperSlab magic bad", s->p);
  hak_slab_t *m = t_run_of(s->p);
  T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == s->cls,
              "live %p: run state %d class %d, expected class %u", s->p, m->state, m->class_idx,
              s->cls);
  T_INVARIANT(m->stride == hak_stride_of((int)s->cls), "live %p: stride %u", s->p, m->stride);
  T_INVARIANT(hak_owner_of(m) == hak_tc, "live %p: run owned by %p", s->p, (void *)hak_owner_of(m));
  uintptr_t d = (uintptr_t)m->data;
  T_INVARIANT(u >= d + HAK_HDR_SIZE && u < d + (uintptr_t)m->capacity * m->stride,
              "live %p outside its run's blocks", s->p);
  uintptr_t idx = (u - d) / m->stride;
  T_INVARIANT(idx < m->carved, "live %p in uncarved block %lu", s->p, (unsigned long)idx);
  return (uint8_t *)(d + idx * m->stride);
}

/* ---- fill patterns -------------------------------------------------------------------------- */

F_NOCOV static size_t head_len(const slot_t *s) { return s->n < FILL_HEAD ? s->n : FILL_HEAD; }

static void fill(slot_t *s, size_t usable) {
  size_t h = head_len(s);
  size_t t = usable - h < FILL_TAIL ? usable - h : FILL_TAIL;
  t_fill_key(s->p, h, s->key);
  t_fill_key(s->p + usable - t, t, ~s->key);
}

F_NOCOV static void verify_fill(const slot_t *s, size_t usable) {
  size_t h = head_len(s);
  size_t t = usable - h < FILL_TAIL ? usable - h : FILL_TAIL;
  size_t at = t_find_bad_key(s->p, h, s->key);
  T_INVARIANT(at == SIZE_MAX, "live %p (class %u): byte %zu of its head overwritten", s->p, s->cls,
              at);
  at = t_find_bad_key(s->p + usable - t, t, ~s->key);
  T_INVARIANT(at == SIZE_MAX, "live %p (class %u): byte %zu of its tail overwritten", s->p, s->cls,
              at);
}

/* ---- checks --------------------------------------------------------------------------------- */

F_NOCOV static void check_marker(const slot_t *s, uint8_t *base) {
  uint8_t *inner = base + HAK_HDR_SIZE;
  T_INVARIANT(s->p >= inner + 2 * sizeof(uint64_t), "aligned %p too close to its block %p", s->p,
              base);
  uint64_t magic;
  uint8_t *in;
  memcpy(&magic, s->p - 16, sizeof magic);
  memcpy(&in, s->p - 8, sizeof in);
  T_INVARIANT(magic == (HAK_ALIGN_MAGIC ^ (uintptr_t)s->p), "aligned %p: marker magic %#llx", s->p,
              (unsigned long long)magic);
  T_INVARIANT(in == inner, "aligned %p: marker names %p, block's user pointer is %p", s->p,
              (void *)in, (void *)inner);
}

/* decode(encode(b)) == b on a live block: re-encoding it must leave it as it is. */
F_NOCOV static void check_round_trip(const slot_t *s, uint8_t *base) {
  uint8_t *inner = base + HAK_HDR_SIZE;
  T_INVARIANT(hak_bridge_base(inner) == base, "bridge_base(%p) = %p, block %p", (void *)inner,
              hak_bridge_base(inner), (void *)base);
  void *out = hak_bridge_out(base, s->cls, hak_stride_of((int)s->cls));
  T_INVARIANT(out == inner, "bridge_out(%p) = %p, expected %p", (void *)base, out, (void *)inner);
#if !HAKMEM_TINY_HEADERLESS
  T_INVARIANT(header_of(base) == HAK_HDR_ALLOC(s->cls), "live %p: header %#llx after bridge_out",
              s->p, (unsigned long long)header_of(base));
#endif
}

F_NOCOV static void check_slot(const slot_t *s) {
  uint8_t *base = block_of(s);
  uint32_t stride = hak_stride_of((int)s->cls);
  T_INVARIANT(((uintptr_t)s->p & 15) == 0, "user pointer %p not 16-aligned", s->p);
  if (s->align)
    T_INVARIANT(((uintptr_t)s->p & (s->align - 1)) == 0, "%p not %zu-aligned", s->p, s->align);
  if (s->p != base + HAK_HDR_SIZE) {
    T_INVARIANT(s->align > 16, "plain block %p is not its block's user pointer %p", s->p,
                base + HAK_HDR_SIZE);
    check_marker(s, base);
  }
  T_INVARIANT(s->p + s->n <= base + stride, "%p: %zu bytes do not fit the block", s->p, s->n);
#if !HAKMEM_TINY_HEADERLESS
  T_INVARIANT(header_of(base) == HAK_HDR_ALLOC(s->cls), "live %p: header %#llx, expected %#llx",
              s->p, (unsigned long long)header_of(base), (unsigned long long)HAK_HDR_ALLOC(s->cls));
#endif
  size_t usable = hak_usable_size(s->p);
  T_INVARIANT(usable == (size_t)(base + stride - s->p),
              "usable size of %p: %zu, block end says %zu", s->p, usable,
              (size_t)(base + stride - s->p));
  T_INVARIANT(usable >= s->n, "usable size of %p: %zu < %zu", s->p, usable, s->n);
  T_INVARIANT(hak_owns(s->p), "hak_owns(%p) is 0 for a live block", s->p);
  check_round_trip(s, base);
  verify_fill(s, usable);
}

F_NOCOV static void check_all(void) {
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) check_slot(&slot[i]);
}

/* ---- operations ----------------------------------------------------------------------------- */

static void set_slot(slot_t *s, void *p, size_t n, size_t align, unsigned cls) {
  T_INVARIANT(p != NULL, "allocation of %zu bytes (align %zu) failed", n, align);
  s->p = p;
  s->n = n;
  s->align = align;
  s->cls = cls;
  s->key = ++next_key;
  fill(s, hak_usable_size(p));
}

static uint64_t spills_of(unsigned c) {
  return atomic_load_explicit(&hak_tc->stat.spills[c], memory_order_relaxed);
}

/* Frees a slot and checks what the free did to the block and the TLS SLL. */
static void free_slot(slot_t *s) {
  check_slot(s);
  uint8_t *base = block_of(s);
  unsigned c = s->cls;
  hak_sll_t *l = &hak_tc->sll[c];
  uint32_t count0 = hak_sll_count(l);
  uint64_t spills0 = spills_of(c);
  hak_free(s->p);
  if (spills_of(c) == spills0) {
    T_INVARIANT(l->head == (void *)base, "free(%p) pushed %p, its block starts at %p", s->p,
                l->head, (void *)base);
    T_INVARIANT(hak_sll_count(l) == count0 + 1, "free(%p): SLL count %u -> %u", s->p, count0,
                hak_sll_count(l));
  }
#if !HAKMEM_TINY_HEADERLESS
  hak_slab_t *m = t_run_of(base);
  if (m->state == HAK_SLAB_HEAD && m->class_idx == c) {
    T_INVARIANT(header_of(base) == HAK_HDR_FREE(c), "freed %p: header %#llx, expected %#llx", s->p,
                (unsigned long long)header_of(base), (unsigned long long)HAK_HDR_FREE(c));
    T_INVARIANT(!hak_owns(s->p), "hak_owns(%p) accepts a freed block", s->p);
  }
#endif
  s->p = NULL;
}

static void op_alloc(f_in_t *in, slot_t *s) {
  unsigned c = f_below(in, HAK_NUM_CLASSES);
  size_t n = f_size_in_class(c, f_u16(in));
  bool zero = (f_u8(in) & 1) && n <= CALLOC_MAX;
  if (s->p != NULL) free_slot(s);
  uint8_t *p = zero ? hak_calloc(1, n) : hak_malloc(n);
  if (zero && p != NULL)
    for (size_t i = 0; i < n && i < FILL_HEAD; i++)
      T_INVARIANT(p[i] == 0, "calloc(%zu) = %p: byte %zu is %u", n, (void *)p, i, p[i]);
  set_slot(s, p, n, 0, c);
}

/* The class the memalign family serves a request from, as api.c's alloc_aligned does. */
static unsigned aligned_class(size_t n, size_t align) {
  return hak_size_class(align <= 16 ? n : n + align);
}

static void *aligned_call(unsigned api, size_t *n, size_t *align) {
  switch (api % 5) {
  case 0: return hak_memalign(*align, *n);
  case 1: return hak_aligned_alloc(*align, *n);
  case 2: {
    void *p = NULL;
    int rc = hak_posix_memalign(&p, *align, *n);
    T_INVARIANT(rc == 0, "posix_memalign(%zu, %zu) = %d", *align, *n, rc);
    return p;
  }
  case 3:
    *align = HAK_PAGE_SIZE;
    return hak_valloc(*n);
  default: {
    size_t req = *n; /* pvalloc rounds the request up to whole pages, 0 to one page */
    *align = HAK_PAGE_SIZE;
    *n = req == 0 ? HAK_PAGE_SIZE : (req + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1);
    return hak_pvalloc(req);
  }
  }
}

static void op_aligned(f_in_t *in, slot_t *s) {
  unsigned c = f_below(in, HAK_NUM_CLASSES);
  size_t n = f_size_in_class(c, f_u16(in));
  size_t align = (size_t)1 << (3 + f_u8(in) % 10);
  unsigned api = f_u8(in);
  /* Stay inside slab blocks: the request plus the alignment (and pvalloc's rounding). */
  size_t room = HAK_SLAB_REQ_MAX - 2 * HAK_PAGE_SIZE;
  n %= room;
  if (s->p != NULL) free_slot(s);
  void *p = aligned_call(api, &n, &align);
  set_slot(s, p, n, align, aligned_class(n, align));
}

/* Does what malloc does, by hand: pop (or refill) the TLS SLL, then encode. */
static void op_manual(f_in_t *in, slot_t *s) {
  unsigned c = f_below(in, HAK_NUM_CLASSES);
  if (s->p != NULL) free_slot(s);
  hak_tcache_t *tc = hak_tc;
  uint8_t *b = hak_sll_pop(&tc->sll[c]);
  if (b == NULL) b = hak_refill_slow(tc, (int)c);
  T_INVARIANT(b != NULL, "refill of class %u failed", c);
  T_INVARIANT(((uintptr_t)b & 15) == (16 - HAK_HDR_SIZE) % 16, "SLL of class %u gave %p", c,
              (void *)b);
#if !HAKMEM_TINY_HEADERLESS
  T_INVARIANT(header_of(b) != HAK_HDR_ALLOC(c), "SLL block %p has the in-use header", (void *)b);
#endif
  hak_stat_inc(tc->stat.allocs[c]);
  uint8_t *p = hak_bridge_out(b, c, hak_stride_of((int)c));
  T_INVARIANT(p == b + HAK_HDR_SIZE, "bridge_out(%p) = %p", (void *)b, (void *)p);
  set_slot(s, p, hak_class_size((int)c), 0, c);
}

static void op_realloc(f_in_t *in, slot_t *s) {
  unsigned c = f_below(in, HAK_NUM_CLASSES);
  size_t n = f_size_in_class(c, f_u16(in));
  if (n == 0) n = 1; /* realloc(p, 0) frees */
  if (s->p == NULL) {
    set_slot(s, hak_realloc(NULL, n), n, 0, c);
    return;
  }
  check_slot(s);
  size_t keep = head_len(s) < n ? head_len(s) : n;
  uint64_t key = s->key;
  uint8_t *q = hak_realloc(s->p, n);
  T_INVARIANT(q != NULL, "realloc(%p, %zu) failed", (void *)s->p, n);
  size_t at = t_find_bad_key(q, keep, key);
  T_INVARIANT(at == SIZE_MAX, "realloc(%p, %zu) = %p: byte %zu not kept", (void *)s->p, n,
              (void *)q, at);
  if (q == s->p) {
    set_slot(s, q, n, s->align, s->cls);
  } else {
    set_slot(s, q, n, 0, c);
  }
}

static void free_all(void) {
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) free_slot(&slot[i]);
}

static void thread_start(void) {
  hak_free(hak_malloc(1)); /* a live thread cache: op_manual uses it directly */
}

/* Runs one operation; the input runs in one thread, which never ends early. */
static bool run_op(f_in_t *in, bool may_end) {
  (void)may_end;
  unsigned op = f_u8(in) % 6;
  slot_t *s = op == 5 ? NULL : &slot[f_below(in, SLOTS)];
  switch (op) {
  case 0: op_alloc(in, s); break;
  case 1: op_aligned(in, s); break;
  case 2: if (s->p != NULL) free_slot(s); break;
  case 3: op_manual(in, s); break;
  case 4: op_realloc(in, s); break;
  default: free_all(); break;
  }
  check_all();
  return true;
}

static const f_seq_t seq = {.op = run_op, .thread_start = thread_start, .finish = free_all,
                            .max_ops = MAX_OPS, .max_threads = 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return f_seq_run(&seq, data, size);
}
