/* Programs whose allocation traces the trace tests record (run with HAKMEM_TRACE set).
 *
 *   trace_record roundtrip STATS  threads allocating, freeing locally and each other's blocks,
 *                                 one exiting early, realloc, calloc, aligned calls, a trim;
 *                                 writes hakmem's final counters to STATS (replay_stats.h) and
 *                                 ends at once (_exit): nothing runs after the counters
 *   trace_record crash abort|segv 1000 x malloc(24), 500 frees, malloc(4242), then dies
 *   trace_record doublefree       a few thousand calls in two threads, then one block freed
 *                                 twice (hakmem aborts in header mode)
 *   trace_record small            a small two-thread workload (for --to-corpus)
 *   trace_record handoff          short-lived producers hand 64 KiB and tiny blocks to two
 *                                 consumers that free them (remote frees, often into runs of
 *                                 exited owners) while a trimmer calls hak_trim(): the shape
 *                                 of the triage churn workload, for perturbed replays
 *   trace_record fork SELF        10 x malloc(1111); a forked child does 7 x malloc(2222);
 *                                 a forked child execs `SELF small`; then 5 x malloc(3333)
 *
 * All calls go through the hak_* API, which records in every build (in override builds libc's
 * own calls are recorded as well). Which thread frees which block is fixed: only the order of
 * calls of different threads varies from run to run, and the trace keeps that order. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hak_test.h"
#include "hakmem.h"
#include "replay_stats.h"
#include "t_handoff.h"

#define WORKERS 4
#define PER 1500

/* ---- roundtrip ----------------------------------------------------------------------------- */

static void *blocks[WORKERS][PER];
static pthread_barrier_t phase;

/* Block i of worker w: sizes from 8 bytes to mid sizes, some large, some calloc/aligned. */
static void *alloc_one(int w, int i) {
  size_t n = (size_t)(i * 37 + w * 11) % 1500 + 1;
  if (i % 97 == 0)
    n = 300000 + (size_t)i;
  else if (i % 41 == 0)
    n = 20000 + (size_t)i * 3;
  switch (i % 7) {
  case 0:
    return hak_calloc(3, n / 3 + 1);
  case 1:
    return hak_memalign(64, n);
  case 2: {
    void *p = NULL;
    return hak_posix_memalign(&p, 256, n) == 0 ? p : NULL;
  }
  case 3:
    return hak_aligned_alloc(32, n);
  default:
    return hak_malloc(n);
  }
}

static void *worker(void *arg) {
  int w = (int)(intptr_t)arg;
  for (int i = 0; i < PER; i++) {
    blocks[w][i] = alloc_one(w, i);
    if (blocks[w][i] == NULL)
      t_fail("allocation failed");
  }
  for (int i = 0; i < PER; i += 3) { /* local frees and reallocs */
    hak_free(blocks[w][i]);
    blocks[w][i] = NULL;
    if (i % 2 == 0 && i + 1 < PER)
      blocks[w][i + 1] = hak_realloc(blocks[w][i + 1], 3000);
  }
  pthread_barrier_wait(&phase);
  if (w == WORKERS - 1)
    return NULL;                  /* exits with live blocks: its slabs are orphaned */
  int victim = (w + 1) % WORKERS; /* cross-thread frees: the next worker's blocks */
  for (int i = 0; i < PER; i++)
    if (i % 2 == 0 && blocks[victim][i] != NULL) {
      hak_free(blocks[victim][i]);
      blocks[victim][i] = NULL;
    }
  return NULL;
}

static void write_stats(const char *path) {
  char buf[16384];
  size_t n = hak_replay_stats_format(buf, sizeof buf); /* no allocation from here on */
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
    _exit(3);
  close(fd);
}

static int roundtrip(const char *stats) {
  pthread_t th[WORKERS];
  pthread_barrier_init(&phase, NULL, WORKERS);
  for (int w = 0; w < WORKERS; w++)
    t_start(&th[w], worker, (void *)(intptr_t)w);
  for (int w = 0; w < WORKERS; w++)
    pthread_join(th[w], NULL);
  /* main frees what is left of worker 0 (its victim-freer exited early) and trims. */
  for (int i = 0; i < PER; i++)
    hak_free(blocks[0][i]);
  hak_trim();
  write_stats(stats);
  _exit(0);
}

/* ---- crash --------------------------------------------------------------------------------- */

static int crash(const char *how) {
  static void *p[1000];
  for (int i = 0; i < 1000; i++)
    p[i] = hak_malloc(24);
  for (int i = 0; i < 1000; i += 2)
    hak_free(p[i]);
  void *volatile last = hak_malloc(4242);
  (void)last;
  if (strcmp(how, "segv") == 0) {
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV); /* as a wild store would */
  }
  abort();
}

/* ---- double free --------------------------------------------------------------------------- */

static void *churn(void *arg) {
  void *keep[64] = {0};
  for (int i = 0; i < 1500; i++) {
    int k = (i * 7 + (int)(intptr_t)arg) % 64;
    hak_free(keep[k]);
    keep[k] = hak_malloc((size_t)(i % 300) + 1);
  }
  for (int k = 0; k < 64; k++)
    hak_free(keep[k]);
  return NULL;
}

