/* --minimize: shrinks a failing trace to a small one that fails the same way.
 *
 * Each candidate is a subset of the resolved calls, written as a normal trace file and
 * replayed by a child process (this program, exec'ed) under a timeout. "Fails the same way":
 * the child ends by the same signal (or exit status) as the original, and when the original
 * printed a `hakmem: <what>: ...` diagnostic, the child prints one with the same <what>.
 * Removing an allocation removes every call that uses its block (frees, reallocs, and what
 * those create in turn). Chunked removal first (halves, quarters, ...), then call by call. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"

typedef struct outcome_s {
  int status;     /* wait status; -1 timeout                                              */
  char what[128]; /* text between "hakmem: " and the next ':' of its first such line, or "" */
} outcome_t;

static bool clean(const outcome_t *o) {
  return o->status != -1 && WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0;
}

static bool same(const outcome_t *a, const outcome_t *b) {
  if (a->status == -1 || b->status == -1 || clean(a))
    return false;
  if (WIFSIGNALED(a->status) != WIFSIGNALED(b->status))
    return false;
  if (WIFSIGNALED(a->status) ? WTERMSIG(a->status) != WTERMSIG(b->status)
                             : WEXITSTATUS(a->status) != WEXITSTATUS(b->status))
    return false;
  return a->what[0] == '\0' || strcmp(a->what, b->what) == 0;
}

/* Lines that are not the fail-fast diagnostic: warnings, one-shot logs ("hakmem: [TAG] ..."),
 * which a healthy run prints too, and the debug ring's lines ("hakmem:   ring[...]"). */
static bool not_diagnostic(const char *h) {
  return strncmp(h + 8, "warning", 7) == 0 || h[8] == '[' || h[8] == ' ';
}

static void diagnostic_of(const char *err, char *what, size_t size) {
  what[0] = '\0';
  const char *h = strstr(err, "hakmem: ");
  while (h != NULL && not_diagnostic(h))
    h = strstr(h + 8, "hakmem: ");
  if (h == NULL)
    return;
  h += 8;
  size_t n = strcspn(h, ":\n");
  if (n >= size)
    n = size - 1;
  memcpy(what, h, n);
  what[n] = '\0';
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void child(const char *path, int fds[2]) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  close(fds[0]);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  FILE *null = freopen("/dev/null", "w", stdout);
  (void)null;
  unsetenv("HAKMEM_TRACE");
  execl("/proc/self/exe", "hakmem-replay", path, (char *)NULL);
  _exit(127);
}

/* Replays path in a child; its stderr goes to err (NUL-terminated, truncated). */
static outcome_t run_child(const char *path, double timeout, char *err, size_t size) {
  outcome_t o = {.status = -1};
  int fds[2];
  if (pipe(fds) != 0)
    return o;
  pid_t pid = fork();
  if (pid == 0)
    child(path, fds);
  close(fds[1]);
  size_t len = 0;
  double end = now() + timeout;
  bool timed_out = false;
  for (;;) {
    struct pollfd p = {fds[0], POLLIN, 0};
    int left = (int)((end - now()) * 1000);
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (poll(&p, 1, left) <= 0)
      continue;
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t keep = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
    memcpy(err + len, buf, keep);
    len += keep;
  }
  close(fds[0]);
  err[len] = '\0';
  if (timed_out)
    kill(pid, SIGKILL);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  o.status = timed_out ? -1 : status;
  diagnostic_of(err, o.what, sizeof o.what);
  return o;
}

/* ---- candidates ---------------------------------------------------------------------------- */

typedef struct minimizer_s {
  const trace_t *t;
  const char *tmp;
  double timeout;
  outcome_t want;
  bool *keep;    /* current subset                                                         */
  bool *cand;    /* scratch                                                                */
  uint8_t *gone; /* per block id: its allocation is not in the candidate                   */
  size_t runs;
  double deadline; /* now() past it: no more candidates are tried                            */
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

static double now(void);

/* Past the deadline every candidate counts as passing, so both passes end at once. */
static bool candidate_fails(minimizer_t *m) {
  if (now() > m->deadline) {
    m->out_of_time = true;
    return false;
  }
  if (!trace_write(m->tmp, m->t, m->cand))
    exit(2);
  char err[8192];
  outcome_t o = run_child(m->tmp, m->timeout, err, sizeof err);
  m->runs++;
  return same(&m->want, &o);
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
  for (size_t len = kept(m); len >= 2; len = kept(m)) {
    if (parts > len)
      parts = len;
    size_t step = (len + parts - 1) / parts;
    bool reduced = false;
    for (size_t lo = 0; lo < len && !reduced; lo += step) {
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
    for (size_t r = kept(m); r-- > 0;) {
      if (make_candidate(m, r, r + 1) == kept(m))
        continue;
      if (candidate_fails(m)) {
        accept(m);
        again = true;
      }
    }
  }
}

int replay_minimize(const trace_t *t, const char *trace_path, const char *out, double timeout,
                    double budget) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.candidate", out);
  minimizer_t m = {.t = t, .tmp = tmp, .timeout = timeout, .deadline = now() + budget};
  char err[8192];
  m.want = run_child(trace_path, timeout, err, sizeof err);
  if (m.want.status == -1 || clean(&m.want)) {
    fprintf(stderr, "hakmem-replay: %s: the trace %s; nothing to minimize\n", trace_path,
            m.want.status == -1 ? "times out" : "replays clean");
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
    fprintf(stderr, "hakmem-replay: the %g s budget ran out: the trace written is the "
                    "smallest found so far, not a minimum\n", budget);
  printf("hakmem-replay: minimized %zu ops to %zu (%zu replays); fails with %s%s%s\n", t->n,
         kept(&m), m.runs,
         WIFSIGNALED(m.want.status) ? strsignal(WTERMSIG(m.want.status)) : "an exit status",
         m.want.what[0] ? ": hakmem: " : "", m.want.what);
  return 0;
}
