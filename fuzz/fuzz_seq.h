/* The driver shared by the harnesses whose input runs in a sequence of threads (magazine,
 * tls_sll, ptr_bridge, hint, registry), and the block geometry and coverage switch they share.
 *
 * f_seq_run(seq, data, size) runs the input's operations in threads started one after the
 * other, never two at once: each thread runs operations until the harness asks for a new thread
 * (seq->op returns false) or the input ends (it is used up, or seq->max_ops operations have
 * run); the thread then ends, and the next one goes on where it stopped. A thread's end is what
 * flushes its TLS caches and releases or orphans its runs (hak_thread_done), so a harness ends
 * threads to reach states nothing else produces. The last thread cleans up (seq->finish): it
 * frees what is left, so that the input leaves the allocator as it found it, which the driver
 * checks: hakmem's live block count is the same before the input and after it.
 *
 * Hooks (NULL: none, except op):
 *   op(in, may_end)  decodes and runs one operation, and checks after it; returns false to end
 *                    the thread, which it may do only when may_end (fewer than max_threads
 *                    threads started so far); every call counts as one operation
 *   thread_start()   in each thread, before its first operation
 *   thread_end()     in each thread, after its last operation
 *   finish()         in the last thread, after thread_end()
 *   joined()         in the calling thread, after each thread is joined
 * The threads run one at a time and the driver joins each before starting the next, so the
 * harness's state needs no locks: thread creation and join order every access. */
#ifndef HAKMEM_FUZZ_SEQ_H
#define HAKMEM_FUZZ_SEQ_H

#include "fast.h"
#include "hak_block.h"
#include "fuzz.h"

typedef struct f_seq_s {
  bool (*op)(f_in_t *in, bool may_end);
  void (*thread_start)(void);
  void (*thread_end)(void);
  void (*finish)(void);
  void (*joined)(void);
  int max_ops;     /* operations per input */
  int max_threads; /* > 0: a thread may end early only while fewer than this have started */
} f_seq_t;

/* One input's progress, handed from thread to thread. */
typedef struct f_seq_state_s {
  const f_seq_t *seq;
  f_in_t in;   /* what is left of the input */
  int ops;     /* operations run so far */
  int threads; /* threads started so far */
  bool done;   /* the input is used up and the last thread has cleaned up */
} f_seq_state_t;

static inline void *f_seq_thread(void *arg) {
  f_seq_state_t *st = arg;
  const f_seq_t *seq = st->seq;
  if (seq->thread_start) seq->thread_start();
  bool more = true;
  while (more && st->ops < seq->max_ops && f_more(&st->in)) {
    more = seq->op(&st->in, st->threads < seq->max_threads);
    st->ops++;
  }
  if (seq->thread_end) seq->thread_end();
  st->done = st->ops >= seq->max_ops || !f_more(&st->in);
  if (st->done && seq->finish) seq->finish();
  return NULL;
}

/* Runs the input (see the top of this file); returns 0, for LLVMFuzzerTestOneInput. */
static inline int f_seq_run(const f_seq_t *seq, const uint8_t *data, size_t size) {
  uint64_t live0 = t_live_blocks();
  f_seq_state_t st = {seq, f_in(data, size), 0, 0, false};
  while (!st.done) {
    pthread_t t;
    st.threads++;
    t_start(&t, f_seq_thread, &st);
    t_join(t);
    if (seq->joined) seq->joined();
  }
  uint64_t live1 = t_live_blocks();
  T_INVARIANT(live1 == live0, "live blocks %llu before the input, %llu after",
              (unsigned long long)live0, (unsigned long long)live1);
  return 0;
}

/* Adopts every run earlier threads left published, so that the input leaves nothing behind:
 * the exit of the calling thread releases them. For a finish() hook. */
static inline void f_seq_adopt_leftovers(void) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    while (hak_adopt_slow(hak_tc, c) != NULL) continue;
}

/* ---- blocks and runs ------------------------------------------------------------------------ */

/* The checks are not coverage targets: F_NOCOV keeps SanitizerCoverage hooks out of them, which
 * keeps the checks after every operation cheap. */
#ifdef __clang__
#define F_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define F_NOCOV
#endif

/* A request size in slab class c, chosen by v: class c serves (size of c - 1, size of c]. */
static inline size_t f_size_in_class(unsigned c, uint32_t v) {
  size_t lo = c == 0 ? 0 : hak_class_size((int)c - 1) + 1, hi = hak_class_size((int)c);
  return lo + v % (hi - lo + 1);
}

#endif /* HAKMEM_FUZZ_SEQ_H */
