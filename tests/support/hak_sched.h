/* Schedule points for tests (HAKMEM_SCHED_POINTS builds: link hakmem_sched).
 *
 * The allocator calls hak_sched_hook at every cross-thread window (enum hak_sched_point in
 * src/internal.h). Through it a test
 *   - parks one thread in a window while others go on: t_sched_arm(point, obj) names the
 *     window (obj: the run or block the point passes, NULL for any); the next thread that has
 *     called t_sched_volunteer() and reaches it stops there; t_sched_wait_parked() returns
 *     once it has, t_sched_release() lets it go on. Threads that did not volunteer, and every
 *     other point, pass straight through;
 *   - widens windows: t_sched_widen(point, spins) makes every thread that reaches the point
 *     yield the CPU spins times (the fuzz harness chooses them from its input).
 * Nothing here allocates: the hook runs inside the allocator, possibly under its locks. Parking
 * polls with nanosleep; a test that never releases a parked thread ends by its own time limit
 * (regress.h: R_CHILD_SECONDS). */
#ifndef HAK_SCHED_H
#define HAK_SCHED_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "internal.h"

#if !HAKMEM_SCHED_POINTS
#error "hak_sched.h: link the test with hakmem_sched (HAKMEM_SCHED_POINTS=1)"
#endif

/* PARKING: a volunteer won the window and is recording what it parks at; PARKED once it has. */
enum { T_SCHED_IDLE, T_SCHED_ARMED, T_SCHED_PARKING, T_SCHED_PARKED, T_SCHED_RELEASED };

static struct {
  _Atomic int state;
  _Atomic int point;
  _Atomic(const void *) obj;
  _Atomic(const void *) parked_obj; /* what the parked thread's point passed */
  _Atomic uint32_t widen[HAK_SP_COUNT];
  _Atomic uint64_t hits[HAK_SP_COUNT]; /* every thread, every pass */
} t_sched;

static _Thread_local bool t_sched_volunteered;

static inline void t_sched_nap(void) {
  struct timespec ts = {0, 100 * 1000};
  nanosleep(&ts, NULL);
}

static void t_sched_hook_fn(enum hak_sched_point point, const void *obj) {
  atomic_fetch_add_explicit(&t_sched.hits[point], 1, memory_order_relaxed);
  for (uint32_t i = atomic_load_explicit(&t_sched.widen[point], memory_order_relaxed); i > 0; i--)
    sched_yield();
  if (!t_sched_volunteered || atomic_load(&t_sched.point) != (int)point) return;
  const void *want = atomic_load(&t_sched.obj);
  if (want != NULL && want != obj) return;
  int expect = T_SCHED_ARMED;
  if (!atomic_compare_exchange_strong(&t_sched.state, &expect, T_SCHED_PARKING)) return;
  atomic_store(&t_sched.parked_obj, obj); /* before PARKED: t_sched_wait_parked returns it */
  atomic_store(&t_sched.state, T_SCHED_PARKED);
  while (atomic_load(&t_sched.state) != T_SCHED_RELEASED) t_sched_nap();
  atomic_store(&t_sched.state, T_SCHED_IDLE);
}

/* Installs the hook (idempotent). */
static inline void t_sched_install(void) {
  atomic_store(&hak_sched_hook, t_sched_hook_fn);
}

/* The calling thread may be parked from now on. */
static inline void t_sched_volunteer(void) { t_sched_volunteered = true; }

static inline void t_sched_arm(enum hak_sched_point point, const void *obj) {
  t_sched_install();
  atomic_store(&t_sched.obj, obj);
  atomic_store(&t_sched.point, (int)point);
  atomic_store(&t_sched.state, T_SCHED_ARMED);
}

/* Waits until a volunteer is parked at the armed point; returns what the point passed. */
static inline const void *t_sched_wait_parked(void) {
  while (atomic_load(&t_sched.state) != T_SCHED_PARKED) t_sched_nap();
  return atomic_load(&t_sched.parked_obj);
}

/* Lets the parked thread go on and waits until it has left the hook. */
static inline void t_sched_release(void) {
  atomic_store(&t_sched.point, -1);
  atomic_store(&t_sched.state, T_SCHED_RELEASED);
  while (atomic_load(&t_sched.state) != T_SCHED_IDLE) t_sched_nap();
}

static inline void t_sched_widen(enum hak_sched_point point, uint32_t spins) {
  t_sched_install();
  atomic_store_explicit(&t_sched.widen[point], spins, memory_order_relaxed);
}

static inline uint64_t t_sched_hits(enum hak_sched_point point) {
  return atomic_load_explicit(&t_sched.hits[point], memory_order_relaxed);
}

#endif /* HAK_SCHED_H */
