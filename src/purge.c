/* The purge thread: freed memory goes back to the OS while the program is idle, too.
 *
 * The decay (superslab.c, large.c) returns empty and dirty slabs and cached large mappings once
 * they have been free for HAKMEM_DECAY_MS, but it runs on slow paths of later allocator calls:
 * a program that frees a gigabyte and then waits keeps all of it. This box adds one background
 * thread that runs the same decay every decay_ms / 4 while a box reports work pending, and
 * sleeps on a futex while none does.
 *
 * Boundary: hak_purge_notify() (internal.h), called after each slow path that may leave work
 * for the decay (spill, refill, remote free, large free, thread exit), where no hakmem lock is
 * held and the caller's cache is consistent; hak_purge_init() once the process has started;
 * hak_purge_fork_child() in the atfork child handler. HAKMEM_PURGE_THREAD=0 keeps the state OFF:
 * no thread is ever made, and the decay runs on slow paths only, as it always does.
 *
 *  transition               who
 *  OFF -> UNSTARTED         hak_purge_init, hak_purge_fork_child (switch on)
 *  UNSTARTED -> AWAKE       the notify that finds work pending, by one CAS, then pthread_create
 *  AWAKE -> OFF             that notify, when pthread_create failed (a note under VERBOSE)
 *  AWAKE -> ASLEEP          the thread, when its pass left nothing pending
 *  ASLEEP -> AWAKE          a notify that finds work pending (CAS, then the futex wake), or the
 *                           thread, when its check before sleeping finds some
 *  any -> UNSTARTED / OFF   a fork child (hak_purge_fork_child): the thread did not come along
 *
 * Invariants:
 *   - at most one purge thread per process: only the UNSTARTED -> AWAKE CAS makes one, and
 *     only a fork child, which has none, goes back to UNSTARTED;
 *   - no lost wake-up: a box marks work pending under its lock before its caller notifies; the
 *     thread stores ASLEEP before it reads the marks under the same locks. Whichever of the two
 *     lock sections comes first, the thread sees the work or the notifier sees ASLEEP;
 *   - the thread returns memory only through the decay functions, under their locks, so it
 *     unmaps only what the slow-path decay may unmap at any moment (superslab.c and large.c say
 *     why that is safe); when it runs is a memory policy, never what makes an access safe;
 *   - the thread, named hakmem-purge, blocks every signal, has no cache (hak_tc_dead),
 *     allocates nothing, and holds one lock at a time for one pass at most, like any thread:
 *     fork_prepare's lock order stays free of deadlock, and exit, which ends the detached
 *     thread wherever it is, never waits on it for long.
 *
 * The last thread out: a process ends when its last thread does, and the purge thread is one.
 * When the main thread leaves by pthread_exit while others run, glibc ends the process with
 * exit(0) when the last of them exits, counting the purge thread too. So once the main thread
 * is gone (hak_purge_main_exit, from its cache's exit), the thread no longer sleeps on the
 * futex: it polls the number of running threads every PURGE_WATCH_MS and returns when it is
 * the only one, so that its own exit is that last one (glibc's count of threads decides who
 * calls exit, whichever order the main thread's end and this return take).
 *
 * Why a notify may start the thread: pthread_create allocates, through hakmem when hakmem is
 * the process's malloc. A notify site holds no hakmem lock and leaves its cache consistent, so
 * those are ordinary nested calls; the state is AWAKE before pthread_create, so they, and every
 * other thread, return at the first load (the CAS is the guard against recursion). Never during
 * start-up (OFF until hak_purge_init), never in a fork child's handler (its take-over of the
 * other threads' caches notifies nobody; the child's first notify starts its own thread).
 */
#include "internal.h"

/* Passes at least this far apart, whatever HAKMEM_DECAY_MS (0 returns at once). */
#define PURGE_MIN_INTERVAL_MS 10
/* Once the main thread is gone: how often the thread looks whether it is the last one. */
#define PURGE_WATCH_MS 20

static _Atomic(bool) purge_main_gone;

_Atomic(uint32_t) hak_purge_state = HAK_PURGE_OFF;

/* A box has work for the decay: hints, read without the locks. */
static bool purge_pending(void) { return hak_superslab_pending() || hak_large_pending(); }

/* The same, read under each box's lock in turn: the check before sleeping (see invariants). */
static bool purge_pending_locked(void) {
  hak_superslab_lock_all();
  bool pending = hak_superslab_pending();
  hak_superslab_unlock_all();
  hak_large_lock_all();
  pending |= hak_large_pending();
  hak_large_unlock_all();
  return pending;
}

/* One pass of the decay the slow paths run, under its locks: it unmaps a SuperSlab only when
 * every slab is free and a large mapping only when it is cached (both unregistered first), and
 * purges only free slabs. */
static void purge_pass(void) {
  size_t bytes = hak_superslab_trim(false) + hak_large_trim(false);
  hak_gstat_add(HAK_G_PURGE_PASSES, 1);
  hak_gstat_add(HAK_G_PURGE_BYTES, (int64_t)bytes);
}

