/* edge_signal_free masked|raw [large]: a signal handler that frees, interrupting a thread that
 * allocates and frees in a loop (issue 13 case 6). free() is not async-signal-safe by POSIX, but
 * programs do this.
 *
 * What hakmem supports (README, "Signal handlers"): a handler may free (and malloc) as long as
 * the signal cannot interrupt an allocator call of the thread it runs on. "masked", the
 * registered test, is that: the worker blocks SIGUSR1 around each of its allocator calls, so
 * the handler runs between them, on the same thread, and frees onto that thread's cache and
 * into other threads' runs. "raw" lets the signal land anywhere, inside malloc and free too:
 * the handler's push onto the thread's free list can then race with the push, pop or refill it
 * interrupted (a block lost and the list's room wrong; the checked build stops with
 * "assertion failed: hak_checked_sll_ok"), as with glibc's, jemalloc's or tcmalloc's caches.
 * It is not registered; it is kept to be run by hand.
 *
 * The worker thread allocates, fills, checks and frees blocks without pause (a ring of 64 of
 * its own), and keeps offering one of its fresh blocks in a lock-free slot (compare-exchange
 * into an empty slot). A feeder thread offers its own blocks in a second slot. A POSIX timer
 * on CLOCK_MONOTONIC, aimed at the worker thread (SIGEV_THREAD_ID), sends it SIGUSR1 every
 * 20 us; the main thread waits until the handler has run SIGNALS times and freed 200 blocks of
 * each thread (signals that arrive while one is pending merge, so the count is of handler
 * runs). The handler, on the worker,
 * takes both slots (atomic exchange), checks each block's pattern and frees it: the worker's
 * own blocks go onto the worker's thread cache, the feeder's are remote frees. With "large",
 * a fifth of the blocks are 64-300 KiB (hakmem's large path, which takes locks).
 *
 * Afterwards: every block the worker still holds is intact, the slots are emptied, every
 * block is freed, hakmem's live block count is back at its start and its alloc/free counters
 * moved by what the threads did; then the heap is reused (20,000 blocks of the sizes used, all
 * distinct, each filled and checked) so that a TLS list corrupted by a handler run shows up as
 * one block handed out twice or as a diagnostic from the checked build. Hangs are left to the
 * CTest timeout. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "hak_test.h"

#define SIGNALS 40000
#define RING 64
#define REUSE 20000
#define MIN_FREES 200 /* blocks of the worker, and of the feeder, freed by the handler */

static int large_mode, masked_mode;
static sigset_t usr1;

/* masked: SIGUSR1 stays pending while the worker is inside the allocator. */
static void allocator_enter(void) {
  if (masked_mode) pthread_sigmask(SIG_BLOCK, &usr1, NULL);
}
static void allocator_leave(void) {
  if (masked_mode) pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
}
static atomic_int stop;
static _Atomic(void *) slot_own;   /* a block of the worker, freed by the handler */
static _Atomic(void *) slot_other; /* a block of the feeder, freed by the handler */
static atomic_ullong handler_runs, handler_own_frees, handler_other_frees;
static atomic_ullong worker_allocs, feeder_allocs;
static atomic_int worker_tid; /* the worker's kernel thread id, once it runs */

static size_t pick_size(t_rng_t *r) {
  uint64_t k = t_rng_below(r, 100);
  if (large_mode && k < 20) return t_rng_range(r, 65536, 300000);
  if (k < 80) return t_rng_range(r, 16, 512);
  return t_rng_range(r, 513, 8192);
}

static void *make(size_t n) {
  allocator_enter();
  void *p = T_MALLOC(n);
  allocator_leave();
  return t_sized_init(p, n, 5);
}

static void release(void *p) {
  t_sized_check(p, 300000, 5);
  allocator_enter();
  T_FREE(p);
  allocator_leave();
}

static void handler(int sig) {
  (void)sig;
  int saved = errno;
  void *p = atomic_exchange(&slot_own, NULL);
  if (p != NULL) {
    release(p);
    atomic_fetch_add_explicit(&handler_own_frees, 1, memory_order_relaxed);
  }
  void *q = atomic_exchange(&slot_other, NULL);
  if (q != NULL) {
    release(q);
    atomic_fetch_add_explicit(&handler_other_frees, 1, memory_order_relaxed);
  }
  atomic_fetch_add_explicit(&handler_runs, 1, memory_order_release);
  errno = saved;
}

