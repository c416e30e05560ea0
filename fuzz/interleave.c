/* Fuzz harness of the cross-thread windows (Box 2 remote queue, Box 3 ownership, Box 4
 * publish/adopt), through the schedule points (tests/support/hak_sched.h; links hakmem_sched).
 *
 * The input chooses operations and interleavings both: which windows every thread is slowed
 * down in (each point yields the CPU 0..15 times), and which one thread is parked at which
 * window while the main thread goes on, until the script lets it go. Each round:
 *   - an owner thread O allocates groups of blocks of classes the input picks (tiny runs, runs
 *     of many slabs), fills them and waits; it exits when the script says;
 *   - a freer thread F frees a subset of them (the input picks it), each verified first;
 *   - the volunteer (none, O or F) parks at the input's window the first time it reaches it:
 *     O after its allocations (its exit: flush, orphan, publish), F from its start;
 *   - the main thread runs the script: start F, let O exit, trim (unmaps every empty
 *     SuperSlab at once), allocate and free blocks of a class (adoptions, refills that collect
 *     deliveries), free some of the blocks F does not, let the parked thread go, fork (the
 *     child frees O's blocks, which must not stay bound to O's cache, and exits), or have a
 *     helper thread H do the allocating and freeing: H starts when the script says, so it may
 *     get the cache of an O that exited (caches are recycled) while a delivery is on its way.
 * Then the round ends: every thread is joined (a thread still parked is let go), the main
 * thread frees what is left, each block verified.
 *
 * Checked:
 *   - no crash, no sanitizer report, no fail-fast diagnostic: a remote free never touches a
 *     run after it may be gone, a delivery always reaches the run's owner;
 *   - every block keeps its contents until it is freed;
 *   - after the input hakmem's live block count is back where it started, and no run any of
 *     the input's blocks lay in is still an orphan (every block came back, so the free of the
 *     last one released it): a miscounted orphan is a leak;
 *   - in a fork child the runs of O's blocks, all freed by the child, no longer belong to O's
 *     cache (the child took it over); and a free of a block no run has carved yet fails fast.
 * Settings: HAKMEM_TINY_SS_ADOPT, HAKMEM_TINY_RF_FORCE_NOTIFY, HAKMEM_TINY_MUST_ADOPT and
 * HAKMEM_TINY_REMOTE_BATCH (1, 2, 8 or 32 remote frees held back per run; every thread flushes
 * what it holds at exit, the main thread at the end of each round) come from the input too, so
 * every backout is fuzzed, batched or not.
 *
 * Input:
 *   flags                           bit 0: adopt off, bit 1: force notify, bit 2: must adopt,
 *                                   bits 3-4: remote batch 1, 2, 8, 32
 *   widen[NPOINTS]                  yields at each point of these boxes: byte % 16
 *   rounds                          1 + rounds % MAX_ROUNDS; then per round:
 *   groups (class count)*groups     1 + groups % 3 groups: class table[class % N], 1 + count % 32
 *   volunteer point                 volunteer % 3: none, O, F; point % (NPOINTS - 1): the
 *                                   window (never the unmap: it holds the SuperSlab lock)
 *   seed32 density                  F frees each block with probability density / 256
 *   nsteps (op arg)*nsteps          the script: nsteps % 12 steps, op % 8:
 *                                   0 start F, 1 O exits (waited for unless O may park),
 *                                   2 trim, 3 allocate and free
 *                                   1 + arg / N blocks of class table[arg % N], 4 free
 *                                   1 + arg % 8 of the blocks F does not free, 5 arg odd: let
 *                                   the parked thread go, even: give the volunteer 5 ms to
 *                                   park, 6 fork (before F or H start; arg odd: the
 *                                   uncarved check, even: the takeover check), 7 the same as
 *                                   3 in H (started by the first such step) */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fast.h"
#include "hak_block.h"
#include "hak_child.h"
#include "hak_sched.h"
#include "fuzz.h"

#define MAX_ROUNDS 4
/* The schedule points of the boxes above, HAK_SP_BEFORE_PUSH .. HAK_SP_BEFORE_UNMAP (the input
 * has a byte for each; the points after them, of other boxes, are never reached here). */
#define NPOINTS (HAK_SP_BEFORE_UNMAP + 1)
#define MAX_BLOCKS 96
#define MAX_RUNS (MAX_ROUNDS * MAX_BLOCKS)

static const int class_table[] = {0, 3, 8, 12, 19, 24, 30, 38, HAK_NUM_CLASSES - 1};
#define NCLASSES ((int)(sizeof class_table / sizeof class_table[0]))

