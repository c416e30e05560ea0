/* Regression test, root cause 6 of the playbook: remote queue drain boundary breach (Box 2 ->
 * Box 4 boundary).
 *
 * Root cause: the drain of a run's remote queue merges the queue into the freelist but leaves
 * the queue in place (or a path skips the owner check and drains or pushes what it must not),
 * so the next drain merges the same blocks again: blocks are handed out twice, the freelist
 * gets a cycle, used counts go wrong, and a run released with a stale queue hands the old
 * blocks to whoever binds its slabs next.
 *
 * Scenarios (each in a fresh child process, see regress.h):
 *   owner_drain    the main thread allocates 40 blocks of one run; another thread frees them
 *                  all. The pushes touch only the queue (freelist, used, owner and the owner's
 *                  TLS SLL unchanged, 40 queued). The owner's next refill drains the queue:
 *                  right after it the stack is empty and exactly 40 blocks
 *                  were drained; more allocations, through more refills of that run, drain
 *                  nothing more and hand out distinct, non-overlapping blocks that keep their
 *                  contents;
 *   adopt_drain    a thread allocates 41 blocks and exits holding them (its run is orphaned and
 *                  published); the main thread frees 40 of them (remote frees into an ownerless
 *                  run, which stays published: one block is still out), then allocates that
 *                  class: it adopts the run, the bind boundary drains the queue exactly once
 *                  (stack empty, 40 drained, the main thread the owner), and the blocks
 *                  handed out afterwards are distinct and disjoint;
 *   release_drain  as adopt_drain, but the main thread frees all 41: the free of the last block
 *                  drains the queue and releases the run. The released slab has an empty queue,
 *                  and the runs bound afterwards (the main thread allocates that class and
 *                  others) hand out distinct, valid blocks.
 * Catches: HAKMEM_PLANT_BUG=remote_double_drain (both pointer modes). */
#include "regress.h"

#define CLS 19 /* the largest tiny class: about 60 blocks per run */
#define N 40
#define MAX_LIVE 256

static void *mine[N + 1]; /* mine[N]: the block that keeps an orphan published */
static void *live[MAX_LIVE];
static size_t live_n[MAX_LIVE];
static void *sorted[MAX_LIVE];
static size_t sorted_n[MAX_LIVE];
static size_t nlive;

static void alloc_n(void **out, size_t n) {
  size_t sz = t_size_of_class(CLS);
  for (size_t i = 0; i < n; i++) {
    out[i] = hak_malloc(sz);
    T_CHECK(out[i] != NULL, "hak_malloc(%zu) failed", sz);
    t_fill(out[i], sz, 7);
  }
}

/* Allocates one more block into live[], checked. */
static void *alloc_live(void) {
  size_t sz = t_size_of_class(CLS);
  T_CHECK(nlive < MAX_LIVE, "too many live blocks");
  void *p = hak_malloc(sz);
  T_CHECK(p != NULL, "hak_malloc(%zu) failed", sz);
  T_CHECK(t_aligned(p, 16) && hak_owns(p) == 1, "hak_malloc returned %p", p);
  T_CHECK(t_block_index(t_run_of(p), t_base_of(p)) >= 0, "%p is not a block's start", p);
  for (size_t i = 0; i < nlive; i++)
    T_CHECK(live[i] != p, "block %p handed out twice (drained twice?)", p);
  t_fill(p, sz, 9);
  live[nlive] = p;
  live_n[nlive++] = sz;
  return p;
}

static void check_live(void) {
  for (size_t i = 0; i < nlive; i++) {
    t_verify(live[i], live_n[i], 9);
    sorted[i] = live[i];
    sorted_n[i] = live_n[i];
  }
  r_check_disjoint(sorted, sorted_n, nlive, sorted, sorted_n);
}

static void free_live(void) {
  for (size_t i = 0; i < nlive; i++)
    hak_free(live[i]);
  nlive = 0;
}