static int doublefree(void) {
  pthread_t th;
  t_start(&th, churn, (void *)1);
  churn((void *)0);
  pthread_join(th, NULL);
  void *victim = hak_malloc(40);
  for (int i = 0; i < 100; i++)
    hak_free(hak_malloc(40)); /* noise around the bug */
  hak_free(victim);
  for (int i = 0; i < 100; i++)
    hak_free(hak_malloc(72));
  hak_free(victim); /* the bug: hakmem aborts here with "double free" in header mode */
  return 0;
}

/* ---- small --------------------------------------------------------------------------------- */

static void *small_worker(void *arg) {
  void **share = arg;
  for (int i = 0; i < 20; i++)
    share[i] = hak_malloc((size_t)i * 50 + 1);
  return NULL;
}

static int small(void) {
  void *mine[40], *theirs[20];
  for (int i = 0; i < 40; i++)
    mine[i] = i % 5 ? hak_malloc((size_t)i * 30) : hak_calloc(2, 40);
  mine[3] = hak_realloc(mine[3], 5000);
  void *al = hak_memalign(128, 100);
  pthread_t th;
  t_start(&th, small_worker, theirs);
  pthread_join(th, NULL);
  for (int i = 0; i < 20; i++)
    hak_free(theirs[i]); /* frees of the worker's blocks */
  for (int i = 0; i < 40; i += 2)
    hak_free(mine[i]);
  hak_free(al);
  return 0;
}

/* ---- handoff ------------------------------------------------------------------------------- */

enum { HO_PRODUCERS = 120, HO_ALIVE = 4, HO_CONSUMERS = 2, HO_BIG = 64 * 1024, HO_TINY = 5 };

static t_handoff_t ho_queue = T_HANDOFF_INIT;
static atomic_int ho_stop;

static void *ho_producer(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  for (unsigned i = 0; i < HO_TINY; i++) {
    size_t size = i < 1 + id % 2 ? HO_BIG : 16 + (id * 131 + i * 977) % 1000;
    unsigned char *p = hak_malloc(size);
    if (p == NULL)
      t_fail("allocation failed");
    memset(p, (int)(id + i), size);
    t_handoff_put(&ho_queue, (t_item_t){p, size, (unsigned char)(id + i)});
  }
  return NULL;
}

/* A block arrives with its producer's fill at both ends, or the hand-off lost it. */
static void ho_check_free(const t_item_t *it) {
  const unsigned char *b = it->p;
  if (b[0] != (unsigned char)it->tag || b[it->size - 1] != (unsigned char)it->tag)
    t_fail("a handed-off block lost its fill");
  hak_free(it->p);
}

static void *ho_consumer(void *arg) {
  (void)arg;
  for (t_item_t it; t_handoff_take(&ho_queue, &it);)
    ho_check_free(&it);
  return NULL;
}

/* Trims now and then, not in a tight loop: the trace stays small. */
static void *ho_trimmer(void *arg) {
  (void)arg;
  struct timespec nap = {0, 50 * 1000};
  while (!atomic_load(&ho_stop)) {
    hak_trim();
    nanosleep(&nap, NULL);
  }
  return NULL;
}

static int handoff(void) {
  pthread_t cons[HO_CONSUMERS], trim, alive[HO_ALIVE];
  for (int i = 0; i < HO_CONSUMERS; i++)
    t_start(&cons[i], ho_consumer, NULL);
  t_start(&trim, ho_trimmer, NULL);
  for (uintptr_t n = 0; n < HO_PRODUCERS; n++) {
    if (n >= HO_ALIVE)
      pthread_join(alive[n % HO_ALIVE], NULL);
    t_start(&alive[n % HO_ALIVE], ho_producer, (void *)n);
  }
  for (uintptr_t n = HO_PRODUCERS - HO_ALIVE; n < HO_PRODUCERS; n++)
    pthread_join(alive[n % HO_ALIVE], NULL);
  t_handoff_close(&ho_queue);
  for (int i = 0; i < HO_CONSUMERS; i++)
    pthread_join(cons[i], NULL);
  atomic_store(&ho_stop, 1);
  pthread_join(trim, NULL);
  return 0;
}

/* ---- fork and exec ------------------------------------------------------------------------- */

static void run_child(const char *self, bool exec_small) {
  pid_t pid = fork();
  if (pid < 0)
    t_fail("fork");
  if (pid == 0) {
    if (exec_small) {
      execl(self, self, "small", (char *)NULL);
      _exit(127);
    }
    for (int i = 0; i < 7; i++)
      hak_malloc(2222);
    _exit(0);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    t_fail("child failed");
  printf("%s %d\n", exec_small ? "exec_child" : "fork_child", (int)pid);
}

static int forks(const char *self) {
  for (int i = 0; i < 10; i++)
    hak_malloc(1111);
  fflush(stdout);
  run_child(self, false);
  fflush(stdout);
  run_child(self, true);
  for (int i = 0; i < 5; i++)
    hak_malloc(3333);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "roundtrip") == 0 && argc > 2)
    return roundtrip(argv[2]);
  if (strcmp(mode, "crash") == 0 && argc > 2)
    return crash(argv[2]);
  if (strcmp(mode, "doublefree") == 0)
    return doublefree();
  if (strcmp(mode, "small") == 0)
    return small();
  if (strcmp(mode, "handoff") == 0)
    return handoff();
  if (strcmp(mode, "fork") == 0 && argc > 2)
    return forks(argv[2]);
  fprintf(stderr, "usage: trace_record roundtrip STATS | crash abort|segv | doublefree | small | "
                  "handoff | fork SELF\n");
  return 2;
}