typedef struct blk_s {
  void *p;
  size_t n;
  uint64_t key;
  bool by_f;     /* F frees it */
  bool freed;
} blk_t;

static blk_t blk[MAX_BLOCKS];
static int nblk;
static int group_cls[3], group_cnt[3], ngroups;
static hak_tcache_t *o_cache;
static _Atomic int o_ready, o_may_exit;
static int volunteer; /* 0 none, 1 O, 2 F */
static hak_slab_t *runs[MAX_RUNS]; /* runs the input's blocks lay in */
static int nruns;
static uint64_t key_seq;

static void verify_free(blk_t *b) {
  size_t bad = t_find_bad_key(b->p, b->n < 256 ? b->n : 256, b->key);
  T_INVARIANT(bad == SIZE_MAX, "block %p lost its contents at byte %zu", b->p, bad);
  hak_free(b->p);
  b->freed = true;
}

/* A run of runs[] may be read only while its SuperSlab is registered: a trim may have unmapped
 * it. The caller is the only thread that could change that (every other is joined or parked
 * where it holds nothing of the run's SuperSlab, or this is a fork child). */
static bool run_mapped(const hak_slab_t *m) {
  return hak_registry_ss((uintptr_t)m) != NULL && m->state == HAK_SLAB_HEAD;
}

static void note_run(void *p) {
  hak_slab_t *m = hak_run_of(hak_bridge_base(p));
  for (int i = 0; i < nruns; i++)
    if (runs[i] == m) return;
  if (nruns < MAX_RUNS) runs[nruns++] = m;
}

/* ---- the round's threads --------------------------------------------------------------------- */

static void *owner_main(void *arg) {
  (void)arg;
  for (int g = 0; g < ngroups; g++) {
    size_t n = hak_class_size(class_table[group_cls[g]]);
    for (int i = 0; i < group_cnt[g] && nblk < MAX_BLOCKS; i++) {
      blk_t *b = &blk[nblk];
      b->p = hak_malloc(n);
      T_INVARIANT(b->p != NULL, "hak_malloc(%zu) failed", n);
      b->n = n;
      b->key = ++key_seq;
      t_fill_key(b->p, n < 256 ? n : 256, b->key);
      note_run(b->p);
      nblk++;
    }
  }
  o_cache = hak_tc;
  if (volunteer == 1) t_sched_volunteer();
  atomic_store(&o_ready, 1);
  while (!atomic_load(&o_may_exit)) t_sched_nap();
  return NULL; /* the exit flushes, drains, orphans and publishes: maybe parked */
}

static void *freer_main(void *arg) {
  (void)arg;
  if (volunteer == 2) t_sched_volunteer();
  for (int i = 0; i < nblk; i++)
    if (blk[i].by_f) verify_free(&blk[i]);
  return NULL;
}

/* H: runs churns the main thread posts, one at a time, until told to exit. */
static _Atomic int h_cmd; /* 0 idle, >0 a churn (cls * 64 + k) + 1, -1 exit */

static void main_churn(int cls, int k);

static void *helper_main(void *arg) {
  (void)arg;
  for (;;) {
    int c = atomic_load(&h_cmd);
    if (c < 0) return NULL;
    if (c == 0) {
      t_sched_nap();
      continue;
    }
    main_churn((c - 1) / 64, (c - 1) % 64 + 1);
    atomic_store(&h_cmd, 0);
  }
}

/* Joins t, letting a parked thread go while waiting. */
static void join_releasing(pthread_t t) {
  while (pthread_tryjoin_np(t, NULL) == EBUSY) {
    if (atomic_load(&t_sched.state) == T_SCHED_PARKED) t_sched_release();
    t_sched_nap();
  }
}

/* Gives the volunteer up to naps * 100 us to park (it may never reach the point). A choice of
 * interleaving, not a condition of correctness. */
static void wait_parked(int naps) {
  for (int i = 0; i < naps && atomic_load(&t_sched.state) == T_SCHED_ARMED; i++) t_sched_nap();
}

static void release_if_parked(void) {
  if (atomic_load(&t_sched.state) == T_SCHED_PARKED) t_sched_release();
}

/* ---- script operations ------------------------------------------------------------------------ */

