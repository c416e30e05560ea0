/* Purge thread (src/purge.c): its states, its one thread, its sleep and wake-up, fork.
 *
 * - the first notify that finds work pending starts the thread: named hakmem-purge, every
 *   signal blocked, no thread cache of its own (threads_started does not move);
 * - with nothing pending it sleeps (ASLEEP), and neither box then reports work; a slow path
 *   that leaves work (a large free, local frees that release runs, a thread's exit) wakes it
 *   (purge_wakeups grows) and the work goes back (purge_bytes grows); however often that
 *   happens, there is one purge thread and no other thread of hakmem's;
 * - no lost wake-up: the thread held at its schedule point between its last look at the work
 *   and its ASLEEP (HAK_SP_PURGE_SLEEP), work left meanwhile (the notify finds it AWAKE and does
 *   nothing) is still returned: the thread looks again, under the locks, after the store;
 * - a fork child has no thread (UNSTARTED) until its own first notify with work pending (none
 *   at all under TSan).
 * It links hakmem_sched (the schedule points call a hook). CMake runs it with HAKMEM_DECAY_MS=40,
 * so that each sleep comes within milliseconds. Every wait polls with a generous limit: it
 * asserts that something happens, never how fast. */
#include <signal.h>
#include <sys/wait.h>

#include "hak_proc.h"
#include "unit.h"

#define WAIT_LIMIT_S 20.0
#define ROUNDS 12

static uint32_t state(void) { return atomic_load(&hak_purge_state); }

static void nap_ms(long ms) {
  struct timespec t = {0, ms * 1000000L};
  nanosleep(&t, NULL);
}

/* Polls cond every 5 ms for up to WAIT_LIMIT_S; fails with what when it never holds. */
#define WAIT_FOR(cond, what)                                                                       \
  do {                                                                                             \
    double t0_ = t_now();                                                                          \
    while (!(cond)) {                                                                              \
      T_CHECK(t_now() - t0_ < WAIT_LIMIT_S, "%s: not within %.0f s (state %u)", (what),            \
              WAIT_LIMIT_S, state());                                                              \
      nap_ms(5);                                                                                   \
    }                                                                                              \
  } while (0)

/* ---- what leaves work for the decay ---------------------------------------------------------- */

static void large_free(void) {
  void *p = hak_malloc(1 << 20);
  T_CHECK(p != NULL, "hak_malloc(1 MiB) failed");
  hak_free(p); /* cached: the large box has work */
}

#define SMALL_BLOCKS 4096
static void *small[SMALL_BLOCKS];

/* Fills 32 runs of 512-byte blocks and frees them: the spills release the emptied runs. */
static void *small_churn(void *arg) {
  (void)arg;
  for (int i = 0; i < SMALL_BLOCKS; i++) {
    small[i] = hak_malloc(512);
    T_CHECK(small[i] != NULL, "hak_malloc(512) failed");
  }
  for (int i = 0; i < SMALL_BLOCKS; i++) hak_free(small[i]);
  return NULL;
}

/* Round r leaves work by a large free, by local frees, or by a thread that churns and exits. */
static void leave_work(int r) {
  if (r % 3 == 0) large_free();
  else if (r % 3 == 1) small_churn(NULL);
  else
    t_run_thread(small_churn, NULL);
}

/* ---- checks ---------------------------------------------------------------------------------- */

/* The first work starts the thread, at once, without a cache of its own. */
static void check_start(void) {
  T_CHECK(state() != HAK_PURGE_OFF, "state OFF with HAKMEM_PURGE_THREAD=1 after start-up");
  uint64_t started0 = t_stats().threads_started;
  large_free();
  T_CHECK(state() == HAK_PURGE_AWAKE || state() == HAK_PURGE_ASLEEP,
          "state %u after work was "
          "left",
          state());
  T_CHECK(t_tasks("hakmem-purge", NULL) == 1, "%d threads named hakmem-purge",
          t_tasks("hakmem-purge", NULL));
  T_CHECK(t_stats().threads_started == started0, "the purge thread made a thread cache");
}

/* Every signal but those nobody can block (SIGKILL, SIGSTOP) and glibc's own two (32, 33). */
static void check_signals_blocked(void) {
  long tid;
  T_CHECK(t_tasks("hakmem-purge", &tid) == 1, "no purge thread");
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
  unsigned long long blocked = t_proc_field(path, "SigBlk:", 16);
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33) continue;
    T_CHECK(blocked >> (sig - 1) & 1, "signal %d not blocked by the purge thread (SigBlk %llx)",
            sig, blocked);
  }
}

