/* Regression test: the cross-thread windows of a remote free (Box 2 remote queue, Box 3
 * ownership, Box 4 publish/adopt), each held open by parking a thread at its schedule point
 * (tests/support/hak_sched.h; the test links hakmem_sched).
 *
 * Root causes (issue 10's review):
 *   touch_after_push  a remote free read or wrote its run after the push that let the owner
 *                     drain and release it: the run's SuperSlab may be unmapped by then;
 *   stale_notify      the notify target was read before the notify decision, so a run that
 *                     changed hands was notified to a cache that no longer owned it;
 *   orphan_count      an exiting owner counted the blocks out of its run before its last
 *                     drain, so the orphan's count never reached 0 (HAKMEM_TINY_SS_ADOPT=0:
 *                     the run leaked, or was released with blocks still out).
 *
 * Scenarios (each in a fresh child process, see regress.h):
 *   touch_after_push  thread O binds a whole SuperSlab of the largest class; thread F frees
 *                     two of its blocks, the second parked right after its push; O frees the
 *                     rest and exits (the drain takes F's block, the runs are released) and
 *                     the main thread trims: the SuperSlab is unmapped while F is parked. F is
 *                     let go and returns; the counters are exact (2 remote frees, the
 *                     SuperSlab unmapped once) and allocation goes on;
 *   stale_notify      (HAKMEM_TINY_RF_FORCE_NOTIFY on: every remote free is delivered to the
 *                     owner) thread A owns the run of block b; F frees b and is parked before
 *                     its decision; A exits (its run is published), thread B gets A's
 *                     recycled cache, the main thread adopts the run. F is let go: b is
 *                     delivered to the main thread, never to B; B refills without a fault, the
 *                     main thread gets b back from an allocation, and 1 notification counted;
 *   orphan_count      (HAKMEM_TINY_SS_ADOPT=0) thread A exits holding 20 blocks of one run and
 *                     is parked after it gave up the owner word, before its drain; the main
 *                     thread frees 2 of the blocks then (queued on the owned word), lets A go,
 *                     and frees the other 18: the last free releases the run (exactly one
 *                     last-free release, the run's slabs free) and nothing aborts.
 * Catches: HAKMEM_PLANT_BUG=remote_touch_after_push, stale_notify, orphan_stale_count. */
#include "hak_sched.h"
#include "regress.h"

#define MAX_BLOCKS 64

static pthread_t r_start(void *(*fn)(void *), void *arg) {
  pthread_t t;
  int rc = pthread_create(&t, NULL, fn, arg);
  T_CHECK(rc == 0, "pthread_create: %d", rc);
  return t;
}

static void r_join(pthread_t t) {
  int rc = pthread_join(t, NULL);
  T_CHECK(rc == 0, "pthread_join: %d", rc);
}

/* A one-shot event between two threads (no allocation: a flag and naps). */
static void wait_flag(_Atomic int *f) {
  while (!atomic_load(f)) t_sched_nap();
}

/* ---- touch_after_push ----------------------------------------------------------------------- */

static void *blk[MAX_BLOCKS];
static size_t nblk;
static hak_superslab_t *x; /* the SuperSlab O binds alone */
static _Atomic int o_filled, o_may_exit; /* o_filled publishes blk, nblk and x */

static void *owner_fill(void *arg) {
  (void)arg;
  size_t n = t_size_of_class(R_BIG_CLASS);
  x = NULL;
  while (x == NULL) {
    T_CHECK(nblk < MAX_BLOCKS, "setup: %zu blocks never bound a whole SuperSlab", nblk);
    blk[nblk] = hak_malloc(n);
    T_CHECK(blk[nblk] != NULL, "hak_malloc(%zu) failed", n);
    t_fill(blk[nblk], 64, nblk);
    nblk++;
    for (size_t i = 0; i < nblk && x == NULL; i++)
      if (r_ss_all_mine(hak_ss_of(blk[i]), R_BIG_CLASS, hak_tc)) x = hak_ss_of(blk[i]);
  }
  atomic_store(&o_filled, 1);
  wait_flag(&o_may_exit);
  for (size_t i = 0; i < nblk; i++) {
    if (blk[i] == NULL) continue; /* F's */
    t_verify(blk[i], 64, i);
    hak_free(blk[i]);
  }
  return NULL; /* exit: the SLL flushed, the queue drained, the runs released */
}

static void *victim[2];

