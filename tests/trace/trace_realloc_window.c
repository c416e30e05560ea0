/* The trace's order around a moving realloc, with the reallocating thread parked in the window
 * (tests/support/hak_sched.h; links hakmem_sched). Run with HAKMEM_TRACE set; run_trace.py's
 * case realloc_window replays the trace.
 *
 * Thread R reallocs a large block L to twice its size: the new block comes from a fresh
 * mapping, L's mapping goes to the large cache, and R parks right after that free, before its
 * realloc returns. The main thread then mallocs L's size and is handed L's mapping, the same
 * address, and frees it; R goes on. The trace must order R's realloc before the main thread's
 * malloc of the same address, or a replay frees the main thread's block for R's realloc and
 * then the same block again (the root cause: realloc was recorded after its return, a free
 * inside it notwithstanding; a free records before the call). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hak_sched.h"
#include "hak_test.h"
#include "hakmem.h"

#define L_SIZE 300000

static void *l_ptr, *r_ptr;

static void *reallocator(void *arg) {
  (void)arg;
  t_sched_volunteer();
  r_ptr = hak_realloc(l_ptr, 2 * L_SIZE); /* parks after the free of l_ptr */
  return NULL;
}

int main(void) {
  l_ptr = hak_malloc(L_SIZE);
  if (l_ptr == NULL)
    t_fail("malloc failed");
  t_sched_arm(HAK_SP_REALLOC_FREED, l_ptr);
  pthread_t r;
  t_start(&r, reallocator, NULL);
  t_sched_wait_parked();
  void *again = hak_malloc(L_SIZE); /* L's cached mapping, while R's realloc has not returned */
  if (again != l_ptr)
    t_fail("the malloc was not handed L's cached mapping: the test lost its point");
  hak_free(again);
  t_sched_release();
  pthread_join(r, NULL);
  if (r_ptr == NULL || r_ptr == l_ptr)
    t_fail("the realloc did not move the block");
  hak_free(r_ptr);
  printf("trace_realloc_window: realloc parked after its free, its address reused meanwhile\n");
  return 0;
}
