/* Regression test, root cause 5 of the playbook: magazine wrap/unwrap slip (box: refill /
 * magazine).
 *
 * Root cause: a batch move between a TLS SLL and a slab freelist stores the pointer in the
 * wrong form: the spill (and the thread-exit flush, which uses the same give-back) puts the
 * user pointer (base + 8 in header mode) on the slab freelist. Nothing notices until a refill
 * moves those entries back onto a TLS SLL and malloc converts them once more: the blocks come
 * out 8 bytes off the 16-byte grid and overlap their neighbours.
 *
 * Scenarios (each in a fresh child process, see regress.h):
 *   spill_refill  one thread allocates 3 x its TLS capacity of one class and frees every other
 *                 block, so the SLL spills onto the run's freelist. Every freelist node of the
 *                 thread's runs must then be the base pointer of a carved block (header mode:
 *                 with the "free" header of the class), never a live block. Allocating again
 *                 (refills from the freelist) must give 16-aligned block starts of that class,
 *                 owned, with the class's usable size, disjoint from the live blocks, whose
 *                 contents stay intact;
 *   orphan_adopt  a thread does the same and exits with half its blocks live: the exit flush
 *                 gives its SLL back to the run, which is orphaned and published. The main
 *                 thread adopts it by allocating that class: the adopted freelist and the
 *                 blocks it hands out pass the same checks, and the dead thread's blocks keep
 *                 their contents until the main thread frees them.
 * Catches: HAKMEM_PLANT_BUG=magazine_userptr (header mode). Headerless builds have base == user,
 * so the bug cannot occur there; the same behaviour is checked all the same. */
#include "regress.h"

#define CLS 3 /* a tiny class: 64 bytes before the header */
#define MAX_N 600

static void *blk[MAX_N];
static size_t blk_n[MAX_N];
static void *sorted[MAX_N];
static size_t sorted_n[MAX_N];

/* Fails unless every freelist node of the runs on list m is a carved, free block start of it. */
static size_t audit_freelists(hak_slab_t *m, void *const *live, size_t nlive) {
  size_t nodes = 0;
  for (; m != NULL; m = m->next) {
    T_CHECK(m->class_idx == CLS, "run %p of class %u on the lists of class %d", (void *)m,
            m->class_idx, CLS);
    uint32_t guard = 0;
    for (void *b = m->freelist; b != NULL; b = hak_link_get(b)) {
      long idx = t_block_index(m, b);
      T_CHECK(idx >= 0 && (uint32_t)idx < m->carved,
              "run %p: freelist node %p is not the base pointer of a carved block (data %p, "
              "stride %u)",
              (void *)m, b, (void *)m->data, m->stride);
#if !HAKMEM_TINY_HEADERLESS
      T_CHECK(*(uint64_t *)b == HAK_HDR_FREE(CLS), "run %p: freelist block %p has header %#llx",
              (void *)m, b, (unsigned long long)*(uint64_t *)b);
#endif
      for (size_t i = 0; i < nlive; i++)
        T_CHECK(live[i] == NULL || t_base_of(live[i]) != b, "live block %p is on a freelist",
                live[i]);
      T_CHECK(++guard <= m->carved, "run %p: freelist longer than the carved blocks (cycle?)",
              (void *)m);
      nodes++;
    }
  }
  return nodes;
}

static size_t audit_thread(void *const *live, size_t nlive) {
  return audit_freelists(hak_tc->partial[CLS], live, nlive) +
         audit_freelists(hak_tc->full[CLS], live, nlive);
}

static void check_new_block(void *p, size_t n) {
  T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
  T_CHECK(t_aligned(p, 16), "hak_malloc(%zu) returned %p, not 16-aligned", n, p);
  hak_slab_t *m = t_run_of(p);
  T_CHECK(m->class_idx == CLS, "hak_malloc(%zu) = %p lies in a run of class %u", n, p,
          m->class_idx);
  T_CHECK(t_block_index(m, t_base_of(p)) >= 0, "hak_malloc(%zu) = %p is not a block's start", n, p);
  T_CHECK(hak_owns(p) == 1, "hak_owns(%p) is 0 for a live block", p);
  T_CHECK(hak_usable_size(p) == n, "usable size %zu of %p, expected %zu", hak_usable_size(p), p, n);
}

static void check_all_live(size_t k) {
  size_t j = 0;
  for (size_t i = 0; i < k; i++) {
    if (blk[i] == NULL)
      continue;
    t_verify(blk[i], blk_n[i], i);
    sorted[j] = blk[i];
    sorted_n[j++] = blk_n[i];
  }
  r_check_disjoint(sorted, sorted_n, j, sorted, sorted_n);
}

/* Allocates k blocks of CLS into blk[], then frees the even ones. */
static void alloc_then_free_half(size_t k) {
  size_t n = t_size_of_class(CLS);
  for (size_t i = 0; i < k; i++) {
    blk[i] = hak_malloc(n);
    blk_n[i] = n;
    check_new_block(blk[i], n);
    t_fill(blk[i], n, i);
  }
  for (size_t i = 0; i < k; i += 2) {
    hak_free(blk[i]);
    blk[i] = NULL;
  }
}

/* Fills the free slots of blk[0..k) with new blocks, checking each. */
static void realloc_half(size_t k) {
  size_t n = t_size_of_class(CLS);
  for (size_t i = 0; i < k; i += 2) {
    blk[i] = hak_malloc(n);
    check_new_block(blk[i], n);
    t_fill(blk[i], n, i);
  }
  check_all_live(k);
}

static size_t batch(void) {
  size_t k = 3 * (size_t)hak_tc->sll[CLS].cap;
  T_CHECK(k >= 6 && k <= MAX_N, "TLS capacity %u of class %d", hak_tc->sll[CLS].cap, CLS);
  return k;
}

static void scenario_spill_refill(void) {
  t_thread_cache();
  size_t k = batch();
  uint64_t spills = atomic_load(&hak_tc->stat.spills[CLS]);
  alloc_then_free_half(k);
  T_CHECK(atomic_load(&hak_tc->stat.spills[CLS]) > spills, "the frees did not spill");
  size_t nodes = audit_thread(blk, k);
  T_CHECK(nodes > 0, "the spills left nothing on the run's freelist");
  check_all_live(k);
  realloc_half(k);
  audit_thread(blk, k);
  for (size_t i = 0; i < k; i++)
    hak_free(blk[i]);
}

static size_t orphan_k;

static void *orphan_thread(void *arg) {
  (void)arg;
  t_thread_cache();
  orphan_k = batch();
  alloc_then_free_half(orphan_k);
  return NULL; /* exit: the SLL is given back to the run, the run orphaned and published */
}

static void scenario_orphan_adopt(void) {
  t_thread_cache(); /* class 0: the main thread has no run of CLS */
  hak_stats_t st0;
  hak_stats_get(&st0);
  t_run_thread(orphan_thread, NULL);
  size_t k = orphan_k;
  check_all_live(k);
  void *first = hak_malloc(t_size_of_class(CLS));
  hak_stats_t st1;
  hak_stats_get(&st1);
  T_CHECK(st1.adoptions > st0.adoptions, "the orphaned run was not adopted");
  check_new_block(first, t_size_of_class(CLS));
  audit_thread(blk, k);
  hak_free(first);
  realloc_half(k);
  audit_thread(blk, k);
  for (size_t i = 0; i < k; i++)
    hak_free(blk[i]);
}

static const r_scenario_t scenarios[] = {
    {"spill_refill", scenario_spill_refill, R_SUCCEEDS, NULL},
    {"orphan_adopt", scenario_orphan_adopt, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_magazine_userptr", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
