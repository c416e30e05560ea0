/* Pointer bridge (src/tiny/ptr_bridge.h) and the size classes it serves.
 *
 * - decode(encode(b)) == b for a block of every class, and user pointers are 16-aligned;
 * - header mode: the header word is HAK_HDR_ALLOC(c) while a block is in use and
 *   HAK_HDR_FREE(c) once freed, and hak_bridge_in() refuses any block whose header is not the
 *   in-use header of its class (free header, other class, garbage);
 * - hak_size_class(n) is the smallest class whose usable size holds n, for every request up to
 *   HAK_SLAB_REQ_MAX (every entry of the tiny table included), and no class above 128 bytes
 *   wastes 25% or more of a block; runs hold about eight blocks; TLS capacities are ordered. */
#include "unit.h"

/* ---- encode / decode ----------------------------------------------------------------------- */

static void check_round_trip(int c) {
  size_t n = t_size_of_class(c);
  uint32_t stride = hak_stride_of(c);
  void *keep[3];
  for (int i = 0; i < 3; i++) {
    void *p = hak_malloc(n);
    T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
    T_CHECK(((uintptr_t)p & 15) == 0, "class %d: user pointer %p not 16-aligned", c, p);
    void *base = hak_bridge_base(p);
    T_CHECK((uint8_t *)p - (uint8_t *)base == HAK_HDR_SIZE, "class %d: base %p user %p", c, base,
            p);
    /* The allocator's view: base is exactly a block start of a run of this class. */
    hak_slab_t *m = t_run_of(base);
    T_CHECK(m->class_idx == c, "class %d: block %p sits in a run of class %d", c, p, m->class_idx);
    T_CHECK(m->stride == stride, "class %d: run stride %u, hak_stride_of %u", c, m->stride, stride);
    T_CHECK(t_block_index(m, base) >= 0, "class %d: base %p not on a block boundary", c, base);
    T_CHECK(hak_usable_size(p) >= n, "class %d: usable %zu < %zu", c, hak_usable_size(p), n);
    /* encode(decode(p)) == p and decode(encode(b)) == b; encoding a live block again only
     * rewrites the header it already has. */
    void *again = hak_bridge_out(base, (unsigned)c, stride);
    T_CHECK(again == p, "class %d: bridge_out(bridge_base(%p)) = %p", c, p, again);
    T_CHECK(hak_bridge_base(hak_bridge_out(base, (unsigned)c, stride)) == base,
            "class %d: bridge_base(bridge_out(b)) != b", c);
#if !HAKMEM_TINY_HEADERLESS
    T_CHECK(*(uint64_t *)base == HAK_HDR_ALLOC(c), "class %d: header %#llx after malloc", c,
            (unsigned long long)*(uint64_t *)base);
#endif
    keep[i] = p;
  }
  for (int i = 0; i < 3; i++) hak_free(keep[i]);
}

