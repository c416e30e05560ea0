/* stress_fork SECONDS: fork while other threads allocate (DESIGN §3, DROPIN 15).
 *
 * Four threads allocate and free continuously and keep a shared table of live blocks. The
 * main thread forks repeatedly (at least 20 times, until SECONDS have passed, at most 1,000
 * times HAK_TEST_SCALE). Each child frees the shared blocks (allocated by threads that do
 * not exist in the child), allocates, writes, reallocs and frees blocks of several sizes,
 * starts a thread that does the same (override builds only), and exits 0. A child that has not
 * exited after CHILD_TIMEOUT seconds is killed and the test fails: that is a deadlock (a lock held
 * across fork), not slowness, so the limit is generous.
 *
 * Built with HAK_TEST_OVERRIDE=1, the child also goes through the libc names. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "hak_test.h"

#define WORKERS 4
#define RING 256
#define SHARED 64
#define MIN_FORKS 20
#define MAX_FORKS 1000
#define CHILD_TIMEOUT 10.0

typedef struct block_s {
  void *p;
  size_t size;
} block_t;

static atomic_int stop;
static atomic_ullong total_allocs;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER; /* held by main across fork */
static block_t shared[SHARED];                                  /* protected by shared_lock */

static block_t make_block(size_t size) {
  block_t b = {T_MALLOC(size), size};
  t_check(b.p != NULL, "malloc(%zu) returned NULL", size);
  t_check(t_aligned(b.p, size > 8 ? 16 : 8), "malloc(%zu) = %p is misaligned", size, b.p);
  t_fill(b.p, size, size);
  return b;
}

static void release(block_t b) {
  t_verify(b.p, b.size, b.size);
  T_FREE(b.p);
}

static size_t worker_size(t_rng_t *rng) {
  uint64_t r = t_rng_below(rng, 100);
  if (r < 80)
    return t_rng_range(rng, 8, 512);
  if (r < 98)
    return t_rng_range(rng, 513, 16384);
  return t_rng_range(rng, 16385, 400000);
}

static void *worker_main(void *arg) {
  t_rng_t rng;
  t_rng_seed(&rng, (uint64_t)(uintptr_t)arg);
  block_t ring[RING] = {{0}};
  uint64_t allocs = 0;
  for (uint64_t i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
    block_t *slot = &ring[i % RING];
    if (slot->p != NULL)
      release(*slot);
    *slot = make_block(worker_size(&rng));
    allocs++;
    if ((i & 63) == 0) {
      block_t b = make_block(worker_size(&rng));
      allocs++;
      pthread_mutex_lock(&shared_lock);
      block_t *s = &shared[t_rng_below(&rng, SHARED)];
      block_t old = *s;
      *s = b;
      pthread_mutex_unlock(&shared_lock);
      if (old.p != NULL)
        release(old);
    }
  }
  for (int i = 0; i < RING; i++)
    if (ring[i].p != NULL)
      release(ring[i]);
  atomic_fetch_add(&total_allocs, allocs);
  return NULL;
}

/* ---- the child ------------------------------------------------------------------------------ */

static void child_allocations(uint64_t seed) {
  static const size_t sizes[] = {8, 100, 1000, 5000, 70000, 300000, 3u << 20};
  block_t held[2 * sizeof sizes / sizeof sizes[0]];
  int n = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    for (int k = 0; k < 2; k++)
      held[n++] = make_block(sizes[i] + (size_t)k + seed % 8);
  for (int i = 0; i < n; i += 2) {
    uint64_t key = t_key(held[i].p, held[i].size);
    void *q = T_REALLOC(held[i].p, held[i].size * 2);
    t_check(q != NULL, "child: realloc to %zu returned NULL", held[i].size * 2);
    t_verify_key(q, held[i].size, key);
    T_FREE(q);
  }
  for (int i = 1; i < n; i += 2)
    release(held[i]);
#if HAK_TEST_OVERRIDE
  void *m = malloc(64);
  t_check(m != NULL && hak_owns(m), "child: malloc(64) is not a hakmem block");
  void *c = calloc(100, 10);
  t_check(c != NULL && hak_owns(c), "child: calloc is not a hakmem block");
  free(m);
  free(c);
#endif
}

#if HAK_TEST_OVERRIDE
static void *child_thread(void *arg) {
  child_allocations((uint64_t)(uintptr_t)arg);
  return NULL;
}
#endif

static void child_main(uint64_t seed) {
  /* The shared blocks were allocated by threads that do not exist in this process. */
  for (int i = 0; i < SHARED; i++)
    if (shared[i].p != NULL)
      release(shared[i]);
  child_allocations(seed);
#if HAK_TEST_OVERRIDE
  /* A new thread's TLS comes from libc's malloc, which here is hakmem's. Without the
   * override it would test the sanitizer's allocator (not fork-safe in every version). */
  pthread_t th;
  t_check(pthread_create(&th, NULL, child_thread, (void *)(uintptr_t)(seed + 1)) == 0,
          "child: pthread_create failed");
  pthread_join(th, NULL);
#endif
  _exit(0);
}

static void wait_child(pid_t pid, uint64_t n) {
  double limit = t_now() + CHILD_TIMEOUT;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
      if (WIFSIGNALED(status))
        t_fail("fork child #%llu died by signal %d", (unsigned long long)n, WTERMSIG(status));
      t_fail("fork child #%llu exited with status %d", (unsigned long long)n, WEXITSTATUS(status));
    }
    t_check(r == 0 || errno == EINTR, "waitpid failed: %s", strerror(errno));
    if (t_now() > limit) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      t_fail("fork child #%llu did not exit within %.0f s (deadlock after fork?)",
             (unsigned long long)n, CHILD_TIMEOUT);
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
}

int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  size_t max_forks = t_scaled(MAX_FORKS);
  hak_stats_t before;
  hak_stats_get(&before);

  pthread_t workers[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    t_check(pthread_create(&workers[i], NULL, worker_main, (void *)(uintptr_t)(i + 1)) == 0,
            "pthread_create failed");
  double deadline = t_now() + seconds;
  uint64_t forks = 0;
  while (forks < max_forks && (forks < MIN_FORKS || t_now() < deadline)) {
    fflush(stdout);
    pthread_mutex_lock(&shared_lock);
    pid_t pid = fork();
    t_check(pid >= 0, "fork failed: %s", strerror(errno));
    pthread_mutex_unlock(&shared_lock);
    if (pid == 0)
      child_main(forks);
    wait_child(pid, forks);
    forks++;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(workers[i], NULL);
  for (int i = 0; i < SHARED; i++)
    if (shared[i].p != NULL)
      release(shared[i]);

  uint64_t allocs = atomic_load(&total_allocs);
  t_check_stats_moved(&before, allocs);
  t_check_live(before.live_blocks, 4 * WORKERS + 16);
  printf("stress_fork: forks=%llu allocations=%llu\n", (unsigned long long)forks,
         (unsigned long long)allocs);
  return 0;
}
