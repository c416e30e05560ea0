/* Box 4, publish / adopt (src/tiny/adopt.c): runs of an exited thread change hands.
 *
 * Part 1: thread A allocates blocks of one class, hands them to main and exits: its runs are
 * orphaned (orphaned_slabs grows) and published. Main frees half of the blocks (remote frees
 * into ownerless runs). Thread B then allocates the same class: it adopts (adoptions grows) one
 * of A's runs, which is now owned by B's cache, and gets blocks main freed. After every block
 * is freed, the class's allocs and frees balance again (and live_blocks is back).
 *
 * Part 2: several threads allocate and exit, leaving many published runs; then 4 threads race
 * to allocate the same class. Before any of them exits, each records the runs on its own lists
 * (checking it owns each); no run may appear in two threads' records: a published run is
 * adopted at most once.
 *
 * Part 3: a thread allocates the blocks of one run and exits, so the run is published; main
 * frees them all. The free of the last block releases the run (last_free_releases grows, the
 * run is unbound) instead of leaving it published until some thread of its class refills. */
#include "unit.h"

static hak_slab_t *run_of_user(void *p) { return t_run_of(hak_bridge_base(p)); }

/* ---- part 1 -------------------------------------------------------------------------------- */

#define A_BLOCKS 700
static int cls1 = 9;
static void *a_blocks[A_BLOCKS];
static hak_slab_t *a_runs[64];
static int n_a_runs;
static hak_slab_t *b_adopted;
static uint64_t b_adoptions;

static void *thread_a(void *arg) {
  (void)arg;
  for (int i = 0; i < A_BLOCKS; i++) {
    a_blocks[i] = hak_malloc(t_size_of_class(cls1));
    T_CHECK(a_blocks[i] != NULL, "A: hak_malloc failed");
    hak_slab_t *m = run_of_user(a_blocks[i]);
    T_CHECK(hak_owner_of(m) == hak_tc, "A: block in a run A does not own");
    bool known = false;
    for (int j = 0; j < n_a_runs; j++) known |= a_runs[j] == m;
    if (!known) {
      T_CHECK(n_a_runs < 64, "A: too many runs");
      a_runs[n_a_runs++] = m;
    }
  }
  return NULL; /* exit: A's runs are orphaned with blocks still out */
}

static int is_a_run(const hak_slab_t *m) {
  for (int j = 0; j < n_a_runs; j++)
    if (a_runs[j] == m) return 1;
  return 0;
}

static void *thread_b(void *arg) {
  (void)arg;
  hak_tcache_t *tc = t_thread_cache();
  static void *mine[400];
  for (int i = 0; i < 400; i++) {
    mine[i] = hak_malloc(t_size_of_class(cls1));
    T_CHECK(mine[i] != NULL, "B: hak_malloc failed");
  }
  b_adoptions = t_tc_sum(tc, adoptions);
  for (int l = 0; l < 2; l++)
    for (hak_slab_t *m = l ? tc->full[cls1] : tc->partial[cls1]; m != NULL; m = m->next) {
      T_CHECK(hak_owner_of(m) == tc, "B: a run on B's lists is owned by %p",
              (void *)hak_owner_of(m));
      if (is_a_run(m) && b_adopted == NULL) b_adopted = m;
    }
  for (int i = 0; i < 400; i++) hak_free(mine[i]);
  return NULL;
}

