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

static inline void *hak_link_get(const void *base) {
  return *(void *const *)((const uint8_t *)base + HAK_LINK_OFF);
}
static inline void hak_link_set(void *base, void *next) {
  *(void **)((uint8_t *)base + HAK_LINK_OFF) = next;
}

static inline void *hak_sll_pop(hak_sll_t *s) {
  void *b = s->head;
  if (hak_likely(b != NULL)) {
    hak_assert_base(b);
    s->head = hak_link_get(b);
    s->count--;
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

/* Full walk, checked builds and unit tests: count matches, no cycle, alignment holds. */
bool hak_sll_validate(const hak_sll_t *s);

#endif /* HAKMEM_TLS_SLL_H */
