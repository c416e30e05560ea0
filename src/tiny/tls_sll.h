/* TLS SLL: the per-thread, per-class LIFO of free blocks; malloc and free hit here.
 *
 * Boundary: hak_sll_pop() / hak_sll_push(); only the owning thread touches its lists, and only
 * magazine.c moves blocks between a list and the slabs.
 *
 * Invariants:
 *   - holds base pointers of its own class only, of slabs the thread owns;
 *   - cap - room == length of the list (hak_sll_count), and the list has no cycle;
 *   - the length never stays above cap: a push that takes room below 0 spills (magazine.c).
 * The list keeps its room rather than its length so that a push tests for a spill with the
 * flags of its own decrement. No atomic operation and no lock: a pop is two loads, a store
 * and an increment; a push two stores and a decrement.
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
    s->room++;
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
  return --s->room < 0;
}

/* The fast paths' forms: the list at byte offset 4 * c4 of lists, c4 being HAK_CLASS_SCALE
 * times the class (sizeof(hak_sll_t) == 4 * HAK_CLASS_SCALE), so that each access addresses
 * it as lists + c4 * 4. GCC would compute that address into a register first (one
 * instruction more on each path), so x86-64 builds without link encoding, ASan or TSan write
 * the accesses out: the same loads and stores as hak_sll_pop and hak_sll_push, in the same
 * order. The others call those. */
#if defined(__x86_64__) && !HAKMEM_CHECKED && !HAKMEM_TSAN && !HAKMEM_ASAN && \
    !HAKMEM_DEBUG_HDRLESS
#define HAK_SLL_INDEXED_ASM 1
_Static_assert(offsetof(hak_sll_t, head) == 0 && offsetof(hak_sll_t, room) == 8 &&
                   sizeof(hak_sll_t) == 4 * HAK_CLASS_SCALE,
               "the written-out accesses address head at 0 and room at 8");
#else
#define HAK_SLL_INDEXED_ASM 0
#endif

static inline __attribute__((always_inline)) void *hak_sll_pop4(hak_sll_t *lists, uintptr_t c4) {
#if HAK_SLL_INDEXED_ASM
  void *b;
  __asm__ volatile("movq (%1,%2,4), %0" : "=a"(b) : "r"(lists), "r"(c4) : "memory");
  if (hak_likely(b != NULL)) {
    void *next;
    __asm__ volatile("movq %c4(%3), %0\n\t"
                     "movq %0, (%1,%2,4)\n\t"
                     "addl $1, 8(%1,%2,4)"
                     : "=&r"(next)
                     : "r"(lists), "r"(c4), "r"(b), "i"(HAK_LINK_OFF)
                     : "memory", "cc");
  }
  return b;
#else
  return hak_sll_pop((hak_sll_t *)((char *)lists + c4 * 4));
#endif
}

/* Returns true when the list went above its capacity and must spill. */
static inline __attribute__((always_inline)) bool hak_sll_push4(hak_sll_t *lists, uintptr_t c4,
                                                                void *base) {
#if HAK_SLL_INDEXED_ASM
  void *head;
  bool over;
  __asm__ volatile("movq (%2,%3,4), %1\n\t"
                   "movq %1, %c5(%4)\n\t"
                   "movq %4, (%2,%3,4)\n\t"
                   "subl $1, 8(%2,%3,4)"
                   : "=@ccs"(over), "=&r"(head)
                   : "r"(lists), "r"(c4), "r"(base), "i"(HAK_LINK_OFF)
                   : "memory");
  return over;
#else
  return hak_sll_push((hak_sll_t *)((char *)lists + c4 * 4), base);
#endif
}

/* The length of the list, from its room (the list itself is not walked). */
static inline uint32_t hak_sll_count(const hak_sll_t *s) {
  return (uint32_t)((int64_t)s->cap - s->room);
}

/* Sets the length the list believes it has (a walk's result). */
static inline void hak_sll_set_count(hak_sll_t *s, uint32_t n) {
  s->room = (int32_t)((int64_t)s->cap - n);
}

/* Changes the capacity, keeping the length. */
static inline void hak_sll_set_cap(hak_sll_t *s, uint32_t cap) {
  uint32_t n = hak_sll_count(s);
  s->cap = cap;
  hak_sll_set_count(s, n);
}

/* Full walk, checked builds and unit tests: count matches, no cycle, alignment holds (links
 * decoded, not validated: a bad list makes it return false, never fail). */
bool hak_sll_validate(const hak_sll_t *s);

#endif /* HAKMEM_TLS_SLL_H */