static void part1(void) {
  hak_class_stats_t cs0;
  hak_class_stats_get(cls1, &cs0);
  hak_stats_t st0 = t_stats();
  t_run_thread(thread_a, NULL);
  hak_stats_t st1 = t_stats();
  T_CHECK(n_a_runs >= 2, "A used only %d runs", n_a_runs);
  T_CHECK(st1.orphaned_slabs > st0.orphaned_slabs, "orphaned_slabs did not grow at A's exit");
  for (int j = 0; j < n_a_runs; j++) {
    hak_slab_t *m = a_runs[j];
    T_CHECK(hak_owner_of(m) == NULL, "A's run %d still owned after A exited", j);
    T_CHECK(m->list == HAK_LIST_PUBLISHED, "A's run %d not published (list %d)", j, m->list);
    T_CHECK(m->used > 0, "A's run %d empty but kept", j);
  }
  /* Main frees half of A's blocks: into ownerless runs, so remote. */
  uint64_t remote0 = st1.remote_frees;
  for (int i = 0; i < A_BLOCKS; i += 2) {
    hak_free(a_blocks[i]);
    a_blocks[i] = NULL;
  }
  hak_stats_t st2 = t_stats();
  T_CHECK(st2.remote_frees - remote0 >= A_BLOCKS / 2, "only %llu of main's frees went remote",
          (unsigned long long)(st2.remote_frees - remote0));
  for (int j = 0; j < n_a_runs; j++)
    T_CHECK(hak_owner_of(a_runs[j]) == NULL, "a remote free made run %d owned", j);

  t_run_thread(thread_b, NULL);
  hak_stats_t st3 = t_stats();
  T_CHECK(st3.adoptions > st2.adoptions, "B adopted nothing");
  T_CHECK(b_adoptions >= 1, "B's cache counted %llu adoptions", (unsigned long long)b_adoptions);
  T_CHECK(b_adopted != NULL, "none of B's runs was one of A's");
  T_CHECK(st3.drained_blocks > st2.drained_blocks, "the adopter drained nothing");

  /* The rest of A's blocks: into runs orphaned again by B's exit, or still published. */
  for (int i = 1; i < A_BLOCKS; i += 2) hak_free(a_blocks[i]);
  hak_class_stats_t cs1;
  hak_class_stats_get(cls1, &cs1);
  T_CHECK(cs1.allocs - cs0.allocs == cs1.frees - cs0.frees, "class %d: %llu allocs but %llu frees",
          cls1, (unsigned long long)(cs1.allocs - cs0.allocs),
          (unsigned long long)(cs1.frees - cs0.frees));
  T_CHECK(cs1.allocs - cs0.allocs >= A_BLOCKS + 400, "class %d: only %llu allocs counted", cls1,
          (unsigned long long)(cs1.allocs - cs0.allocs));
  hak_stats_t st4 = t_stats();
  /* libc allocates through hakmem in override builds: a few of its blocks per thread. */
  uint64_t slack = U_LIBC_IS_HAKMEM ? 16 : 0;
  uint64_t diff = st4.live_blocks > st0.live_blocks ? st4.live_blocks - st0.live_blocks
                                                    : st0.live_blocks - st4.live_blocks;
  T_CHECK(diff <= slack, "live_blocks %llu at the end, %llu at the start",
          (unsigned long long)st4.live_blocks, (unsigned long long)st0.live_blocks);
}

/* ---- part 2 -------------------------------------------------------------------------------- */

#define MAKERS 6
#define MAKER_BLOCKS 400
#define RACERS 4
#define RACER_BLOCKS 500
#define MAX_RUNS 128

static int cls2 = 6;
static void *made[MAKERS][MAKER_BLOCKS];
static hak_slab_t *recorded[RACERS][MAX_RUNS];
static int nrecorded[RACERS];
static pthread_barrier_t race_start, race_recorded;

static void *maker(void *arg) {
  void **out = arg;
  for (int i = 0; i < MAKER_BLOCKS; i++) {
    out[i] = hak_malloc(t_size_of_class(cls2));
    T_CHECK(out[i] != NULL, "maker: hak_malloc failed");
  }
  return NULL;
}

static void *racer(void *arg) {
  int id = (int)(intptr_t)arg;
  hak_tcache_t *tc = t_thread_cache();
  static void *blocks[RACERS][RACER_BLOCKS];
  pthread_barrier_wait(&race_start);
  for (int i = 0; i < RACER_BLOCKS; i++) {
    blocks[id][i] = hak_malloc(t_size_of_class(cls2));
    T_CHECK(blocks[id][i] != NULL, "racer: hak_malloc failed");
  }
  for (int l = 0; l < 2; l++)
    for (hak_slab_t *m = l ? tc->full[cls2] : tc->partial[cls2]; m != NULL; m = m->next) {
      T_CHECK(hak_owner_of(m) == tc, "racer %d: run %p on its list owned by %p", id, (void *)m,
              (void *)hak_owner_of(m));
      T_CHECK(nrecorded[id] < MAX_RUNS, "racer %d: too many runs", id);
      recorded[id][nrecorded[id]++] = m;
    }
  for (int i = 0; i < RACER_BLOCKS; i++)
    T_CHECK(hak_owner_of(run_of_user(blocks[id][i])) == tc, "racer %d: block in a foreign run", id);
  /* Nobody exits (and gives runs up) before everyone has recorded. */
  pthread_barrier_wait(&race_recorded);
  for (int i = 0; i < RACER_BLOCKS; i++) hak_free(blocks[id][i]);
  return NULL;
}

