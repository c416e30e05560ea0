/* The allocator's view of a block, for tests and harnesses that include hakmem's internal
 * headers (tests/unit, tests/regress, tests/checked, fuzz/): which run a block lies in, its
 * index there, its base pointer, a request size of a given class, the calling thread's cache.
 * Checks fail through hak_test.h; nothing allocates except t_thread_cache. */
#ifndef HAK_BLOCK_H
#define HAK_BLOCK_H

#include "fast.h"
#include "hak_test.h"
#include "tiny/remote_queue.h"

/* The head slab of the run holding address a (a lies in a bound run of a live SuperSlab). */
static inline hak_slab_t *t_run_of(const void *a) { return hak_run_of(a); }

/* A per-class counter of thread cache tc (hak_tstat_t field f) summed over every class. */
#define t_tc_sum(tc, f)                                                          \
  ({                                                                             \
    uint64_t t_sum_ = 0;                                                         \
    for (int t_c_ = 0; t_c_ < HAK_NUM_CLASSES; t_c_++)                           \
      t_sum_ += atomic_load_explicit(&(tc)->stat.f[t_c_], memory_order_relaxed); \
    t_sum_;                                                                      \
  })

/* The hint hits of a cache: only misses are counted, and every free of a hint build either hit
 * or missed (stats.c derives it the same way). */
#define t_tc_hint_hits(tc) \
  (HAK_HINT_COMPILED ? t_tc_sum(tc, frees) - t_tc_sum(tc, hint_misses) : 0)

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

/* A request size that lands in slab class c; fails the test when the class table disagrees. */
static inline size_t t_size_of_class(int c) {
  size_t n = t_class_request(c);
  T_CHECK(n != 0, "class table: size %zu is not in class %d", hak_class_size(c), c);
  return n;
}

/* The base pointer of a plain block (not from the memalign family), from its user pointer. */
static inline uint8_t *t_base_of(const void *user) { return (uint8_t *)user - HAK_HDR_SIZE; }

/* Makes sure the calling thread has a live cache (its first allocation creates it). */
static inline hak_tcache_t *t_thread_cache(void) {
  void *p = hak_malloc(1);
  T_CHECK(p != NULL, "hak_malloc(1) failed");
  hak_free(p);
  T_CHECK(hak_tc->state == HAK_TC_LIVE, "thread cache state %d after the first malloc",
          hak_tc->state);
  return hak_tc;
}

/* The fields of a run that a remote push must leave alone (Box 2: a push touches only the
 * run's remote word), and the head of the notify stack of a cache the caller watches. */
typedef struct t_run_snapshot_s {
  void *freelist;
  uint8_t *data;
  uint64_t recip;
  uint32_t stride, capacity, used, carved;
  uint8_t class_idx, head, nslabs, state, list;
  hak_tcache_t *owner;
  hak_slab_t *next, *prev;
  void *watched_notify;
} t_run_snapshot_t;

static inline t_run_snapshot_t t_run_snap(hak_slab_t *m, hak_tcache_t *watch) {
  t_run_snapshot_t s = {m->freelist, m->data, m->recip, m->stride, m->capacity, m->used,
                        atomic_load(&m->carved), m->class_idx, m->head, m->nslabs,
                        m->state, m->list, hak_owner_of(m), m->next, m->prev,
                        watch ? atomic_load(&watch->notify) : NULL};
  return s;
}

static inline bool t_run_same(const t_run_snapshot_t *a, const t_run_snapshot_t *b) {
  return a->freelist == b->freelist && a->data == b->data && a->recip == b->recip &&
         a->stride == b->stride && a->capacity == b->capacity && a->used == b->used &&
         a->carved == b->carved && a->class_idx == b->class_idx &&
         a->head == b->head && a->nslabs == b->nslabs && a->state == b->state &&
         a->list == b->list && a->owner == b->owner && a->next == b->next && a->prev == b->prev &&
         a->watched_notify == b->watched_notify;
}

#endif /* HAK_BLOCK_H */
