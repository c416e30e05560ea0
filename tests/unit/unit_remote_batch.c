/* Remote batch (src/tiny/adopt.c, HAKMEM_TINY_REMOTE_BATCH): a thread holds back its remote
 * frees into one run and pushes them as one chain, with one CAS.
 *   1. Below the batch nothing reaches the run's queue; the batch-th free pushes them all, one
 *      chain of BATCH blocks. What a thread holds is pushed by hak_trim(), by its next refill
 *      and by its exit.
 *   2. Held blocks still count as out of an orphaned run: a thread holds every block of a run
 *      whose owner then exits; the run stays bound, the orphan's count unchanged, until the
 *      push at that thread's exit, which takes the count to 0 and releases the run (adoption
 *      off, so nothing else claims it).
 *   3. Frees into a run that is already an orphan are not held: each lowers the count at once,
 *      and the last one releases the run.
 *   4. Each class has its own chain: remote frees of MIX_CLASSES classes, interleaved block by
 *      block, push nothing until each class holds BATCH, then one chain per run.
 * The runs are fresh, far from full, so no free is turned into a notification. */
#include <sched.h>
#include <stdatomic.h>

#include "unit.h"

#define CLS 3
#define ORPHAN_CLS 5
#define BATCH 8
#define ORPHAN_BLOCKS 20

static void *blk[64];
static hak_slab_t *run;

/* Blocks on run's remote queue (a chain the owner has not drained). */
static uint32_t queued(const hak_slab_t *m) {
  uint32_t n = 0;
  for (void *b = hak_rq_head(atomic_load(&m->remote)); b != NULL; b = hak_link_get(b)) n++;
  return n;
}

static void free_range(int from, int to) {
  for (int i = from; i < to; i++) hak_free(blk[i]);
}

static void expect_queued(uint32_t want, const char *when) {
  uint32_t got = queued(run);
  T_CHECK(got == want, "%s: %u blocks queued, expected %u", when, got, want);
}

static void *freer(void *arg) {
  (void)arg;
  free_range(0, BATCH - 1);
  expect_queued(0, "batch - 1 frees held");
  free_range(BATCH - 1, BATCH);
  expect_queued(BATCH, "the batch-th free pushes the chain");
  free_range(BATCH, BATCH + 3);
  expect_queued(BATCH, "3 more held");
  hak_trim();
  expect_queued(BATCH + 3, "hak_trim pushes them");
  free_range(BATCH + 3, BATCH + 5);
  expect_queued(BATCH + 3, "2 more held");
  void *mine = hak_malloc(t_size_of_class(CLS + 1)); /* this thread's first refill */
  T_CHECK(mine != NULL, "malloc failed");
  expect_queued(BATCH + 5, "a refill pushes them");
  hak_free(mine);
  free_range(BATCH + 5, BATCH + 6);
  expect_queued(BATCH + 5, "1 more held");
  return NULL;
}

static void batches(void) {
  for (int i = 0; i < BATCH + 6; i++)
    T_CHECK((blk[i] = hak_malloc(t_size_of_class(CLS))) != NULL, "malloc");
  run = hak_run_of(blk[0]);
  for (int i = 0; i < BATCH + 6; i++)
    T_CHECK(hak_run_of(blk[i]) == run, "blocks in two runs");
  T_CHECK(queued(run) == 0, "a queue before any remote free");
  t_run_thread(freer, NULL);
  expect_queued(BATCH + 6, "the exit pushes the last one");
}

#define MIX_CLASSES 12
#define MIX_FIRST 8
static void *mix[MIX_CLASSES][BATCH];

static void expect_mix_queued(uint32_t want, const char *when) {
  for (int c = 0; c < MIX_CLASSES; c++) {
    uint32_t got = queued(hak_run_of(mix[c][0]));
    T_CHECK(got == want, "%s: class %d has %u blocks queued, expected %u", when, MIX_FIRST + c, got,
            want);
  }
}

static void *mix_freer(void *arg) {
  (void)arg;
  for (int i = 0; i < BATCH - 1; i++)
    for (int c = 0; c < MIX_CLASSES; c++) hak_free(mix[c][i]);
  expect_mix_queued(0, "batch - 1 frees of each class, interleaved, held");
  for (int c = 0; c < MIX_CLASSES; c++) hak_free(mix[c][BATCH - 1]);
  expect_mix_queued(BATCH, "the batch-th free of each class pushes its chain");
  return NULL;
}

