/* Process and thread life cycle: start-up without recursion, thread caches, thread exit, fork.
 *
 * - Every thread starts on hak_tc_empty (all SLLs empty, capacity 0): its first malloc misses
 *   and lands in hak_thread_init_slow(), so the fast path never tests for initialisation.
 * - A pthread key destructor flushes the cache and orphans the thread's slabs. After it, the
 *   thread is on hak_tc_dead: its frees go to the remote queues, its allocations (from later
 *   key destructors) to one global cache under a lock. Nothing is re-registered or leaked.
 * - fork(): every global lock is taken before and released after, in parent and child; the
 *   child takes over the caches and runs of the parent's other threads; a traced child switches
 *   to a trace file of its own; the child has no purge thread until its first notify.
 * - Thread exit and the slow paths notify the purge thread (purge.c) once their locks are let
 *   go; it starts only after process start-up.
 * - Caches are never unmapped, only recycled: a late remote notify to an exited thread's cache
 *   writes to valid memory (adopt.c closes the notify stack of an exiting cache).
 */
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "tiny/tls_sll.h"

__thread hak_tcache_t *hak_tc __attribute__((tls_model("initial-exec"))) = &hak_tc_empty;

hak_tcache_t hak_tc_empty = {.state = HAK_TC_EMPTY};
hak_tcache_t hak_tc_dead = {.state = HAK_TC_DEAD};
static hak_tcache_t tc_global = {.state = HAK_TC_GLOBAL};
static hak_lock_t tc_global_lock;

static hak_lock_t tc_list_lock;          /* all_list and free_list */
static hak_tcache_t *tc_all_list;        /* every cache ever made */
static hak_tcache_t *tc_free_list;       /* caches of exited threads, for reuse */
static uint8_t *tc_chunk, *tc_chunk_end; /* carving area for new caches */

static pthread_key_t thread_key;
static _Atomic(int) process_state; /* 0 not started, 1 running init, 2 done */
static __thread int process_init_running __attribute__((tls_model("initial-exec")));

/* ---- locks -------------------------------------------------------------------------------- */

void hak_lock(hak_lock_t *l) {
  for (int spins = 0;; spins++) {
    if (!atomic_load_explicit(&l->held, hak_relaxed) &&
        !atomic_exchange_explicit(&l->held, 1, memory_order_acquire)) {
#if HAKMEM_SCHED_POINTS
      hak_sched_locks++;
#endif
      return;
    }
    if (spins > 64) sched_yield();
  }
}

void hak_unlock(hak_lock_t *l) {
#if HAKMEM_SCHED_POINTS
  hak_sched_locks--;
#endif
  atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* ---- thread caches ------------------------------------------------------------------------ */

/* The notify word is left to atomics: a late delivery may still look at a recycled cache (it
 * finds the stack closed until the cache is reset, then open). */
static void tc_reset(hak_tcache_t *tc, int state) {
  memset(tc, 0, offsetof(hak_tcache_t, notify));
  atomic_store_explicit(&tc->notify, NULL, memory_order_release);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) hak_sll_set_cap(&tc->sll[c], hak_tls_cap_initial((hak_class_t)c));
  tc->state = state;
  tc->free_next = NULL;
}

/* A cache for a new thread, reset under the list lock so hak_stats_get() never reads a cache
 * half-way through its reset. */
static hak_tcache_t *tc_new(void) {
  hak_lock(&tc_list_lock);
  hak_tcache_t *tc = tc_free_list;
  if (tc != NULL) {
    tc_free_list = tc->free_next;
  } else {
    size_t sz = (sizeof(hak_tcache_t) + HAK_CACHE_LINE - 1) & ~(size_t)(HAK_CACHE_LINE - 1);
    if (tc_chunk == NULL || tc_chunk + sz > tc_chunk_end) {
      size_t chunk = 64 * sz;
      tc_chunk = hak_os_map(chunk);
      tc_chunk_end = tc_chunk ? tc_chunk + chunk : NULL;
    }
    if (tc_chunk != NULL) {
      tc = (hak_tcache_t *)tc_chunk;
      tc_chunk += sz;
      tc->all_next = tc_all_list;
      tc_all_list = tc;
    }
  }
  if (tc != NULL) tc_reset(tc, HAK_TC_LIVE);
  hak_unlock(&tc_list_lock);
  return tc;
}

static void tc_recycle(hak_tcache_t *tc) {
  hak_lock(&tc_list_lock);
  tc->free_next = tc_free_list;
  tc_free_list = tc;
  hak_unlock(&tc_list_lock);
}

void hak_tcaches_foreach(void (*fn)(hak_tcache_t *, void *), void *arg) {
  hak_lock(&tc_list_lock);
  for (hak_tcache_t *tc = tc_all_list; tc != NULL; tc = tc->all_next) fn(tc, arg);
  fn(&tc_global, arg);
  hak_unlock(&tc_list_lock);
}

/* ---- thread exit --------------------------------------------------------------------------- */