static void *free_two_parked(void *arg) {
  (void)arg;
  t_sched_volunteer();
  hak_free(victim[0]);
  t_sched_arm(HAK_SP_AFTER_PUSH, t_base_of(victim[1]));
  hak_free(victim[1]); /* parks right after its push */
  return NULL;
}

static void scenario_touch_after_push(void) {
  t_thread_cache();
  pthread_t o = r_start(owner_fill, NULL);
  wait_flag(&o_filled);
  /* Two blocks of x, in one run, for F. */
  size_t k = 0;
  for (size_t i = 0; i < nblk && k < 2; i++) {
    if (hak_ss_of(blk[i]) != x) continue;
    if (k == 1 && t_run_of(blk[i]) != t_run_of(victim[0])) continue;
    victim[k++] = blk[i];
    blk[i] = NULL;
  }
  T_CHECK(k == 2, "setup: fewer than two blocks of one run in the SuperSlab");
  hak_stats_t st0 = t_stats();
  pthread_t f = r_start(free_two_parked, NULL);
  T_CHECK(t_sched_wait_parked() == t_base_of(victim[1]), "F parked at another block");
  /* F's block is queued; O drains and releases everything, the main thread unmaps. */
  atomic_store(&o_may_exit, 1);
  r_join(o);
  T_CHECK(hak_trim() >= 0, "hak_trim failed");
  T_CHECK(!r_mapped(x), "setup: the SuperSlab %p is still mapped after the trim", (void *)x);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.superslabs_unmapped >= st0.superslabs_unmapped + 1, "no SuperSlab unmapped");
  t_sched_release(); /* F resumes after its push: it must not touch the run */
  r_join(f);
  hak_stats_t st2 = t_stats();
  T_CHECK(st2.remote_frees == st0.remote_frees + 2, "remote_frees %llu -> %llu, want +2",
          (unsigned long long)st0.remote_frees, (unsigned long long)st2.remote_frees);
  T_CHECK(t_sched_hits(HAK_SP_BEFORE_UNMAP) >= 1, "the unmap did not pass its schedule point");
  /* The allocator goes on. */
  for (int i = 0; i < 8; i++) {
    void *p = hak_malloc(t_size_of_class(R_BIG_CLASS));
    T_CHECK(p != NULL && hak_owns(p) == 1, "allocation after the unmap: %p", p);
    hak_free(p);
  }
}

/* ---- stale_notify ----------------------------------------------------------------------------- */

#define SN_CLASS 12

static void *sn_block, *sn_keep;
static hak_slab_t *sn_run;
static hak_tcache_t *a_cache;
static _Atomic int a_ready, a_may_exit, b_ready, b_may_refill;

static void *a_owner(void *arg) {
  (void)arg;
  size_t n = t_size_of_class(SN_CLASS);
  sn_block = hak_malloc(n);
  sn_keep = hak_malloc(n);
  T_CHECK(sn_block && sn_keep, "hak_malloc(%zu) failed", n);
  T_CHECK(t_run_of(t_base_of(sn_block)) == t_run_of(t_base_of(sn_keep)), "setup: two runs");
  sn_run = t_run_of(t_base_of(sn_block));
  t_fill(sn_block, n, 1);
  a_cache = hak_tc;
  atomic_store(&a_ready, 1);
  wait_flag(&a_may_exit);
  return NULL; /* exit holding both blocks: the run is orphaned and published */
}

static void *f_free_parked(void *arg) {
  (void)arg;
  t_sched_volunteer();
  t_sched_arm(HAK_SP_BEFORE_PUSH, sn_run);
  hak_free(sn_block); /* parks before its decision */
  return NULL;
}

static void *b_recycled(void *arg) {
  (void)arg;
  t_thread_cache();
  T_CHECK(hak_tc == a_cache, "setup: B did not get A's recycled cache");
  atomic_store(&b_ready, 1);
  wait_flag(&b_may_refill);
  /* Refills of SN_CLASS collect whatever was delivered to this cache. */
  size_t n = t_size_of_class(SN_CLASS);
  static void *mine[512];
  uint64_t refills0 = hak_tc->stat.refills[SN_CLASS];
  size_t k = 0;
  while (hak_tc->stat.refills[SN_CLASS] < refills0 + 2 && k < 512) mine[k++] = hak_malloc(n);
  T_CHECK(atomic_load(&hak_tc->notify) == NULL, "B's notify stack not empty after its refills");
  for (size_t i = 0; i < k; i++)
    T_CHECK(mine[i] != sn_block, "B got the block delivered to it");
  while (k > 0) hak_free(mine[--k]);
  return NULL;
}