static uint64_t purge_interval_ms(void) {
  uint64_t ms = (uint64_t)hak_opt.decay_ms / 4;
  return ms < PURGE_MIN_INTERVAL_MS ? PURGE_MIN_INTERVAL_MS : ms;
}

/* AWAKE -> ASLEEP, and back once a notify finds work pending. */
static void purge_sleep(void) {
  hak_sched_point(HAK_SP_PURGE_SLEEP, NULL); /* work left from here on finds the thread AWAKE */
  atomic_store_explicit(&hak_purge_state, HAK_PURGE_ASLEEP, hak_relaxed);
  if (purge_pending_locked()) {
    uint32_t asleep = HAK_PURGE_ASLEEP; /* a notifier may have set AWAKE already */
    atomic_compare_exchange_strong_explicit(&hak_purge_state, &asleep, HAK_PURGE_AWAKE,
                                            hak_relaxed, hak_relaxed);
    return;
  }
  /* Acquire: the waker marked its work before its CAS, so the next pass finds it. */
  while (atomic_load_explicit(&hak_purge_state, memory_order_acquire) == HAK_PURGE_ASLEEP)
    hak_os_futex_wait(&hak_purge_state, HAK_PURGE_ASLEEP);
  hak_gstat_add(HAK_G_PURGE_WAKEUPS, 1);
}

/* Once the main thread is gone: waits, watching the number of running threads, until a pass
 * is due (false) or this is the process's last running thread (true). */
static bool purge_watch(void) {
  for (uint64_t waited = 0;; waited += PURGE_WATCH_MS) {
    if (hak_os_live_threads() == 1) return true;
    if (waited >= purge_interval_ms() && purge_pending()) return false;
    hak_os_sleep_ms(PURGE_WATCH_MS);
  }
}

static void *purge_main(void *arg) {
  (void)arg;
  hak_tc = &hak_tc_dead; /* what glibc may allocate for this thread goes to the global cache */
  for (;;) {
    purge_pass();
    if (atomic_load_explicit(&purge_main_gone, memory_order_acquire)) {
      if (purge_watch()) break;
    } else if (purge_pending()) {
      hak_os_sleep_ms(purge_interval_ms());
    } else {
      purge_sleep();
    }
  }
  /* The last running thread: its return is the process's exit(0) (glibc's start_thread). */
  atomic_store_explicit(&hak_purge_state, HAK_PURGE_OFF, hak_relaxed);
  return NULL;
}

static void purge_start(void) {
  uint32_t unstarted = HAK_PURGE_UNSTARTED;
  if (!atomic_compare_exchange_strong_explicit(&hak_purge_state, &unstarted, HAK_PURGE_AWAKE,
                                               hak_relaxed, hak_relaxed))
    return;
  if (hak_os_thread_start(purge_main, "hakmem-purge")) return;
  atomic_store_explicit(&hak_purge_state, HAK_PURGE_OFF, hak_relaxed);
  if (hak_opt.verbose)
    hak_warn("no purge thread (pthread_create failed)", "freed memory returns on later calls");
}

static void purge_wake(void) {
  uint32_t asleep = HAK_PURGE_ASLEEP;
  /* Release: the work this thread marked is visible to the pass the thread runs next. */
  if (atomic_compare_exchange_strong_explicit(&hak_purge_state, &asleep, HAK_PURGE_AWAKE,
                                              memory_order_release, hak_relaxed))
    hak_os_futex_wake(&hak_purge_state);
}

hak_cold void hak_purge_notify_slow(void) {
  /* Acquire: pairs with hak_purge_init, so a thread started here reads the options. */
  uint32_t state = atomic_load_explicit(&hak_purge_state, memory_order_acquire);
  if (state >= HAK_PURGE_AWAKE || !purge_pending()) return;
  if (state == HAK_PURGE_UNSTARTED) purge_start();
  else purge_wake();
}

void hak_purge_main_exit(void) {
  if (hak_os_gettid() != hak_os_getpid()) return;
  atomic_store_explicit(&purge_main_gone, true, memory_order_release);
  /* An asleep thread wakes to watch (without waiting for work). */
  uint32_t asleep = HAK_PURGE_ASLEEP;
  if (atomic_compare_exchange_strong_explicit(&hak_purge_state, &asleep, HAK_PURGE_AWAKE,
                                              memory_order_release, hak_relaxed))
    hak_os_futex_wake(&hak_purge_state);
}

void hak_purge_init(void) {
  if (hak_opt.purge_thread)
    atomic_store_explicit(&hak_purge_state, HAK_PURGE_UNSTARTED, memory_order_release);
}

/* Under ThreadSanitizer a child of a multi-threaded process may not start a thread (TSan ends
 * it): there the child keeps its decay on slow paths. */
void hak_purge_fork_child(void) {
  bool restart = hak_opt.purge_thread && !HAKMEM_TSAN;
  atomic_store_explicit(&purge_main_gone, false, hak_relaxed); /* the forking thread is main */
  atomic_store_explicit(&hak_purge_state, restart ? HAK_PURGE_UNSTARTED : HAK_PURGE_OFF,
                        hak_relaxed);
}