void hak_thread_done(hak_tcache_t *tc) {
  hak_tc_busy_enter(tc);
  hak_ring_event("thread_exit", tc, 0);
  hak_remote_flush(tc);
  hak_sll_flush_all(tc);
  hak_owner_exit(tc);
  hak_stats_retire(tc);
  hak_gstat_add(HAK_G_THREADS_EXITED, 1);
  hak_tc_busy_leave(tc);
}

static void thread_exit(void *arg) {
  hak_tcache_t *tc = arg;
  if (tc == NULL || tc->state != HAK_TC_LIVE) return;
  if (hak_tracing()) hak_trace_thread_exit();
  hak_tc = &hak_tc_dead;
  hak_thread_done(tc);
  tc->state = HAK_TC_DEAD;
  tc_recycle(tc);
  hak_purge_notify(); /* its runs went back to their SuperSlabs */
  hak_purge_main_exit(); /* when this is the main thread: the purge thread must not outlive */
}

hak_noinline hak_tcache_t *hak_thread_init_slow(void) {
  hak_process_init();
  if (hak_tc != &hak_tc_empty) return hak_tc;
  hak_tcache_t *tc = tc_new();
  if (tc == NULL) return NULL;
  hak_tc = tc;
  hak_gstat_add(HAK_G_THREADS_STARTED, 1);
  hak_ring_event("thread_start", tc, 0);
  /* May allocate (keys past the first block): the cache is already in place. */
  pthread_setspecific(thread_key, tc);
  return tc;
}

hak_tcache_t *hak_tc_acquire(void) {
  hak_tcache_t *tc = hak_tc;
  if (hak_likely(tc->state == HAK_TC_LIVE)) return tc;
  if (tc == &hak_tc_empty) {
    tc = hak_thread_init_slow();
    if (tc != NULL) return tc;
  }
  hak_lock(&tc_global_lock);
  return &tc_global;
}

void hak_tc_release(hak_tcache_t *tc) {
  if (tc == &tc_global) hak_unlock(&tc_global_lock);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static void fork_prepare(void) {
  hak_lock(&tc_global_lock);
  hak_lock(&tc_list_lock);
  hak_adopt_lock_all();
  hak_superslab_lock_all();
  hak_large_lock_all();
}

static void fork_release(void) {
  hak_large_unlock_all();
  hak_superslab_unlock_all();
  hak_adopt_unlock_all();
  hak_unlock(&tc_list_lock);
  hak_unlock(&tc_global_lock);
}

/* The child is single-threaded: the caches of the parent's other threads have no thread any
 * more, so the child does for each what its thread would have done at exit (flush, orphan its
 * runs, recycle it); their blocks come back to the child's frees and adoptions. A cache that was
 * inside a slow path at the fork may be half-way through a move and is left as it is (its
 * blocks leak in the child, as do blocks another thread was freeing or delivering). A TLS SLL
 * is walked by its links, never trusted for its count: its thread may have been between the two
 * stores of a push or pop. */
static void take_over(hak_tcache_t *tc) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    uint32_t n = 0;
    for (void *b = tc->sll[c].head; b != NULL; b = hak_link_decode(b)) n++;
    hak_sll_set_count(&tc->sll[c], n);
  }
  hak_thread_done(tc);
  tc->state = HAK_TC_DEAD;
  tc_recycle(tc);
}

static void fork_child(void) {
  fork_release();
  hak_purge_fork_child();
  if (hak_tracing()) hak_trace_fork_child();
#if HAK_PLANTED(fork_no_takeover) /* planted bug: the other threads' caches are left behind */
  return;
#endif
  hak_tcache_t *mine = hak_tc, *next;
  for (hak_tcache_t *tc = tc_all_list; tc != NULL; tc = next) {
    next = tc->all_next;
    if (tc != mine && tc->state == HAK_TC_LIVE &&
        atomic_load_explicit(&tc->busy, hak_relaxed) == 0)
      take_over(tc);
  }
}

/* ---- process start ----------------------------------------------------------------------- */

void hak_process_init(void) {
  if (hak_likely(atomic_load_explicit(&process_state, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&process_state, &expected, 1)) {
    /* This thread recursed from a libc call below: the allocator is usable already (its state
     * is static), so go on. Another thread waits for the initialiser to finish. */
    while (!process_init_running && atomic_load(&process_state) != 2) sched_yield();
    return;
  }
  process_init_running = 1;
#if HAKMEM_CHECKED
  hak_checked_init(); /* before anything can put a block on a list */
#endif
  hak_options_init();
  hak_crash_init();
  hak_trace_open(); /* before anything else can allocate: the trace starts with this call */
  hak_stats_init();
  tc_reset(&tc_global, HAK_TC_GLOBAL);
  pthread_key_create(&thread_key, thread_exit);
  pthread_atfork(fork_prepare, fork_release, fork_child);
  atomic_store_explicit(&process_state, 2, memory_order_release);
  process_init_running = 0;
  hak_purge_init();
  if (hak_opt.verbose) hak_options_print();
}

__attribute__((constructor)) static void hak_constructor(void) { hak_process_init(); }

__attribute__((destructor)) static void hak_destructor(void) { hak_stats_at_exit(); }
