/* Pointer bridge: the only place where user pointers and base pointers are converted.
 *
 * Boundary: hak_bridge_out() on the way out of malloc, hak_bridge_in() on the way into free.
 * Every list behind the bridge (TLS SLL, slab freelist, remote queue) holds base pointers.
 *
 * Invariants:
 *   - each direction is applied exactly once: decode(encode(b)) == b;
 *   - header mode: the word at base is HAK_HDR_ALLOC(class) while the block is in use and
 *     HAK_HDR_FREE(class) while it is free, so a free of anything else (a double free, an
 *     interior or foreign pointer) is caught before it reaches a list; a block from operator
 *     new carries its form in HAK_HDR_FORM_MASK as well, which this compare refuses: the slow
 *     path (api.c) strips it and frees the block, a delete strips it after its check;
 *   - user pointers are 16-byte aligned in both modes (base == 8 mod 16 with a header);
 *   - checked builds: hak_bridge_in() fills the block with the free pattern (checked.c), after
 *     diagnosing a headerless double free.
 */
#ifndef HAKMEM_PTR_BRIDGE_H
#define HAKMEM_PTR_BRIDGE_H

#include "../internal.h"

#if HAKMEM_ASAN
#include <sanitizer/asan_interface.h>
#endif

static inline void *hak_bridge_out(void *base, hak_class_t cls, uint32_t stride) {
  (void)cls;
  (void)stride;
#if HAKMEM_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base, stride);
#endif
#if HAKMEM_TINY_HEADERLESS
  return base;
#else
  *(uint64_t *)base = HAK_HDR_ALLOC(cls);
  return (uint8_t *)base + HAK_HDR_SIZE;
#endif
}

static inline void *hak_bridge_base(const void *user) {
  return (uint8_t *)user - HAK_HDR_SIZE;
}

/* Marks the block free on its way in. Returns false when the header is not the in-use header
 * of this class (the caller diagnoses). Headerless blocks carry nothing to check. */
static inline bool hak_bridge_in(void *base, hak_class_t cls, uint32_t stride) {
  (void)stride;
#if !HAKMEM_TINY_HEADERLESS
  uint64_t *hdr = (uint64_t *)base;
  if (hak_unlikely(*hdr != HAK_HDR_ALLOC(cls))) return false;
  *hdr = HAK_HDR_FREE(cls);
#endif
#if HAKMEM_CHECKED
  hak_checked_freed(base, cls, stride); /* headerless double free, then the fill pattern */
#endif
#if HAKMEM_ASAN
  /* Poison all but the header and the link word, which the lists still use. */
  ASAN_POISON_MEMORY_REGION((uint8_t *)base + HAK_LINK_OFF + sizeof(void *),
                            stride - HAK_LINK_OFF - sizeof(void *));
#endif
  (void)cls;
  return true;
}

/* Debug check at every list push and pop: a base pointer sits at the expected offset. */
static inline void hak_assert_base(const void *base) {
  (void)base;
#if HAKMEM_DEBUG_HDRLESS
  if (((uintptr_t)base & 15) != (16 - HAK_HDR_SIZE) % 16)
    hak_log_once_at("[TLS_SLL_MISMATCH]", base, hak_ss_of(base), (uintptr_t)base & 15,
                    (16 - HAK_HDR_SIZE) % 16);
#endif
  hak_assert(((uintptr_t)base & 15) == (16 - HAK_HDR_SIZE) % 16);
}

#endif /* HAKMEM_PTR_BRIDGE_H */
