/* Size classes: the one place the geometry lives.
 *
 * Classes and their sizes: 16-byte steps from 16 to 128 (classes 0..7), then four steps per
 * doubling (160, 192, 224, 256, 320, ...) up to HAK_MID_MAX. Classes below TINY_NUM_CLASSES
 * hold requests up to HAK_TINY_MAX; the others (mid) use runs of several slabs. Internal
 * fragmentation stays under 25% per class. A class's usable bytes are its size plus
 * HAK_HDR_SIZE in header mode (the header's 8-byte word is counted in the 16-byte stride
 * extra); its stride (bytes per block) is its size plus HAK_STRIDE_EXTRA.
 *
 * Request -> class: one table load for a tiny request (hak_class4_by_size, indexed by the
 * request itself), arithmetic above. Runs: enough slabs for about eight blocks. TLS SLL
 * capacity: about 16 KiB of blocks to start with, at most 256 KiB when ACE grows it.
 *
 * hak_class_t is the type of a class everywhere; HAK_CLASS_NONE marks an unbound run. */
#ifndef HAKMEM_SIZECLASS_H
#define HAKMEM_SIZECLASS_H

#include "types.h"

typedef unsigned hak_class_t;

/* The largest request of a tiny class, and of any slab class (header mode: the header's word
 * comes out of the stride extra, so 8 more bytes fit). */
#define HAK_TINY_REQ_MAX (HAK_TINY_MAX + HAK_HDR_SIZE)
#define HAK_SLAB_REQ_MAX (HAK_MID_MAX + HAK_HDR_SIZE)

/* Class size before the pointer mode's extra. */
static inline size_t hak_class_raw_size(hak_class_t c) {
  if (c < 8) return 16u * (c + 1);
  unsigned k = c - 8;
  size_t base = (size_t)128 << (k / 4);
  return base + (base >> 2) * (k % 4 + 1);
}

/* Usable bytes of a block of class c. */
static inline size_t hak_class_size(hak_class_t c) { return hak_class_raw_size(c) + HAK_HDR_SIZE; }

/* Bytes per block of class c. */
static inline uint32_t hak_stride_of(hak_class_t c) {
  return (uint32_t)(hak_class_raw_size(c) + HAK_STRIDE_EXTRA);
}

/* Request n -> HAK_CLASS_SCALE times its class, for n <= HAK_TINY_REQ_MAX (sizeclass.c builds it
 * from the sizes above; unit_ptr_bridge checks every entry). Scaled so that malloc's fast path
 * addresses the class's TLS SLL (16 bytes) and counters (8) with the scaled class as the index
 * of one address each: no shift and add of its own (fast.h). */
#define HAK_CLASS_SCALE 4u
extern const uint8_t hak_class4_by_size[HAK_TINY_REQ_MAX + 1];

/* Class of a request of n bytes, n <= HAK_SLAB_REQ_MAX. */
static inline hak_class_t hak_size_class(size_t n) {
  if (n <= HAK_TINY_REQ_MAX) return hak_class4_by_size[n] / HAK_CLASS_SCALE;
  size_t m = n - HAK_HDR_SIZE; /* above 128 B, sizes step by a quarter of a power of two */
  unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)(m - 1));
  size_t idx = (m - 1 - ((size_t)1 << e)) >> (e - 2);
  return 8u + (e - 7u) * 4u + (unsigned)idx;
}

/* Slabs per run of class c: enough for about eight blocks, at most half a SuperSlab. */
static inline unsigned hak_run_slabs_for(hak_class_t c) {
  size_t k = (8 * (size_t)hak_stride_of(c) + HAK_SLAB_SIZE - 1) / HAK_SLAB_SIZE;
  return (unsigned)(k < 1 ? 1 : k > HAK_SLABS_PER_SS / 2 ? HAK_SLABS_PER_SS / 2 : k);
}

/* TLS SLL capacity of class c in a new cache: about 16 KiB of blocks, 2 .. 64. */
static inline uint32_t hak_tls_cap_initial(hak_class_t c) {
  size_t cap = (16 * 1024) / hak_class_size(c);
  return (uint32_t)(cap < 2 ? 2 : cap > 64 ? 64 : cap);
}

/* The most ACE may grow it to: about 256 KiB of blocks, 2 .. 1024. */
static inline uint32_t hak_tls_cap_max(hak_class_t c) {
  uint32_t cap = (uint32_t)((256 * 1024) / hak_stride_of(c));
  return cap < 2 ? 2 : cap > 1024 ? 1024 : cap;
}

#endif /* HAKMEM_SIZECLASS_H */