static void main_churn(int cls, int k) {
  static void *tmp[64];
  size_t n = hak_class_size(cls);
  if (k > 64) k = 64;
  for (int i = 0; i < k; i++) {
    tmp[i] = hak_malloc(n);
    T_INVARIANT(tmp[i] != NULL, "hak_malloc(%zu) failed", n);
    t_fill_key(tmp[i], n < 64 ? n : 64, (uint64_t)i);
  }
  for (int i = 0; i < k; i++) {
    T_INVARIANT(t_find_bad_key(tmp[i], n < 64 ? n : 64, (uint64_t)i) == SIZE_MAX,
                "churn block %p damaged", tmp[i]);
    hak_free(tmp[i]);
  }
}

static void main_free_some(int k) {
  for (int i = 0; i < nblk && k > 0; i++) {
    if (blk[i].by_f || blk[i].freed) continue;
    verify_free(&blk[i]);
    k--;
  }
}

/* Fork child checks report by exit status (an T_INVARIANT would abort, which one of them expects):
 * 0 passed, 3 the check failed (a line on stderr says why). */
#define CHILD_FAILED 3

/* Takeover: the child frees every block of O (F has not started), then no run of them may
 * still belong to O's cache. Uncarved: the child frees the first block not yet carved of a run
 * of O's, which must fail fast (SIGABRT); a run with nothing left to carve passes (exit 0). */