/* Header mode: the header word follows the block's life, and bridge_in checks it. */
static void check_headers(int c) {
#if !HAKMEM_TINY_HEADERLESS
  size_t n = t_size_of_class(c);
  uint32_t stride = hak_stride_of(c);
  /* `hold` keeps the run bound while `p` is examined after its free. */
  void *hold = hak_malloc(n);
  void *p = hak_malloc(n);
  T_CHECK(hold != NULL && p != NULL, "hak_malloc(%zu) failed", n);
  uint64_t *hdr = (uint64_t *)hak_bridge_base(p);
  T_CHECK(*hdr == HAK_HDR_ALLOC(c), "class %d: header %#llx, expected ALLOC", c,
          (unsigned long long)*hdr);

  /* bridge_in refuses anything but the in-use header of this class, and leaves it alone. */
  const uint64_t bad[] = {HAK_HDR_FREE(c), HAK_HDR_ALLOC((c + 1) % HAK_NUM_CLASSES),
                          HAK_HDR_FREE((c + 1) % HAK_NUM_CLASSES), 0, 0xDEADBEEFCAFEF00Dull,
                          HAK_HDR_ALLOC(c) ^ ((uint64_t)1 << 40), HAK_HDR_TAG_ALLOC};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (bad[i] == HAK_HDR_ALLOC(c)) continue; /* class 0: HAK_HDR_TAG_ALLOC is ALLOC(0) */
    *hdr = bad[i];
    T_CHECK(!hak_bridge_in(hdr, (unsigned)c, stride), "class %d: bridge_in accepted header %#llx",
            c, (unsigned long long)bad[i]);
    T_CHECK(*hdr == bad[i], "class %d: refused bridge_in changed the header", c);
  }
  /* The in-use header passes once and turns into the free header; a second pass is refused. */
  *hdr = HAK_HDR_ALLOC(c);
  T_CHECK(hak_bridge_in(hdr, (unsigned)c, stride), "class %d: bridge_in refused ALLOC", c);
  T_CHECK(*hdr == HAK_HDR_FREE(c), "class %d: header %#llx after bridge_in", c,
          (unsigned long long)*hdr);
  T_CHECK(!hak_bridge_in(hdr, (unsigned)c, stride), "class %d: bridge_in accepted twice", c);
  /* Back to in use (bridge_out is the only encoder), then a real free. */
  T_CHECK(hak_bridge_out(hdr, (unsigned)c, stride) == p, "class %d: bridge_out", c);
  T_CHECK(*hdr == HAK_HDR_ALLOC(c), "class %d: bridge_out did not restore ALLOC", c);
  T_CHECK(hak_owns(p), "class %d: live block not owned", c);
  hak_free(p);
  T_CHECK(*hdr == HAK_HDR_FREE(c), "class %d: header %#llx after free, expected FREE", c,
          (unsigned long long)*hdr);
  T_CHECK(!hak_owns(p), "class %d: freed block still reported live", c);
  /* Reallocating it (LIFO: the block just freed comes back first) marks it in use again. */
  void *q = hak_malloc(n);
  T_CHECK(q == p, "class %d: LIFO reuse gave %p, freed %p", c, q, p);
  T_CHECK(*hdr == HAK_HDR_ALLOC(c), "class %d: header %#llx after reuse", c,
          (unsigned long long)*hdr);
  hak_free(q);
  hak_free(hold);
#else
  /* Headerless: nothing before the user pointer, and bridge_in has nothing to refuse. */
  void *p = hak_malloc(t_size_of_class(c));
  T_CHECK(p != NULL, "hak_malloc failed");
  T_CHECK(hak_bridge_base(p) == p, "headerless base != user");
  hak_free(p);
#endif
}

/* Every request size gets a 16-aligned pointer with room for the request. */
static void check_alignment_all_sizes(void) {
  static void *ptrs[4097];
  for (size_t n = 0; n <= 4096; n++) {
    void *p = hak_malloc(n);
    T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
    T_CHECK(((uintptr_t)p & 15) == 0, "hak_malloc(%zu) = %p not 16-aligned", n, p);
    T_CHECK(hak_usable_size(p) >= n, "hak_malloc(%zu): usable %zu", n, hak_usable_size(p));
    memset(p, 0x5A, n);
    ptrs[n] = p;
  }
  for (size_t n = 0; n <= 4096; n++) {
    const uint8_t *b = ptrs[n];
    for (size_t i = 0; i < n; i++)
      T_CHECK(b[i] == 0x5A, "hak_malloc(%zu): byte %zu overwritten by a neighbour", n, i);
    hak_free(ptrs[n]);
  }
}

/* ---- size classes --------------------------------------------------------------------------- */