static void offer(_Atomic(void *) *slot, t_rng_t *rng, atomic_ullong *allocs) {
  if (atomic_load_explicit(slot, memory_order_relaxed) != NULL) return;
  void *b = make(pick_size(rng));
  atomic_fetch_add_explicit(allocs, 1, memory_order_relaxed);
  void *expected = NULL;
  if (!atomic_compare_exchange_strong(slot, &expected, b)) release(b);
}

static void *worker(void *arg) {
  (void)arg;
  t_rng_t rng;
  t_rng_seed(&rng, 1);
  void *ring[RING] = {0};
  uint64_t allocs = 0;
  atomic_store(&worker_tid, (int)gettid());
  for (uint64_t i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
    void **s = &ring[i % RING];
    if (*s != NULL) release(*s);
    *s = make(pick_size(&rng));
    allocs++;
    if ((i & 7) == 0) offer(&slot_own, &rng, &worker_allocs);
  }
  for (int i = 0; i < RING; i++)
    if (ring[i] != NULL) release(ring[i]);
  atomic_fetch_add(&worker_allocs, allocs);
  return NULL;
}

static void *feeder(void *arg) {
  (void)arg;
  t_rng_t rng;
  t_rng_seed(&rng, 2);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    offer(&slot_other, &rng, &feeder_allocs);
    sched_yield();
  }
  return NULL;
}

/* Reuses the heap: REUSE blocks of the sizes the threads used, all live at once. A block
 * handed out twice is caught by its address or by its contents. */
static void reuse_heap(void) {
  void **b = T_MALLOC(REUSE * sizeof(void *));
  t_check(b != NULL, "malloc of the pointer array failed");
  t_rng_t rng;
  t_rng_seed(&rng, 3);
  for (int i = 0; i < REUSE; i++) b[i] = make(pick_size(&rng));
  for (int i = 0; i < REUSE; i++) release(b[i]);
  T_FREE(b);
}

int main(int argc, char **argv) {
  t_check(argc > 1 && (strcmp(argv[1], "masked") == 0 || strcmp(argv[1], "raw") == 0),
          "usage: edge_signal_free masked|raw [large]");
  masked_mode = strcmp(argv[1], "masked") == 0;
  large_mode = argc > 2 && strcmp(argv[2], "large") == 0;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  size_t signals = t_scaled(SIGNALS);
  hak_stats_t before;
  hak_stats_get(&before);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  t_check(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction failed");

  pthread_t w, f;
  t_check(pthread_create(&w, NULL, worker, NULL) == 0, "pthread_create failed");
  t_check(pthread_create(&f, NULL, feeder, NULL) == 0, "pthread_create failed");
  while (atomic_load(&worker_tid) == 0) sched_yield();
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGUSR1;
  sev._sigev_un._tid = atomic_load(&worker_tid); /* sigev_notify_thread_id */
  timer_t timer;
  t_check(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0, "timer_create failed: %s",
          strerror(errno));
  struct itimerspec its = {{0, 20000}, {0, 20000}};
  double t0 = t_now();
  t_check(timer_settime(timer, 0, &its, NULL) == 0, "timer_settime failed");
  /* Until SIGNALS handler runs, and until the handler has freed MIN_FREES blocks of each kind
   * (how many runs find a block in a slot depends on the threads' speed, not a promise). */
  while (atomic_load_explicit(&handler_runs, memory_order_acquire) < signals ||
         atomic_load(&handler_own_frees) < MIN_FREES ||
         atomic_load(&handler_other_frees) < MIN_FREES) {
    struct timespec ms = {0, 5000000};
    nanosleep(&ms, NULL);
  }
  timer_delete(timer);
  double took = t_now() - t0;
  atomic_store(&stop, 1);
  pthread_join(w, NULL);
  pthread_join(f, NULL);
  void *p = atomic_exchange(&slot_own, NULL);
  if (p != NULL) release(p);
  void *q = atomic_exchange(&slot_other, NULL);
  if (q != NULL) release(q);

  unsigned long long own = atomic_load(&handler_own_frees), other = atomic_load(&handler_other_frees);
  printf("edge_signal_free %s%s: %llu handler runs in %.1f s, freeing %llu of the worker's blocks and "
         "%llu of the feeder's\n",
         argv[1], large_mode ? " large" : "", (unsigned long long)atomic_load(&handler_runs), took, own,
         other);
  uint64_t allocs = atomic_load(&worker_allocs) + atomic_load(&feeder_allocs);
  t_check_stats_moved(&before, allocs);
  t_check_live(before.live_blocks, 16);
  reuse_heap();
  t_check_live(before.live_blocks, 16);
  printf("edge_signal_free ok\n");
  return 0;
}
