/* The allocator's view of a block, for tests and harnesses that include hakmem's internal
 * headers (tests/unit, tests/regress, fuzz/): which run a block lies in, its index there, a
 * request size of a given class. No checks beyond the ones documented; nothing allocates. */
#ifndef HAK_BLOCK_H
#define HAK_BLOCK_H

#include "fast.h"

/* The head slab of the run holding address a (a lies in a bound run of a live SuperSlab). */
static inline hak_slab_t *t_run_of(const void *a) {
  hak_superslab_t *ss = hak_ss_of(a);
  hak_slab_t *m = &ss->slabs[((uintptr_t)a >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_SS - 1)];
  return &ss->slabs[m->head];
}

/* Index of base b in run m, or -1 when b is not exactly the start of one of its blocks. */
static inline long t_block_index(const hak_slab_t *m, const void *b) {
  uintptr_t u = (uintptr_t)b, d = (uintptr_t)m->data;
  if (u < d || u >= d + (uintptr_t)m->capacity * m->stride) return -1;
  if ((u - d) % m->stride != 0) return -1;
  return (long)((u - d) / m->stride);
}

/* A request size that lands in slab class c (its usable size), or 0 if the class table
 * disagrees (callers check). */
static inline size_t t_class_request(int c) {
  size_t n = hak_class_size(c);
  return (int)hak_size_class(n) == c ? n : 0;
}

#endif /* HAK_BLOCK_H */