/* Asleep with nothing pending; woken by each new piece of work, which goes back; one thread. */
static void check_sleep_and_wake(int tasks0) {
  for (int r = 0; r < ROUNDS; r++) {
    WAIT_FOR(state() == HAK_PURGE_ASLEEP, "the purge thread going to sleep");
    T_CHECK(!hak_superslab_pending() && !hak_large_pending(), "asleep with work pending");
    hak_stats_t s0 = t_stats();
    leave_work(r);
    WAIT_FOR(t_stats().purge_wakeups > s0.purge_wakeups, "a wake-up");
    WAIT_FOR(t_stats().purge_bytes > s0.purge_bytes, "the work returned");
    T_CHECK(t_tasks("hakmem-purge", NULL) == 1, "round %d: %d purge threads", r,
            t_tasks("hakmem-purge", NULL));
    T_CHECK(t_tasks(NULL, NULL) <= tasks0 + 1,
            "round %d: %d threads, %d before the purge "
            "thread",
            r, t_tasks(NULL, NULL), tasks0);
  }
}

/* The purge thread held at HAK_SP_PURGE_SLEEP (it holds no lock there): IDLE -> ARMED by the
 * test, -> PARKED by the thread, -> RELEASED by the test, -> IDLE by the thread. */
enum { IDLE, ARMED, PARKED, RELEASED };
static _Atomic(int) park;

static void park_hook(enum hak_sched_point point, const void *obj) {
  (void)obj;
  int armed = ARMED;
  if (point != HAK_SP_PURGE_SLEEP || !atomic_compare_exchange_strong(&park, &armed, PARKED))
    return;
  while (atomic_load(&park) != RELEASED) nap_ms(1);
  atomic_store(&park, IDLE);
}

/* Work left while the thread is between its last look and ASLEEP: a notify then finds it AWAKE
 * and does nothing, so only the thread's own look under the locks can find the work. */
static void check_sleep_window(void) {
  WAIT_FOR(state() == HAK_PURGE_ASLEEP, "the purge thread going to sleep");
  atomic_store(&hak_sched_hook, park_hook);
  atomic_store(&park, ARMED);
  large_free(); /* wakes it; once the mapping is returned it heads for sleep and parks */
  WAIT_FOR(atomic_load(&park) == PARKED, "the purge thread parked before its sleep");
  T_CHECK(state() == HAK_PURGE_AWAKE, "state %u at the schedule point", state());
  large_free(); /* the notify finds AWAKE */
  T_CHECK(hak_large_pending(), "the large box reports no work after a large free");
  atomic_store(&park, RELEASED);
  WAIT_FOR(state() == HAK_PURGE_ASLEEP && !hak_large_pending(),
           "the mapping freed in the window returned");
  WAIT_FOR(atomic_load(&park) == IDLE, "the purge thread leaving the hook");
  atomic_store(&hak_sched_hook, NULL);
}

/* The child of a fork: no thread, then its own at its first work. Under ThreadSanitizer,
 * which ends a child of a multi-threaded process that starts a thread, none at all (OFF). */
static void fork_child(void) {
  T_CHECK(state() == (HAKMEM_TSAN ? HAK_PURGE_OFF : HAK_PURGE_UNSTARTED),
          "child: state %u after fork", state());
  T_CHECK(t_tasks("hakmem-purge", NULL) == 0, "child: the parent's purge thread came along");
  large_free();
  if (HAKMEM_TSAN) {
    T_CHECK(state() == HAK_PURGE_OFF && t_tasks("hakmem-purge", NULL) == 0,
            "child: a purge thread under TSan (state %u)", state());
    return;
  }
  T_CHECK(state() == HAK_PURGE_AWAKE || state() == HAK_PURGE_ASLEEP, "child: state %u", state());
  T_CHECK(t_tasks("hakmem-purge", NULL) == 1, "child: no purge thread of its own");
  WAIT_FOR(state() == HAK_PURGE_ASLEEP, "child: the purge thread going to sleep");
}

static void check_fork(void) {
  pid_t pid = fork();
  T_CHECK(pid >= 0, "fork failed");
  if (pid == 0) {
    fork_child();
    _exit(0);
  }
  int status;
  T_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child ended with status 0x%x", status);
  T_CHECK(state() == HAK_PURGE_AWAKE || state() == HAK_PURGE_ASLEEP, "parent: state %u", state());
  T_CHECK(t_tasks("hakmem-purge", NULL) == 1, "parent: purge thread gone after the fork");
}

int main(void) {
  T_CHECK(hak_option_get("HAKMEM_PURGE_THREAD") == 1, "HAKMEM_PURGE_THREAD is not 1");
  int tasks0 = t_tasks_base() - t_tasks("hakmem-purge", NULL);
  t_thread_cache();
  check_start();
  check_signals_blocked();
  check_sleep_and_wake(tasks0);
  check_sleep_window();
  check_fork();
  printf("unit_purge ok\n");
  return 0;
}