static void scenario_stale_notify(void) {
  hak_opt.rf_force_notify = 1;
  t_thread_cache();
  pthread_t a = r_start(a_owner, NULL);
  wait_flag(&a_ready);
  pthread_t f = r_start(f_free_parked, NULL);
  T_CHECK(t_sched_wait_parked() == sn_run, "F parked at another run");
  /* A exits; B takes A's cache; the main thread adopts A's run. */
  atomic_store(&a_may_exit, 1);
  r_join(a);
  T_CHECK(hak_owner_of(sn_run) == NULL && sn_run->list == HAK_LIST_PUBLISHED,
          "setup: A's run is not published");
  pthread_t b = r_start(b_recycled, NULL);
  wait_flag(&b_ready);
  size_t n = t_size_of_class(SN_CLASS);
  hak_stats_t st0 = t_stats();
  void *first = hak_malloc(n);
  T_CHECK(hak_owner_of(sn_run) == hak_tc, "setup: the main thread did not adopt A's run");
  T_CHECK(t_stats().adoptions == st0.adoptions + 1, "setup: no adoption");
  /* F decides now: the run's owner is the main thread. */
  t_sched_release();
  r_join(f);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.notifies == st0.notifies + 1, "notifies %llu -> %llu, want +1",
          (unsigned long long)st0.notifies, (unsigned long long)st1.notifies);
  atomic_store(&b_may_refill, 1);
  r_join(b);
  /* The delivered block is reused by its run's owner. */
  static void *got[1024];
  size_t k = 0;
  bool found = false;
  while (!found && k < 1024) {
    got[k] = hak_malloc(n);
    found = got[k++] == sn_block;
  }
  T_CHECK(found, "the remote-freed block never came back (%zu allocations)", k);
  while (k > 0) hak_free(got[--k]);
  hak_free(first);
  hak_free(sn_keep);
}

/* ---- orphan_count ----------------------------------------------------------------------------- */

#define OC_CLASS 19
#define OC_N 20

static void *oc[OC_N];
static hak_slab_t *oc_run;

static void *a_exit_parked(void *arg) {
  (void)arg;
  size_t n = t_size_of_class(OC_CLASS);
  for (int i = 0; i < OC_N; i++) {
    oc[i] = hak_malloc(n);
    T_CHECK(oc[i] != NULL, "hak_malloc(%zu) failed", n);
  }
  oc_run = t_run_of(t_base_of(oc[0]));
  for (int i = 1; i < OC_N; i++)
    T_CHECK(t_run_of(t_base_of(oc[i])) == oc_run, "setup: block %d in another run", i);
  t_sched_volunteer();
  t_sched_arm(HAK_SP_ORPHAN_PUBLISH, oc_run);
  return NULL; /* the exit parks after giving up the owner word */
}

static void scenario_orphan_count(void) {
  hak_opt.ss_adopt = 0;
  t_thread_cache();
  pthread_t a = r_start(a_exit_parked, NULL);
  T_CHECK(t_sched_wait_parked() == oc_run, "A parked at another run");
  hak_stats_t st0 = t_stats();
  hak_free(oc[0]); /* onto the word of a run nobody owns yet: queued */
  hak_free(oc[1]);
  t_sched_release();
  r_join(a);
  uintptr_t w = atomic_load(&oc_run->remote);
  T_CHECK((w & HAK_RQ_ORPHAN) && hak_rq_count(w) == OC_N - 2,
          "orphan word %#lx: count %u, %d blocks are out", (unsigned long)w, hak_rq_count(w),
          OC_N - 2);
  for (int i = 2; i < OC_N; i++) hak_free(oc[i]);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.last_free_releases == st0.last_free_releases + 1,
          "last-free releases %llu -> %llu: the orphan was not released by its last free",
          (unsigned long long)st0.last_free_releases, (unsigned long long)st1.last_free_releases);
  T_CHECK(oc_run->state == HAK_SLAB_FREE, "the orphan's slab is still bound");
}

static const r_scenario_t scenarios[] = {
    {"touch_after_push", scenario_touch_after_push, R_SUCCEEDS, NULL},
    {"stale_notify", scenario_stale_notify, R_SUCCEEDS, NULL},
    {"orphan_count", scenario_orphan_count, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_remote_windows", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