__attribute__((unused)) static void fork_check(bool uncarved) { /* not under tsan */
  int fds[2] = {-1, -1}; /* the uncarved child's stderr: its diagnostic is expected */
  T_INVARIANT(!uncarved || pipe(fds) == 0, "pipe failed");
  fflush(NULL);
  pid_t pid = fork();
  T_INVARIANT(pid >= 0, "fork failed");
  if (pid == 0) {
    if (uncarved) {
      dup2(fds[1], 2);
      close(fds[0]);
      signal(SIGABRT, SIG_DFL); /* the fail-fast abort ends the child, not a fuzzer's handler */
      for (int i = 0; i < nruns; i++) {
        hak_slab_t *m = runs[i];
        if (!run_mapped(m)) continue;
        uint32_t carved = atomic_load(&m->carved);
        if (carved >= m->capacity) continue;
        hak_free(m->data + (size_t)carved * m->stride + HAK_HDR_SIZE);
        fprintf(stderr, "fork child: free of never-carved block %u of run %p was accepted\n",
                carved, (void *)m);
        _exit(CHILD_FAILED);
      }
      _exit(0);
    }
    for (int i = 0; i < nblk; i++)
      if (!blk[i].freed) verify_free(&blk[i]);
    for (int i = 0; i < nruns; i++) {
      hak_slab_t *m = runs[i];
      if (run_mapped(m) && hak_owner_of(m) == o_cache) {
        fprintf(stderr, "fork child: run %p still owned by a thread the child does not have\n",
                (void *)m);
        _exit(CHILD_FAILED);
      }
    }
    _exit(0);
  }
  /* Read to the end, through EINTR: libFuzzer's timeout timer interrupts reads in the parent
   * (a read cut short once lost the child's diagnostic). */
  static char out[4096];
  out[0] = '\0';
  if (uncarved) {
    close(fds[1]);
    t_read_all(fds[0], out, sizeof out);
    close(fds[0]);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    T_INVARIANT(errno == EINTR, "waitpid failed");
  if (uncarved)
    T_INVARIANT((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                 strstr(out, "invalid free (block never allocated)") != NULL) ||
                    (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                "fork child: an invalid free did not fail fast (status %#x): %.200s", status, out);
  else
    T_INVARIANT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "fork child failed (status %#x): see its line above", status);
}

static void run_round(f_in_t *in) {
  nblk = 0;
  ngroups = 1 + f_u8(in) % 3;
  for (int g = 0; g < ngroups; g++) {
    group_cls[g] = f_u8(in) % NCLASSES;
    group_cnt[g] = 1 + f_u8(in) % 32;
  }
  volunteer = f_u8(in) % 3;
  enum hak_sched_point point = (enum hak_sched_point)(f_u8(in) % (NPOINTS - 1));
  uint32_t seed = f_u32(in);
  uint8_t density = f_u8(in);
  int nsteps = f_u8(in) % 12;

  atomic_store(&o_ready, 0);
  atomic_store(&o_may_exit, 0);
  pthread_t o, f;
  t_start(&o, owner_main, NULL);
  while (!atomic_load(&o_ready)) t_sched_nap();
  uint64_t rng = seed | (uint64_t)seed << 32 | 1;
  for (int i = 0; i < nblk; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    blk[i].by_f = (rng & 255) < density;
    blk[i].freed = false;
  }
  if (volunteer != 0) t_sched_arm(point, NULL);

  bool f_started = false, h_started = false, o_joined = false;
  pthread_t h;
  atomic_store(&h_cmd, 0);
  for (int s = 0; s < nsteps; s++) {
    uint8_t op = f_u8(in) % 8, arg = f_u8(in);
    switch (op) {
    case 0:
      if (!f_started)
        t_start(&f, freer_main, NULL), f_started = true;
      break;
    case 1: /* O exits; unless it may park on the way, wait until it is gone */
      atomic_store(&o_may_exit, 1);
      if (volunteer != 1 && !o_joined)
        t_join(o), o_joined = true; /* O cannot park */
      break;
    case 2:
      hak_trim();
      break;
    case 3:
      main_churn(class_table[arg % NCLASSES], 1 + arg / NCLASSES);
      break;
    case 4:
      main_free_some(1 + arg % 8);
      break;
    case 5:
      if (arg & 1) release_if_parked();
      else wait_parked(50);
      break;
    case 6:
#if !HAKMEM_TSAN
      if (!f_started && !h_started && !atomic_load(&o_may_exit)) fork_check(arg & 1);
#endif
      break;
    case 7:
      if (!h_started)
        t_start(&h, helper_main, NULL), h_started = true;
      atomic_store(&h_cmd, class_table[arg % NCLASSES] * 64 + arg / NCLASSES + 1);
      /* H waits for nothing a parked thread holds (no point is inside a lock). */
      while (atomic_load(&h_cmd) != 0) t_sched_nap();
      break;
    }
  }
  if (h_started) {
    atomic_store(&h_cmd, -1);
    join_releasing(h);
  }
  if (!f_started)
    t_start(&f, freer_main, NULL);
  atomic_store(&o_may_exit, 1);
  join_releasing(f);
  if (!o_joined) join_releasing(o);
  release_if_parked();
  atomic_store(&t_sched.point, -1);
  atomic_store(&t_sched.state, T_SCHED_IDLE);
  for (int i = 0; i < nblk; i++)
    if (!blk[i].freed) verify_free(&blk[i]);
  /* The main thread never exits: what it holds back goes now, as its next refill would send
   * it, so that every orphan it freed into can be released before the checks. */
  hak_remote_flush(hak_tc);
}

/* Remote frees held back per run before one push (HAKMEM_TINY_REMOTE_BATCH), flags bits 3-4. */
static const long batch_sizes[4] = {1, 2, 8, 32};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool once;
  if (!once) {
    hak_process_init();
    hak_opt.decay_ms = 3600000; /* only the script's trims unmap */
    hak_free(hak_malloc(1));    /* the main thread's cache: never one an O leaves behind */
    t_sched_install();
    once = true;
  }
  f_in_t in = f_in(data, size);
  uint8_t flags = f_u8(&in);
  hak_opt.ss_adopt = !(flags & 1);
  hak_opt.rf_force_notify = (flags >> 1) & 1;
  hak_opt.must_adopt = (flags >> 2) & 1;
  hak_opt.remote_batch = batch_sizes[(flags >> 3) & 3];
  for (int p = 0; p < NPOINTS; p++) t_sched_widen((enum hak_sched_point)p, f_u8(&in) % 16);
  uint64_t live0 = t_live_blocks();
  nruns = 0;
  int rounds = 1 + f_u8(&in) % MAX_ROUNDS;
  for (int r = 0; r < rounds; r++) run_round(&in);
  for (int p = 0; p < NPOINTS; p++) t_sched_widen((enum hak_sched_point)p, 0);

  uint64_t live1 = t_live_blocks();
  T_INVARIANT(live1 == live0, "live blocks %llu before the input, %llu after",
              (unsigned long long)live0, (unsigned long long)live1);
  /* Every other thread is joined: nothing changes under these reads. A run is read only while
   * its SuperSlab is registered (a trim may have unmapped it). */
  for (int i = 0; i < nruns; i++) {
    hak_slab_t *m = runs[i];
    if (!run_mapped(m)) continue;
    uintptr_t w = atomic_load(&m->remote);
    T_INVARIANT(!(w & HAK_RQ_ORPHAN),
                "run %p is still an orphan (word %#lx, %u blocks out) though every block is back",
                (void *)m, (unsigned long)w, hak_rq_count(w));
  }
  hak_opt.ss_adopt = 1;
  hak_opt.rf_force_notify = 0;
  hak_opt.must_adopt = 0;
  return 0;
}