static void classes_interleaved(void) {
  for (int c = 0; c < MIX_CLASSES; c++) {
    for (int i = 0; i < BATCH; i++)
      T_CHECK((mix[c][i] = hak_malloc(t_size_of_class(MIX_FIRST + c))) != NULL, "malloc");
    for (int i = 1; i < BATCH; i++)
      T_CHECK(hak_run_of(mix[c][i]) == hak_run_of(mix[c][0]), "blocks in two runs");
  }
  t_run_thread(mix_freer, NULL);
}

static atomic_int step; /* the orphan scenario's hand-offs between its three threads */

static void wait_step(int want) {
  while (atomic_load(&step) < want) sched_yield();
}

static void alloc_orphan_blocks(void) {
  for (int i = 0; i < ORPHAN_BLOCKS; i++)
    T_CHECK((blk[i] = hak_malloc(t_size_of_class(ORPHAN_CLS))), "malloc");
  run = hak_run_of(blk[0]);
  for (int i = 0; i < ORPHAN_BLOCKS; i++)
    T_CHECK(hak_run_of(blk[i]) == run, "blocks in two runs");
}

static void expect_orphan_count(uint32_t want, const char *when) {
  uintptr_t w = atomic_load(&run->remote);
  T_CHECK(run->class_idx == ORPHAN_CLS && (w & HAK_RQ_ORPHAN) && hak_rq_count(w) == want,
          "%s: class %d, word %#lx (orphan %d, count %u; expected %u)", when, run->class_idx,
          (unsigned long)w, (int)!!(w & HAK_RQ_ORPHAN), hak_rq_count(w), want);
}

/* Owner: allocates, waits until the freer holds every block, exits (the run is orphaned). */
static void *owner_then_exit(void *arg) {
  (void)arg;
  alloc_orphan_blocks();
  atomic_store(&step, 1);
  wait_step(2);
  return NULL;
}

/* Freer: holds every block while the owner lives; after the owner's exit the orphan still
 * counts them out; its own exit pushes them, the last free, and the run is released. */
static void *hold_across_exit(void *arg) {
  (void)arg;
  free_range(0, ORPHAN_BLOCKS);
  T_CHECK(queued(run) == 0, "the frees were not held");
  atomic_store(&step, 2);
  wait_step(3);
  expect_orphan_count(ORPHAN_BLOCKS, "owner gone, every block held");
  return NULL;
}

static void *owner_only(void *arg) {
  (void)arg;
  alloc_orphan_blocks();
  return NULL;
}

/* Frees into a run that is already an orphan are pushed at once. */
static void *free_into_orphan(void *arg) {
  (void)arg;
  free_range(0, ORPHAN_BLOCKS / 2);
  expect_orphan_count(ORPHAN_BLOCKS - ORPHAN_BLOCKS / 2, "half freed into an orphan");
  free_range(ORPHAN_BLOCKS / 2, ORPHAN_BLOCKS);
  T_CHECK(run->class_idx == HAK_CLASS_NONE, "the last free into an orphan left it bound");
  return NULL;
}

static void orphan(void) {
  hak_opt.remote_batch = 2 * ORPHAN_BLOCKS; /* the freer can hold all of them */
  pthread_t owner, freer;
  t_start(&owner, owner_then_exit, NULL);
  wait_step(1);
  t_start(&freer, hold_across_exit, NULL);
  wait_step(2);
  t_join(owner);
  atomic_store(&step, 3);
  t_join(freer);
  T_CHECK(run->class_idx == HAK_CLASS_NONE, "the push at exit left the run bound (class %d)",
          run->class_idx);
  t_run_thread(owner_only, NULL);
  t_run_thread(free_into_orphan, NULL);
}

int main(void) {
  t_thread_cache();
  hak_opt.decay_ms = 3600000; /* runs and SuperSlabs stay mapped while the test reads them */
  hak_opt.ss_adopt = 0;
  hak_opt.remote_batch = BATCH;
  batches();
  classes_interleaved();
  orphan();
  printf("unit_remote_batch: OK\n");
  return 0;
}
