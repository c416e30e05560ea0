/* --minimize: shrinks a failing trace to a small one that fails the same way.
 *
 * Each candidate is a subset of the resolved calls, written as a normal trace file and
 * replayed by a child process (this program, exec'ed) under a timeout. "Fails the same way":
 * the child ends by the same signal (or exit status) as the original, and when the original
 * printed a `hakmem: <what>: ...` diagnostic, the child prints one with the same <what>.
 * Removing an allocation removes every call that uses its block (frees, reallocs, and what
 * those create in turn). Chunked removal first (halves, quarters, ...), then call by call.
 *
 * With --perturb SEED every replay, the original's included, runs under that seed's schedule
 * (perturb.c). A smaller trace draws the seed's decisions at other places, so removing calls
 * far from the race can lose it: such candidates merely count as passing, and the result is
 * the smallest trace found that still fails the same way under the seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "replay.h"

/* ---- candidates ---------------------------------------------------------------------------- */

typedef struct minimizer_s {
  const trace_t *t;
  const char *tmp;
  const char *seed; /* every replay under this perturbed schedule, or NULL: recorded order */
  double timeout;
  outcome_t want;
  bool *keep;    /* current subset                                                         */
  bool *cand;    /* scratch                                                                */
  uint8_t *gone; /* per block id: its allocation is not in the candidate                   */
  size_t runs;
  double deadline; /* replay_now() past it: no more candidates are tried                     */
  bool out_of_time;
} minimizer_t;

/* cand = keep minus the kept calls with rank [lo, hi) among the kept, closed over block use.
 * Returns the number of calls in cand. */
static size_t make_candidate(minimizer_t *m, size_t lo, size_t hi) {
  const trace_t *t = m->t;
  memset(m->gone, 0, (size_t)t->blocks + 1);
  size_t rank = 0, count = 0;
  for (size_t i = 0; i < t->n; i++) {
    const rop_t *o = &t->ops[i];
    bool in = m->keep[i];
    if (in) {
      if (rank >= lo && rank < hi)
        in = false;
      rank++;
    }
    if (in && o->old >= 0 && m->gone[o->old])
      in = false;
    if (!in && o->id >= 0)
      m->gone[o->id] = 1;
    m->cand[i] = in;
    count += in;
  }
  return count;
}

/* Past the deadline every candidate counts as passing and both passes stop (building a
 * candidate costs a walk over the whole trace). */
static bool candidate_fails(minimizer_t *m) {
  if (replay_now() > m->deadline) {
    m->out_of_time = true;
    return false;
  }
  if (!trace_write(m->tmp, m->t, m->cand))
    exit(2);
  char err[8192];
  outcome_t o = child_replay(m->tmp, m->seed, m->timeout, err, sizeof err);
  m->runs++;
  return outcome_same(&m->want, &o);
}

static size_t kept(const minimizer_t *m) {
  size_t k = 0;
  for (size_t i = 0; i < m->t->n; i++)
    k += m->keep[i];
  return k;
}

static void accept(minimizer_t *m) { memcpy(m->keep, m->cand, m->t->n * sizeof *m->keep); }

/* Removes chunks of len / parts calls while the trace keeps failing, refining the parts. */
static void chunked(minimizer_t *m) {
  size_t parts = 2;
  for (size_t len = kept(m); len >= 2 && !m->out_of_time; len = kept(m)) {
    if (parts > len)
      parts = len;
    size_t step = (len + parts - 1) / parts;
    bool reduced = false;
    for (size_t lo = 0; lo < len && !reduced && !m->out_of_time; lo += step) {
      if (make_candidate(m, lo, lo + step) == len)
        continue;
      if (candidate_fails(m)) {
        accept(m);
        reduced = true;
      }
    }
    if (reduced) {
      parts = parts > 2 ? parts - 1 : 2;
    } else if (parts == len) {
      break;
    } else {
      parts *= 2;
    }
  }
}

/* One call at a time, from the end, until a whole pass removes nothing. */
static void one_by_one(minimizer_t *m) {
  for (bool again = true; again;) {
    again = false;
    for (size_t r = kept(m); r-- > 0 && !m->out_of_time;) {
      if (make_candidate(m, r, r + 1) == kept(m))
        continue;
      if (candidate_fails(m)) {
        accept(m);
        again = true;
      }
    }
  }
}

int replay_minimize(const trace_t *t, const char *trace_path, const char *out,
                    const replay_limits_t *lim) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.candidate", out);
  minimizer_t m = {.t = t,
                   .tmp = tmp,
                   .seed = lim->seed,
                   .timeout = lim->timeout,
                   .deadline = replay_now() + lim->budget};
  char err[8192];
  m.want = child_replay(trace_path, m.seed, m.timeout, err, sizeof err);
  if (m.want.status == -1 || outcome_clean(&m.want)) {
    fprintf(stderr, "hakmem-replay: %s: the trace %s%s%s; nothing to minimize\n", trace_path,
            m.want.status == -1 ? "times out" : "replays clean", m.seed ? " under seed " : "",
            m.seed ? m.seed : "");
    return 2;
  }
  m.keep = malloc(t->n + 1);
  m.cand = malloc(t->n + 1);
  m.gone = malloc((size_t)t->blocks + 1);
  if (m.keep == NULL || m.cand == NULL || m.gone == NULL)
    return 2;
  memset(m.keep, 1, t->n);
  chunked(&m);
  one_by_one(&m);
  memcpy(m.cand, m.keep, t->n);
  bool ok = trace_write(out, t, m.keep);
  unlink(tmp);
  if (!ok)
    return 2;
  if (m.out_of_time)
    fprintf(stderr,
            "hakmem-replay: the %g s budget ran out: the trace written is the "
            "smallest found so far, not a minimum\n",
            lim->budget);
  printf("hakmem-replay: minimized %zu ops to %zu (%zu replays); fails with %s%s%s\n", t->n,
         kept(&m), m.runs,
         WIFSIGNALED(m.want.status) ? strsignal(WTERMSIG(m.want.status)) : "an exit status",
         m.want.what[0] ? ": hakmem: " : "", m.want.what);
  return 0;
}
