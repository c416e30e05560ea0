/* Regression test: a fork child takes over what the parent's other threads held.
 *
 * Root cause (issue 10, finding 5): the child of a fork is single-threaded, but the caches of
 * the parent's other threads stayed LIVE in it with their runs bound to them. A block such a
 * thread allocated and the child frees went to its run's remote queue, which no thread of the
 * child ever drains: the child reused none of them (0 of 2,000), and the memory leaked.
 *
 * Scenario (in a fresh child process, see regress.h):
 *   reuse   thread T allocates 2,000 blocks of one class and holds them (plus a few blocks on
 *           its TLS SLL) while the process forks. In the fork child: every one of the 2,000 is
 *           freed, then 2,000 blocks of that class are allocated: each of them is one of the
 *           freed blocks (T's runs were orphaned and are adopted or released and rebound), and
 *           no block is handed out twice. The fork child reports by its exit status; the parent
 *           lets T go and frees the blocks itself (its own copy of the heap is untouched).
 * Catches: HAKMEM_PLANT_BUG=fork_no_takeover. */
#include "regress.h"

#define CLS 5
#define N 2000

static void *blk[N];
static _Atomic int t_ready, t_may_exit;

static void *holder(void *arg) {
  (void)arg;
  size_t n = t_size_of_class(CLS);
  for (int i = 0; i < N; i++) {
    blk[i] = hak_malloc(n);
    T_CHECK(blk[i] != NULL, "hak_malloc(%zu) failed", n);
    t_fill(blk[i], n, 3);
  }
  atomic_store(&t_ready, 1);
  while (!atomic_load(&t_may_exit)) usleep(1000);
  return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static bool in_sorted(void *const *s, size_t n, const void *p) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if ((uintptr_t)s[mid] < (uintptr_t)p) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && s[lo] == p;
}

/* The fork child: free T's blocks, allocate as many again, count the reused ones. */
static void fork_child_body(void) {
  size_t n = t_size_of_class(CLS);
  static void *freed[N], *got[N];
  for (int i = 0; i < N; i++) {
    t_verify(blk[i], n, 3);
    freed[i] = blk[i];
    hak_free(blk[i]);
  }
  qsort(freed, N, sizeof freed[0], cmp_ptr);
  size_t reused = 0;
  for (int i = 0; i < N; i++) {
    got[i] = hak_malloc(n);
    T_CHECK(got[i] != NULL, "fork child: hak_malloc(%zu) failed", n);
    reused += in_sorted(freed, N, got[i]);
  }
  qsort(got, N, sizeof got[0], cmp_ptr);
  for (int i = 1; i < N; i++)
    T_CHECK(got[i] != got[i - 1], "fork child: %p handed out twice", got[i]);
  T_CHECK(reused == N, "fork child: %zu of %d blocks freed in the child were reused", reused, N);
}

static void scenario_reuse(void) {
  t_thread_cache();
  pthread_t t;
  T_CHECK(pthread_create(&t, NULL, holder, NULL) == 0, "pthread_create");
  while (!atomic_load(&t_ready)) usleep(1000);
  fflush(NULL);
  pid_t pid = fork();
  T_CHECK(pid >= 0, "fork failed");
  if (pid == 0) {
    fork_child_body();
    _exit(0);
  }
  int status = 0;
  T_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  char how[128];
  t_describe_status(status, how, sizeof how);
  T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fork child %s", how);
  atomic_store(&t_may_exit, 1);
  T_CHECK(pthread_join(t, NULL) == 0, "pthread_join");
  for (int i = 0; i < N; i++) {
    t_verify(blk[i], t_size_of_class(CLS), 3);
    hak_free(blk[i]);
  }
}

static const r_scenario_t scenarios[] = {
    {"reuse", scenario_reuse, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_fork_takeover", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
