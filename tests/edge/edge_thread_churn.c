/* edge_thread_churn: 100,000 thread create/exit cycles with blocks handed from each thread to
 * the next, at bounded RSS (DROPIN 17, issue 13 case 4).
 *
 * The main thread keeps up to CONCURRENT threads alive: it joins the oldest before it creates
 * the next. Each thread mallocs a few blocks of tiny, mid and one larger size, frees half of
 * them itself, and swaps the others into handover slots (atomic exchange); what it takes out
 * was allocated by an earlier thread, still running or already gone, and it checks that
 * block's pattern and frees it (remote frees, frees of orphaned runs). After the first 1,000
 * cycles the test notes VmRSS and VmHWM; after all of them, with every thread joined and the
 * slots emptied, both must have grown by at most 16 MiB: exited threads' caches and runs are
 * recycled, not leaked. hakmem's statistics must show it too: a thread cache created for
 * every thread (threads_started), every one flushed at exit (threads_exited; main and perhaps
 * the purge thread still hold theirs), orphaned runs adopted or released, and the live block
 * count back at its start. HAK_TEST_SCALE scales the cycles. */
#include <pthread.h>
#include <stdatomic.h>

#include "hak_proc.h"
#include "hak_test.h"

#define CYCLES 100000
#define WARMUP 1000
#define CONCURRENT 4
#define PER_THREAD 8
#define SLOTS 64
#define GROWTH_KB (16 * 1024)

static _Atomic(void *) slots[SLOTS];

static void *make(size_t n, uint64_t seed) { return t_sized_init(T_MALLOC(n), n, seed); }

static void release(void *p) {
  t_sized_check(p, 100000, 77);
  T_FREE(p);
}

static void *thread_main(void *arg) {
  uint64_t i = (uint64_t)(uintptr_t)arg;
  t_rng_t rng;
  t_rng_seed(&rng, i);
  void *mine[PER_THREAD];
  for (int k = 0; k < PER_THREAD; k++) {
    size_t n = k == 0 ? t_rng_range(&rng, 20000, 90000) : t_rng_range(&rng, 16, k < 5 ? 512 : 4096);
    mine[k] = make(n, 77);
  }
  for (int k = 0; k < PER_THREAD; k += 2) release(mine[k]);
  for (int k = 1; k < PER_THREAD; k += 2) {
    void *old = atomic_exchange(&slots[t_rng_below(&rng, SLOTS)], mine[k]);
    if (old != NULL) release(old);
  }
  return NULL;
}

int main(void) {
  size_t cycles = t_scaled(CYCLES);
  size_t warmup = cycles / 100 < WARMUP ? cycles / 100 : WARMUP;
  if (warmup == 0) warmup = 1;
  hak_stats_t before;
  hak_stats_get(&before);

  pthread_t th[CONCURRENT];
  long long rss_warm = 0, hwm_warm = 0;
  double t0 = t_now();
  for (size_t i = 0; i < cycles; i++) {
    if (i >= CONCURRENT) pthread_join(th[i % CONCURRENT], NULL);
    if (i == warmup) {
      rss_warm = t_rss_kb();
      hwm_warm = (long long)t_proc_field("/proc/self/status", "VmHWM:", 10);
    }
    int rc = pthread_create(&th[i % CONCURRENT], NULL, thread_main, (void *)(uintptr_t)(i + 1));
    t_check(rc == 0, "pthread_create #%zu failed: %s", i, strerror(rc));
  }
  for (size_t i = cycles > CONCURRENT ? cycles - CONCURRENT : 0; i < cycles; i++)
    pthread_join(th[i % CONCURRENT], NULL);
  double took = t_now() - t0;
  for (int s = 0; s < SLOTS; s++) {
    void *p = atomic_exchange(&slots[s], NULL);
    if (p != NULL) release(p);
  }
  long long rss_end = t_rss_kb();
  long long hwm_end = (long long)t_proc_field("/proc/self/status", "VmHWM:", 10);

  hak_stats_t after;
  hak_stats_get(&after);
  uint64_t started = after.threads_started - before.threads_started;
  uint64_t exited = after.threads_exited - before.threads_exited;
  printf("edge_thread_churn: %zu cycles in %.1f s; VmRSS %lld -> %lld KiB, VmHWM %lld -> %lld "
         "KiB after %zu cycles and at the end; thread caches started %llu, exited %llu; runs "
         "orphaned %llu, adopted %llu, released by their last free %llu\n",
         cycles, took, rss_warm, rss_end, hwm_warm, hwm_end, warmup, (unsigned long long)started,
         (unsigned long long)exited,
         (unsigned long long)(after.orphaned_slabs - before.orphaned_slabs),
         (unsigned long long)(after.adoptions - before.adoptions),
         (unsigned long long)(after.last_free_releases - before.last_free_releases));
  t_check(rss_end <= rss_warm + GROWTH_KB, "VmRSS grew from %lld KiB after %zu cycles to %lld KiB",
          rss_warm, warmup, rss_end);
  t_check(hwm_end <= hwm_warm + GROWTH_KB, "VmHWM grew from %lld KiB after %zu cycles to %lld KiB",
          hwm_warm, warmup, hwm_end);
  t_check(started >= cycles, "only %llu thread caches were created for %zu threads",
          (unsigned long long)started, cycles);
  /* The main thread's cache existed before; the purge thread may have made one. */
  t_check(exited <= started && started - exited <= 1,
          "%llu thread caches created but %llu flushed at exit: exits not cleaned up",
          (unsigned long long)started, (unsigned long long)exited);
  t_check_orphans(&before, &after, 64);
  t_check_live(before.live_blocks, 64);
  printf("edge_thread_churn ok\n");
  return 0;
}
