/* The purge thread (HAKMEM_PURGE_THREAD): freed memory goes back to the OS while the program
 * makes no allocator call at all.
 *
 * Usage: api_purge returns [LIMIT_S] | keeps | fork
 *   returns: two threads allocate 256 MiB (times HAK_TEST_SCALE) in 64..256-byte blocks, free
 *            them and exit; the main thread joins them and from then on makes no allocator
 *            call: it polls VmRSS (open/read) every 50 ms and passes as soon as RSS is below
 *            its start + 32 MiB, or fails after LIMIT_S seconds (20) with "not returned". At
 *            most one thread beyond the main one, and it is hakmem-purge.
 *   keeps:   the same workload under HAKMEM_PURGE_THREAD=0: after 3 s idle RSS is still above
 *            half of what the workload added, the purge counters are 0 and no thread was made.
 *   fork:    the parent's purge thread is running; a child (which has none) allocates and
 *            frees 128 MiB and idles: its RSS drops, by a purge thread of its own.
 * Under a sanitizer, whose shadow of the freed memory stays resident, "returned" means that
 * hakmem's purge thread gave back three quarters of it (purge_bytes): hak_stats_get reads
 * counters and runs no decay. */
#include <pthread.h>
#include <sys/wait.h>

#include "hak_proc.h"
#include "hak_test.h"

#define MIB ((size_t)1 << 20)
#define POLL_MS 50

#if HAK_TEST_ASAN || defined(__SANITIZE_THREAD__)
#define RSS_MEANINGFUL 0
#else
#define RSS_MEANINGFUL 1
#endif

/* ---- the workload ----------------------------------------------------------------------- */

/* Allocates budget bytes in 64..256-byte blocks, chained through their first word (no pointer
 * array to skew the RSS), then frees them all. */
static void churn(size_t budget, uint64_t seed) {
  t_rng_t r;
  t_rng_seed(&r, seed);
  void *head = NULL;
  for (size_t got = 0; got < budget;) {
    size_t n = t_rng_range(&r, 64, 256);
    void **p = T_MALLOC(n);
    t_check(p != NULL, "allocation of %zu failed", n);
    memset(p, 0x5a, n);
    *p = head;
    head = p;
    got += n;
  }
  while (head != NULL) {
    void *next = *(void **)head;
    T_FREE(head);
    head = next;
  }
}

static void *worker(void *arg) {
  churn(t_scaled(128 * MIB), (uint64_t)(uintptr_t)arg);
  return NULL;
}

/* Two threads churn 256 MiB between them and exit; joined. */
static void churn_in_threads(void) {
  pthread_t th[2];
  for (uintptr_t i = 0; i < 2; i++)
    t_check(pthread_create(&th[i], NULL, worker, (void *)(i + 1)) == 0, "pthread_create");
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
}

/* ---- watching, without allocator calls -------------------------------------------------- */

static void nap_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) continue;
}

/* Freed memory is back with the OS: RSS near its start, or (sanitizers) the purge thread gave
 * back three quarters of what was churned. */
static bool returned(long long start_kb, uint64_t purged0, size_t churned) {
  if (RSS_MEANINGFUL) return t_rss_kb() < start_kb + (long long)(32 * MIB / 1024);
  return t_stats().purge_bytes - purged0 >= churned / 4 * 3;
}

/* Polls returned() every POLL_MS for up to limit_s seconds; the seconds it took, or -1. */
static double wait_returned(long long start_kb, uint64_t purged0, size_t churned, double limit_s) {
  double t0 = t_now();
  while (!returned(start_kb, purged0, churned)) {
    if (t_now() - t0 > limit_s) return -1;
    nap_ms(POLL_MS);
  }
  return t_now() - t0;
}

/* ---- modes ---------------------------------------------------------------------------------- */

static void mode_returns(double limit_s, int tasks0) {
  T_FREE(T_MALLOC(16));
  long long start_kb = t_rss_kb();
  uint64_t purged0 = t_stats().purge_bytes;
  churn_in_threads();
  /* From here on no allocator call until the verdict. */
  double took = wait_returned(start_kb, purged0, t_scaled(256 * MIB), limit_s);
  t_check(took >= 0,
          "freed memory not returned after %.0f s idle: RSS %lld KiB, %lld KiB at the "
          "start; purge thread passes %llu, bytes %llu",
          limit_s, t_rss_kb(), start_kb, (unsigned long long)t_stats().purge_passes,
          (unsigned long long)t_stats().purge_bytes);
  t_check(t_tasks("hakmem-purge", NULL) == 1, "%d purge threads", t_tasks("hakmem-purge", NULL));
  t_check(t_tasks(NULL, NULL) <= tasks0 + 1, "%d threads, %d at the start", t_tasks(NULL, NULL),
          tasks0);
  printf("api_purge returns ok: returned after %.2f s idle, RSS %lld KiB (start %lld KiB)\n",
         took, t_rss_kb(), start_kb);
}