static void check_class_of(size_t n) {
  unsigned c = hak_size_class(n);
  T_CHECK(c < HAK_NUM_CLASSES, "hak_size_class(%zu) = %u out of range", n, c);
  T_CHECK(hak_class_size((int)c) >= n, "hak_size_class(%zu) = %u holds only %zu bytes", n, c,
          hak_class_size((int)c));
  T_CHECK(c == 0 || hak_class_size((int)c - 1) < n,
          "hak_size_class(%zu) = %u, but class %u (%zu bytes) is smaller and fits", n, c, c - 1,
          hak_class_size((int)c - 1));
  if (n <= HAK_TINY_MAX + HAK_HDR_SIZE)
    T_CHECK(c < TINY_NUM_CLASSES, "tiny request %zu mapped to non-tiny class %u", n, c);
}

static void check_classes(void) {
  for (size_t n = 0; n <= 4096; n++) check_class_of(n);
  for (size_t n = 4096; n <= HAK_SLAB_REQ_MAX; n += 61) check_class_of(n);
  /* Both sides of every class boundary, and the very end. */
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    size_t s = hak_class_size(c);
    check_class_of(s);
    if (s + 1 <= HAK_SLAB_REQ_MAX) check_class_of(s + 1);
    check_class_of(s - 1);
  }
  check_class_of(HAK_SLAB_REQ_MAX);
  T_CHECK(hak_size_class(HAK_SLAB_REQ_MAX) == HAK_NUM_CLASSES - 1,
          "the largest slab request uses class %u of %d", hak_size_class(HAK_SLAB_REQ_MAX),
          HAK_NUM_CLASSES);
  T_CHECK(hak_class_size(TINY_NUM_CLASSES - 1) >= HAK_TINY_MAX, "tiny classes stop at %zu",
          hak_class_size(TINY_NUM_CLASSES - 1));
  T_CHECK(hak_class_count() == HAK_NUM_CLASSES, "hak_class_count %d", hak_class_count());

  /* Sizes strictly increase; strides are multiples of 16 and hold the usable size. */
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    if (c > 0)
      T_CHECK(hak_class_size(c) > hak_class_size(c - 1), "class %d not larger than %d", c, c - 1);
    uint32_t st = hak_stride_of(c);
    T_CHECK(st % 16 == 0, "class %d: stride %u not a multiple of 16", c, st);
    T_CHECK(st >= hak_class_size(c) && st - hak_class_size(c) < 16 + HAK_HDR_SIZE,
            "class %d: stride %u for %zu usable bytes", c, st, hak_class_size(c));
  }

  /* Runs hold about eight blocks (or are half a SuperSlab); TLS capacities are ordered. */
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    unsigned k = hak_run_slabs_for((hak_class_t)c);
    size_t blocks = k * HAK_SLAB_SIZE / hak_stride_of((hak_class_t)c);
    T_CHECK(k >= 1 && (blocks >= 8 || k == HAK_SLABS_PER_SS / 2),
            "class %d: runs of %u slabs hold %zu blocks", c, k, blocks);
    uint32_t cap0 = hak_tls_cap_initial((hak_class_t)c), cap1 = hak_tls_cap_max((hak_class_t)c);
    T_CHECK(cap0 >= 2 && cap0 <= 64 && cap0 <= cap1 && cap1 <= 1024,
            "class %d: TLS capacity %u, at most %u", c, cap0, cap1);
  }

  /* Internal fragmentation: the smallest request of a class above 128 bytes leaves less than
   * a quarter of the block's usable bytes unused. */
  for (int c = 1; c < HAK_NUM_CLASSES; c++) {
    size_t sz = hak_class_size(c);
    if (sz <= 128) continue;
    size_t smallest = hak_class_size(c - 1) + 1;
    double waste = (double)(sz - smallest) / (double)sz;
    T_CHECK(waste < 0.25, "class %d (%zu bytes): a %zu-byte request wastes %.1f%%", c, sz, smallest,
            waste * 100.0);
  }
}

int main(void) {
  check_classes();
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    check_round_trip(c);
    check_headers(c);
  }
  check_alignment_all_sizes();
  printf("unit_ptr_bridge: %d classes OK (%s mode)\n", HAK_NUM_CLASSES,
         HAKMEM_TINY_HEADERLESS ? "headerless" : "header");
  return 0;
}
