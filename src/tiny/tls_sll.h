/* TLS SLL: the per-thread, per-class LIFO of free blocks; malloc and free hit here.
 *
 * Boundary: hak_sll_pop() / hak_sll_push(); only the owning thread touches its lists, and only
 * magazine.c moves blocks between a list and the slabs.
 *
 * Invariants:
 *   - holds base pointers of its own class only, of slabs the thread owns;
 *   - count == length of the list, and the list has no cycle;
 *   - count never stays above cap: a push that goes above it spills (magazine.c).
 * No atomic operation and no lock: the fast path is a load, a compare and two stores.
 */
#ifndef HAKMEM_TLS_SLL_H
#define HAKMEM_TLS_SLL_H

#include "ptr_bridge.h"

/* The link of a free block, at HAK_LINK_OFF: the one encode/decode pair of every list (TLS SLL,
 * slab freelist, remote queue). The checked build stores next ^ hak_link_secret ^ base and
 * validates every link it follows (checked.c); the others store next as it is. */
static inline void hak_link_set(void *base, void *next) {
#if HAKMEM_CHECKED
  next = (void *)((uintptr_t)next ^ hak_link_secret ^ (uintptr_t)base);
#endif
  *(void **)((uint8_t *)base + HAK_LINK_OFF) = next;
}

/* The decoded link, unchecked: for walks that judge the list themselves. */
static inline void *hak_link_decode(const void *base) {
  void *next = *(void *const *)((const uint8_t *)base + HAK_LINK_OFF);
#if HAKMEM_CHECKED
  next = (void *)((uintptr_t)next ^ hak_link_secret ^ (uintptr_t)base);
#endif
  return next;
}

/* The link to follow: fails fast in the checked build unless it is NULL or a free block of the
 * same class ("corrupt free-list link"). */
static inline void *hak_link_get(const void *base) {
  void *next = hak_link_decode(base);
#if HAKMEM_CHECKED
  if (hak_unlikely(!hak_checked_link_ok(base, next))) hak_checked_link_fail(base);
#endif
  return next;
}

static inline void *hak_sll_pop(hak_sll_t *s) {
  void *b = s->head;
  if (hak_likely(b != NULL)) {
    hak_assert_base(b);
    s->head = hak_link_get(b);
    s->count--;
#if HAKMEM_CHECKED
    hak_checked_taken(b);
#endif
  }
  return b;
}

/* Returns true when the list went above its capacity and must spill. */
static inline bool hak_sll_push(hak_sll_t *s, void *base) {
  hak_assert_base(base);
  hak_link_set(base, s->head);
  s->head = base;
  return ++s->count > s->cap;
}

/* Full walk, checked builds and unit tests: count matches, no cycle, alignment holds (links
 * decoded, not validated: a bad list makes it return false, never fail). */
bool hak_sll_validate(const hak_sll_t *s);

#endif /* HAKMEM_TLS_SLL_H */