static hak_slab_t *single_run(void *const *p, size_t n) {
  hak_slab_t *m = t_run_of(p[0]);
  for (size_t i = 1; i < n; i++)
    T_CHECK(t_run_of(p[i]) == m, "setup: block %zu is not in the first block's run", i);
  return m;
}

/* Blocks on the stack of m's remote word. */
static uint32_t queued(hak_slab_t *m) {
  uint32_t n = 0;
  for (void *b = hak_rq_head(atomic_load(&m->remote)); b != NULL && n <= MAX_LIVE;
       b = hak_link_get(b))
    n++;
  return n;
}

static void check_queue_empty(hak_slab_t *m, const char *when) {
  T_CHECK(hak_rq_head(atomic_load(&m->remote)) == NULL,
          "%s: the run's remote stack still holds %p after it was drained", when,
          hak_rq_head(atomic_load(&m->remote)));
}

static void *free_all_remote(void *arg) {
  (void)arg;
  t_thread_cache();
  for (size_t i = 0; i < N; i++) {
    t_verify(mine[i], t_size_of_class(CLS), 7);
    hak_free(mine[i]);
  }
  return NULL;
}

/* Allocates until the calling thread's remote_drains counter moves; returns the drained blocks. */
static uint64_t alloc_until_drain(void) {
  uint64_t drains = t_tc_sum(hak_tc, remote_drains);
  uint64_t blocks = t_tc_sum(hak_tc, drained_blocks);
  while (t_tc_sum(hak_tc, remote_drains) == drains) {
    T_CHECK(nlive < 3 * N, "no refill drained the remote queue");
    alloc_live();
  }
  T_CHECK(t_tc_sum(hak_tc, remote_drains) == drains + 1, "more than one drain at once");
  return t_tc_sum(hak_tc, drained_blocks) - blocks;
}

static void scenario_owner_drain(void) {
  t_thread_cache();
  alloc_n(mine, N);
  hak_slab_t *m = single_run(mine, N);
  T_CHECK(hak_owner_of(m) == hak_tc, "setup: the run is not the main thread's");
  void *freelist = m->freelist;
  uint32_t used = m->used, sll = hak_sll_count(&hak_tc->sll[CLS]);

  t_run_thread(free_all_remote, NULL);
  T_CHECK(queued(m) == N, "%u queued after %d remote frees", queued(m), N);
  T_CHECK(hak_owner_of(m) == hak_tc, "a remote free changed the run's owner");
  T_CHECK(m->freelist == freelist && m->used == used,
          "remote frees touched the owner's freelist or used count");
  T_CHECK(hak_sll_count(&hak_tc->sll[CLS]) == sll, "remote frees touched the owner's TLS SLL");

  uint64_t drained = alloc_until_drain();
  check_queue_empty(m, "owner refill");
  T_CHECK(drained == N, "the drain moved %llu blocks, %d were queued", (unsigned long long)drained,
          N);
  uint64_t total = t_tc_sum(hak_tc, drained_blocks);
  while (nlive < 2 * N + 20)
    alloc_live();
  T_CHECK(t_tc_sum(hak_tc, drained_blocks) == total,
          "later refills drained %llu more blocks from an empty queue",
          (unsigned long long)(t_tc_sum(hak_tc, drained_blocks) - total));
  check_queue_empty(m, "later refills");
  check_live();
  free_live();
}

static void *orphan_thread(void *arg) {
  (void)arg;
  t_thread_cache();
  alloc_n(mine, N + 1);
  return NULL; /* exit with N + 1 blocks live: the run is orphaned and published */
}