static void part2(void) {
  for (int t = 0; t < MAKERS; t++)
    t_run_thread(maker, made[t]);
  /* Half the blocks come back while their runs are published. */
  for (int t = 0; t < MAKERS; t++)
    for (int i = 0; i < MAKER_BLOCKS; i += 2) {
      hak_free(made[t][i]);
      made[t][i] = NULL;
    }
  hak_stats_t st0 = t_stats();
  pthread_barrier_init(&race_start, NULL, RACERS);
  pthread_barrier_init(&race_recorded, NULL, RACERS);
  pthread_t th[RACERS];
  for (int i = 0; i < RACERS; i++)
    t_start(&th[i], racer, (void *)(intptr_t)i);
  for (int i = 0; i < RACERS; i++)
    t_join(th[i]);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.adoptions - st0.adoptions >= 2, "only %llu adoptions in the race",
          (unsigned long long)(st1.adoptions - st0.adoptions));
  for (int a = 0; a < RACERS; a++)
    for (int i = 0; i < nrecorded[a]; i++)
      for (int b = a + 1; b < RACERS; b++)
        for (int j = 0; j < nrecorded[b]; j++)
          T_CHECK(recorded[a][i] != recorded[b][j], "run %p owned by racers %d and %d at once",
                  (void *)recorded[a][i], a, b);
  for (int a = 0; a < RACERS; a++)
    for (int i = 0; i < nrecorded[a]; i++)
      for (int j = i + 1; j < nrecorded[a]; j++)
        T_CHECK(recorded[a][i] != recorded[a][j], "racer %d lists run %p twice", a,
                (void *)recorded[a][i]);
  for (int t = 0; t < MAKERS; t++)
    for (int i = 1; i < MAKER_BLOCKS; i += 2) hak_free(made[t][i]);
  pthread_barrier_destroy(&race_start);
  pthread_barrier_destroy(&race_recorded);
}

/* ---- part 3 -------------------------------------------------------------------------------- */

#define P3_BLOCKS 5
static int cls3 = 15;
static void *p3_blocks[P3_BLOCKS];

static void *p3_maker(void *arg) {
  (void)arg;
  for (int i = 0; i < P3_BLOCKS; i++) {
    p3_blocks[i] = hak_malloc(t_size_of_class(cls3));
    T_CHECK(p3_blocks[i] != NULL, "part 3: hak_malloc failed");
  }
  return NULL;
}

static void part3(void) {
  t_run_thread(p3_maker, NULL);
  hak_slab_t *m = run_of_user(p3_blocks[0]);
  for (int i = 1; i < P3_BLOCKS; i++)
    T_CHECK(run_of_user(p3_blocks[i]) == m, "part 3: blocks in more than one run");
  T_CHECK(hak_owner_of(m) == NULL && m->list == HAK_LIST_PUBLISHED,
          "part 3: the run of an exited thread is not published (owner %p, list %d)",
          (void *)hak_owner_of(m), m->list);
  hak_stats_t st0 = t_stats();
  for (int i = 0; i < P3_BLOCKS - 1; i++) hak_free(p3_blocks[i]);
  T_CHECK(m->list == HAK_LIST_PUBLISHED && m->class_idx == cls3,
          "part 3: the run left the published list before its last block came back");
  hak_free(p3_blocks[P3_BLOCKS - 1]);
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.last_free_releases == st0.last_free_releases + 1,
          "part 3: last_free_releases %llu -> %llu, want one release",
          (unsigned long long)st0.last_free_releases, (unsigned long long)st1.last_free_releases);
  T_CHECK(m->class_idx == HAK_CLASS_NONE && hak_owner_of(m) == NULL,
          "part 3: the run is still bound (class %d) after its last free", m->class_idx);
  T_CHECK(st1.adoptions == st0.adoptions, "part 3: the run was adopted, not released");
}

int main(void) {
  t_thread_cache();
  T_CHECK(hak_opt.ss_adopt == 1, "run with adoption on (HAKMEM_TINY_SS_ADOPT unset or 1)");
  hak_opt.remote_batch = 1; /* each remote free reaches its run at once (the parts count them) */
  part1();
  part2();
  part3();
  printf("unit_adopt: OK\n");
  return 0;
}
