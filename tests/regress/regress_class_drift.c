/* Regression test, root cause 4 of the playbook: class index drift (box: slab metadata).
 *
 * Root cause: free reads the class (and the run geometry: data, stride, capacity) from the
 * wrong metadata. Mid classes use runs of several slabs; only the run's head slab carries the
 * class and geometry, its continuation slabs point at the head. A free that takes the slab the
 * pointer lies in instead of the run head sees no class (or, with stale metadata, another
 * class's geometry): valid frees of blocks in continuation slabs are rejected or go onto the
 * wrong list with the wrong block arithmetic.
 *
 * Scenarios (each in a fresh child process, see regress.h):
 *   local    one thread allocates two runs' worth of a class whose runs span three slabs; some
 *            blocks lie in continuation slabs. Every block is 16-aligned, the start of a block
 *            of a run of its class (read from the run head), owned, with the class's usable
 *            size. Freeing the blocks in continuation slabs must succeed and leave the other
 *            blocks intact; the blocks allocated again are valid, disjoint block starts;
 *   remote   a thread allocates such blocks and exits holding them; the main thread frees them
 *            (remote frees into the orphaned runs, through the same lookup), every one counted
 *            as a remote free, then adopts the runs and gets valid blocks back;
 *   classes  for every class with multi-slab runs, a full run plus one block is allocated and
 *            freed (so every slab of a run sees a free), then allocated again.
 * Catches: HAKMEM_PLANT_BUG=class_drift (both pointer modes, hint or not). */
#include "regress.h"

#define MAX_BLOCKS 256

static void *blk[MAX_BLOCKS];
static size_t nblk;
static void *sorted[MAX_BLOCKS];
static size_t sorted_n[MAX_BLOCKS];

/* The first class whose runs span at least k slabs. */
static int class_with_run_slabs(int k) {
  for (int c = TINY_NUM_CLASSES; c < HAK_NUM_CLASSES; c++)
    if ((int)hak_run_slabs_for((hak_class_t)c) >= k)
      return c;
  t_fail("no class has runs of %d slabs", k);
}

static bool in_cont_slab(const void *p) {
  hak_superslab_t *ss = hak_ss_of(p);
  return ss->slabs[((uintptr_t)p >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_SS - 1)].state ==
         HAK_SLAB_CONT;
}

static void check_block(void *p, int c) {
  size_t n = t_size_of_class(c);
  T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
  T_CHECK(t_aligned(p, 16), "hak_malloc(%zu) returned %p, not 16-aligned", n, p);
  hak_slab_t *m = t_run_of(p);
  T_CHECK(m->class_idx == c, "block %p of class %d lies in a run of class %u", p, c, m->class_idx);
  T_CHECK(t_block_index(m, t_base_of(p)) >= 0, "block %p of class %d is not a block's start", p, c);
  T_CHECK(hak_owns(p) == 1, "hak_owns(%p) is 0 for a live block", p);
  T_CHECK(hak_usable_size(p) == n, "usable size %zu of %p, expected %zu", hak_usable_size(p), p, n);
}

/* Allocates k blocks of class c into blk[nblk..), checked and filled. */
static void alloc_blocks(int c, size_t k) {
  size_t n = t_size_of_class(c);
  for (size_t i = 0; i < k; i++) {
    T_CHECK(nblk < MAX_BLOCKS, "too many blocks");
    void *p = hak_malloc(n);
    check_block(p, c);
    t_fill(p, 64, nblk); /* the first bytes are enough to see a block move or be overwritten */
    blk[nblk++] = p;
  }
}

static size_t count_cont(void) {
  size_t k = 0;
  for (size_t i = 0; i < nblk; i++)
    k += blk[i] != NULL && in_cont_slab(blk[i]);
  return k;
}

static void check_disjoint(int c) {
  size_t k = 0;
  for (size_t i = 0; i < nblk; i++)
    if (blk[i] != NULL) {
      t_verify(blk[i], 64, i);
      sorted[k] = blk[i];
      sorted_n[k++] = t_size_of_class(c);
    }
  r_check_disjoint(sorted, sorted_n, k, sorted, sorted_n);
}

static uint32_t run_capacity(int c) {
  void *p = hak_malloc(t_size_of_class(c));
  T_CHECK(p != NULL, "hak_malloc failed");
  uint32_t cap = t_run_of(p)->capacity;
  hak_free(p);
  return cap;
}

static void scenario_local(void) {
  t_thread_cache();
  int c = class_with_run_slabs(3);
  alloc_blocks(c, 2 * (size_t)run_capacity(c));
  size_t cont = count_cont();
  T_CHECK(cont > 0, "setup: no block of class %d lies in a continuation slab", c);
  for (size_t i = 0; i < nblk; i++)
    if (in_cont_slab(blk[i])) {
      hak_free(blk[i]);
      blk[i] = NULL;
    }
  check_disjoint(c);
  for (size_t i = 0; i < nblk; i++)
    if (blk[i] == NULL) {
      blk[i] = hak_malloc(t_size_of_class(c));
      check_block(blk[i], c);
      t_fill(blk[i], 64, i);
    }
  check_disjoint(c);
  for (size_t i = 0; i < nblk; i++)
    hak_free(blk[i]);
  printf("regress_class_drift: class %d, %zu blocks, %zu in continuation slabs\n", c, nblk, cont);
}

static int remote_class;

static void *alloc_and_exit(void *arg) {
  (void)arg;
  alloc_blocks(remote_class, 2 * (size_t)run_capacity(remote_class));
  return NULL; /* exit holding them: the runs are orphaned and published */
}

static void scenario_remote(void) {
  t_thread_cache();
  remote_class = class_with_run_slabs(3);
  t_run_thread(alloc_and_exit, NULL);
  T_CHECK(count_cont() > 0, "setup: no block lies in a continuation slab");
  hak_stats_t st0, st1;
  hak_stats_get(&st0);
  for (size_t i = 0; i < nblk; i++) {
    t_verify(blk[i], 64, i);
    hak_free(blk[i]);
    blk[i] = NULL;
  }
  hak_stats_get(&st1);
  T_CHECK(st1.remote_frees - st0.remote_frees == nblk, "%llu remote frees for %zu blocks",
          (unsigned long long)(st1.remote_frees - st0.remote_frees), nblk);
  size_t k = nblk;
  nblk = 0;
  alloc_blocks(remote_class, k);
  check_disjoint(remote_class);
  for (size_t i = 0; i < nblk; i++)
    hak_free(blk[i]);
}

static void scenario_classes(void) {
  t_thread_cache();
  size_t tried = 0;
  for (int c = TINY_NUM_CLASSES; c < HAK_NUM_CLASSES; c++) {
    if (hak_run_slabs_for(c) < 2)
      continue;
    nblk = 0;
    alloc_blocks(c, (size_t)run_capacity(c) + 1);
    T_CHECK(count_cont() > 0, "class %d: no block in a continuation slab", c);
    for (size_t i = nblk; i-- > 0;) {
      hak_free(blk[i]);
      blk[i] = NULL;
    }
    size_t k = nblk;
    nblk = 0;
    alloc_blocks(c, k);
    check_disjoint(c);
    for (size_t i = 0; i < nblk; i++)
      hak_free(blk[i]);
    tried++;
  }
  T_CHECK(tried > 10, "only %zu classes have multi-slab runs", tried);
}

static const r_scenario_t scenarios[] = {
    {"local", scenario_local, R_SUCCEEDS, NULL},
    {"remote", scenario_remote, R_SUCCEEDS, NULL},
    {"classes", scenario_classes, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_class_drift", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