/* A published orphan run holding mine[0..N], N of them freed by the main thread (remote). */
static hak_slab_t *published_run_with_queue(void) {
  t_thread_cache(); /* class 0: the main thread has no run of CLS */
  t_run_thread(orphan_thread, NULL);
  hak_slab_t *m = single_run(mine, N + 1);
  T_CHECK(hak_owner_of(m) == NULL, "setup: the exited thread's run has an owner");
  T_CHECK(m->list == HAK_LIST_PUBLISHED, "setup: the orphaned run is not published");
  for (size_t i = 0; i < N; i++) {
    t_verify(mine[i], t_size_of_class(CLS), 7);
    hak_free(mine[i]);
  }
  uintptr_t w = atomic_load(&m->remote);
  T_CHECK(queued(m) == N && hak_rq_count(w) == 1,
          "%u queued after %d remote frees, %u blocks out in the word", queued(m), N,
          hak_rq_count(w));
  T_CHECK(hak_owner_of(m) == NULL, "a remote free gave the orphan an owner");
  T_CHECK(m->list == HAK_LIST_PUBLISHED, "the orphan left the published list with a block out");
  return m;
}

static void scenario_adopt_drain(void) {
  hak_slab_t *m = published_run_with_queue();

  hak_stats_t st0;
  hak_stats_get(&st0);
  uint64_t blocks = t_tc_sum(hak_tc, drained_blocks);
  alloc_live();
  hak_stats_t st1;
  hak_stats_get(&st1);
  T_CHECK(st1.adoptions == st0.adoptions + 1, "the orphaned run was not adopted");
  T_CHECK(hak_owner_of(m) == hak_tc, "the adopted run is not the main thread's");
  check_queue_empty(m, "adoption");
  T_CHECK(t_tc_sum(hak_tc, drained_blocks) - blocks == N,
          "adoption drained %llu blocks, %d were queued",
          (unsigned long long)(t_tc_sum(hak_tc, drained_blocks) - blocks), N);
  while (nlive < 2 * N + 20)
    alloc_live();
  T_CHECK(t_tc_sum(hak_tc, drained_blocks) - blocks == N,
          "later refills drained again: %llu blocks in all, %d were queued",
          (unsigned long long)(t_tc_sum(hak_tc, drained_blocks) - blocks), N);
  check_queue_empty(m, "later refills");
  check_live();
  free_live();
  hak_free(mine[N]);
}

/* Allocates blocks of class c until the total reaches k, checked, into live[]. */
static void alloc_class(int c, size_t k) {
  size_t sz = t_size_of_class(c);
  while (nlive < k) {
    void *p = hak_malloc(sz);
    T_CHECK(p != NULL && t_aligned(p, 16) && hak_owns(p) == 1, "hak_malloc(%zu) returned %p", sz,
            p);
    hak_slab_t *r = t_run_of(p);
    T_CHECK(r->class_idx == c && t_block_index(r, t_base_of(p)) >= 0,
            "hak_malloc(%zu) = %p is not a block start of a run of class %d", sz, p, c);
    t_fill(p, sz, 9);
    live[nlive] = p;
    live_n[nlive++] = sz;
  }
}

static void scenario_release_drain(void) {
  hak_slab_t *m = published_run_with_queue();
  hak_stats_t st0, st1;
  hak_stats_get(&st0);
  t_verify(mine[N], t_size_of_class(CLS), 7);
  hak_free(mine[N]); /* the last block: drains the queue and releases the run */
  hak_stats_get(&st1);
  T_CHECK(st1.last_free_releases == st0.last_free_releases + 1,
          "the free of the orphan's last block did not release it");
  T_CHECK(m->state == HAK_SLAB_FREE, "the released run's slab is still bound");
  check_queue_empty(m, "release");
  /* Whatever binds the slab next must start from an empty queue. */
  alloc_class(CLS, 2 * N);
  alloc_class(CLS - 1, 4 * N);
  alloc_class(CLS - 2, 6 * N);
  check_live();
  free_live();
}

static const r_scenario_t scenarios[] = {
    {"owner_drain", scenario_owner_drain, R_SUCCEEDS, NULL},
    {"adopt_drain", scenario_adopt_drain, R_SUCCEEDS, NULL},
    {"release_drain", scenario_release_drain, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_remote_double_drain", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