static void mode_keeps(int tasks0) {
  t_check(hak_option_get("HAKMEM_PURGE_THREAD") == 0, "run with HAKMEM_PURGE_THREAD=0");
  T_FREE(T_MALLOC(16));
  long long start_kb = t_rss_kb();
  churn_in_threads();
  long long freed_kb = t_rss_kb();
  hak_stats_t s0 = t_stats();
  nap_ms(3000);
  hak_stats_t s1 = t_stats();
  long long idle_kb = t_rss_kb();
  if (RSS_MEANINGFUL)
    t_check(idle_kb - start_kb >= (long long)(t_scaled(256 * MIB) / 2 / 1024),
            "RSS dropped to %lld KiB after 3 s idle (start %lld KiB, %lld KiB after the frees)",
            idle_kb, start_kb, freed_kb);
  t_check(s1.bytes_purged == s0.bytes_purged, "%llu bytes returned while idle",
          (unsigned long long)(s1.bytes_purged - s0.bytes_purged));
  t_check(s1.purge_passes == 0 && s1.purge_bytes == 0, "purge thread ran %llu passes",
          (unsigned long long)s1.purge_passes);
  t_check(t_tasks(NULL, NULL) == tasks0, "%d threads, %d at the start", t_tasks(NULL, NULL),
          tasks0);
  printf("api_purge keeps ok: RSS %lld KiB after 3 s idle (start %lld KiB)\n", idle_kb, start_kb);
}

/* The child of mode_fork: no purge thread until its own first need; then its frees go back. */
static int fork_child(void) {
  t_check(t_tasks("hakmem-purge", NULL) == 0, "the parent's purge thread in the child");
  long long start_kb = t_rss_kb();
  uint64_t purged0 = t_stats().purge_bytes;
  churn(t_scaled(128 * MIB), 7);
  double took = wait_returned(start_kb, purged0, t_scaled(128 * MIB), 20);
  t_check(took >= 0,
          "child: freed memory not returned after 20 s idle: RSS %lld KiB, start "
          "%lld KiB; purge threads %d, passes %llu, bytes %llu (%llu at the start)",
          t_rss_kb(), start_kb, t_tasks("hakmem-purge", NULL),
          (unsigned long long)t_stats().purge_passes, (unsigned long long)t_stats().purge_bytes,
          (unsigned long long)purged0);
  t_check(t_tasks("hakmem-purge", NULL) == 1, "child: %d purge threads",
          t_tasks("hakmem-purge", NULL));
  return 0;
}

static void mode_fork(void) {
  T_FREE(T_MALLOC(1 << 20)); /* a cached large mapping: the parent's thread starts */
  t_check(t_tasks("hakmem-purge", NULL) == 1, "no purge thread in the parent");
#if HAK_TEST_ASAN
  /* ASan's allocator has no fork handler: a thread still starting holds its lock while ASan
   * reads the thread's attributes (pthread_getattr_np allocates), and a child forked then
   * inherits that lock held and hangs in its own first thread start. Fork once the parent's
   * thread has run a pass, which it does only after its start. */
  double t0 = t_now();
  while (t_stats().purge_passes == 0) {
    t_check(t_now() - t0 < 20, "the parent's purge thread made no pass in 20 s");
    nap_ms(POLL_MS);
  }
#endif
  fflush(stdout);
  pid_t pid = fork();
  t_check(pid >= 0, "fork failed");
  if (pid == 0) _exit(fork_child());
  int status;
  t_check(waitpid(pid, &status, 0) == pid, "waitpid");
  t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child ended with status 0x%x", status);
  t_check(t_tasks("hakmem-purge", NULL) == 1, "parent: purge thread gone after the fork");
  printf("api_purge fork ok\n");
}

int main(int argc, char **argv) {
  int tasks0 = t_tasks_base();
  const char *mode = argc > 1 ? argv[1] : "returns";
  if (strcmp(mode, "returns") == 0) mode_returns(argc > 2 ? atof(argv[2]) : 20, tasks0);
  else if (strcmp(mode, "keeps") == 0) mode_keeps(tasks0);
  else if (strcmp(mode, "fork") == 0) mode_fork();
  else t_fail("unknown mode %s", mode);
  return 0;
}
