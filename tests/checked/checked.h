/* Helpers shared by the tests of the checked build (tests/checked/): where a free block sits
 * (TLS SLL head, its run's freelist, a remote queue), how to free from another thread, and how
 * to keep allocating until the checked build fails fast.
 *
 * The programs use the scenario runner of tests/regress (regress.h): each scenario runs in a
 * child process, and one that must fail fast passes only when the child dies by SIGABRT after
 * the expected "hakmem: <diagnostic>" line. Every scenario that plants damage expects the
 * diagnostic; a child that returns from the scenario, or crashes any other way, fails it.
 *
 * Addresses inside a block, in both pointer modes: the link word is the first word of the user
 * pointer (base + HAK_LINK_OFF == user + 0) and the fill pattern starts at user + 8. */
#ifndef HAKMEM_CHECKED_TEST_H
#define HAKMEM_CHECKED_TEST_H

#include "regress.h"

#define C_CLASS 3 /* a tiny class with many blocks per run */
#define C_FILL_AT 8 /* first byte of the fill pattern, from the user pointer */
#define C_MAX_BLOCKS 4096
#define C_ALLOC_LIMIT 200000 /* allocations before giving up on a diagnostic */

_Static_assert(HAK_LINK_OFF - HAK_HDR_SIZE == 0, "the link is the user pointer's first word");

static void *c_blocks[C_MAX_BLOCKS];

/* The raw link word of the free block with user pointer p. */
static inline uintptr_t *c_link_word(void *p) { return (uintptr_t *)p; }

/* True when base b is on the calling thread's TLS SLL of class c. */
static inline bool c_on_sll(int c, const void *b) {
  for (const void *x = hak_tc->sll[c].head; x != NULL; x = hak_link_decode(x))
    if (x == b)
      return true;
  return false;
}

/* Frees p (class c), which must stay at the head of the calling thread's TLS SLL. */
static inline void c_free_to_sll_head(void *p, int c) {
  hak_sll_t *s = &hak_tc->sll[c];
  T_CHECK(hak_sll_count(s) < s->cap, "setup: class %d SLL full (%u of %u), the free would spill", c,
          hak_sll_count(s), s->cap);
  hak_free(p);
  T_CHECK(s->head == t_base_of(p), "setup: freed %p is not at the head of its SLL", p);
}

/* Allocates 3 * cap + 2 blocks of class c and frees all but the first, so that the TLS SLL
 * spills: returns the user pointer of a block on the freelist of the first block's run (which
 * the first block keeps bound), not on the SLL. */
static inline uint8_t *c_block_on_freelist(int c) {
  size_t n = t_size_of_class(c);
  size_t k = 3 * (size_t)hak_tc->sll[c].cap + 2;
  T_CHECK(k <= C_MAX_BLOCKS, "setup: %zu blocks needed", k);
  for (size_t i = 0; i < k; i++) {
    c_blocks[i] = hak_malloc(n);
    T_CHECK(c_blocks[i] != NULL, "hak_malloc(%zu) failed", n);
  }
  for (size_t i = 1; i < k; i++)
    hak_free(c_blocks[i]);
  hak_slab_t *m = t_run_of(c_blocks[0]);
  T_CHECK(m->state == HAK_SLAB_HEAD && m->class_idx == c && hak_owner_of(m) == hak_tc,
          "setup: the first block's run is not a bound run of class %d of this thread", c);
  void *b = m->freelist;
  T_CHECK(b != NULL, "setup: %zu frees left nothing on the run's freelist", k - 1);
  T_CHECK(!c_on_sll(c, b), "setup: freelist block %p is on the TLS SLL too", b);
  return (uint8_t *)b + HAK_HDR_SIZE;
}

static void *c_free_thread(void *p) {
  hak_free(p);
  return NULL;
}

/* Frees p from another thread: p goes onto its run's remote queue. */
static inline void c_free_remote(void *p) {
  hak_slab_t *m = t_run_of(t_base_of(p));
  t_run_thread(c_free_thread, p);
  T_CHECK(hak_rq_head(atomic_load(&m->remote)) == t_base_of(p),
          "setup: %p is not at the head of its run's remote queue", p);
}

/* Allocates n bytes again and again (keeping every block) until hakmem fails fast; fails the
 * scenario when C_ALLOC_LIMIT allocations pass without a diagnostic. */
__attribute__((noreturn)) static inline void c_alloc_until_failure(size_t n) {
  for (size_t i = 0; i < C_ALLOC_LIMIT; i++)
    T_CHECK(hak_malloc(n) != NULL, "hak_malloc(%zu) failed", n);
  t_fail("%d allocations of %zu bytes and no diagnostic", C_ALLOC_LIMIT, n);
}

#endif /* HAKMEM_CHECKED_TEST_H */
