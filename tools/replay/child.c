/* This program again, as a child: one replay of a trace file (under a perturbed schedule when a
 * seed is given) with a time limit, its stderr captured, its end classified.
 *
 * Used by --minimize (does a candidate fail the way the original does?) and --perturb-search
 * (does this seed fail?). The child is /proc/self/exe, so it is the very build that asks; it
 * writes no core file and its stdout goes to /dev/null. Past the time limit it is killed
 * (SIGKILL) and the outcome is a hang. Outcomes are named as hakmem-triage names them: pass,
 * crash (SIGxxx), hang, fail (exit N). */
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

#include "hak_child.h"
#include "replay.h"

double replay_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

bool outcome_clean(const outcome_t *o) {
  return o->status != -1 && WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0;
}

bool outcome_same(const outcome_t *a, const outcome_t *b) {
  if (a->status == -1 || b->status == -1 || outcome_clean(a))
    return false;
  if (WIFSIGNALED(a->status) != WIFSIGNALED(b->status))
    return false;
  if (WIFSIGNALED(a->status) ? WTERMSIG(a->status) != WTERMSIG(b->status)
                             : WEXITSTATUS(a->status) != WEXITSTATUS(b->status))
    return false;
  return a->what[0] == '\0' || strcmp(a->what, b->what) == 0;
}

const char *outcome_name(const outcome_t *o, char *buf, size_t size) {
  if (o->status == -1) {
    snprintf(buf, size, "hang");
  } else if (WIFSIGNALED(o->status)) {
    const char *abbrev = sigabbrev_np(WTERMSIG(o->status));
    if (abbrev != NULL)
      snprintf(buf, size, "crash (SIG%s)", abbrev);
    else
      snprintf(buf, size, "crash (signal %d)", WTERMSIG(o->status));
  } else if (WEXITSTATUS(o->status) != 0) {
    snprintf(buf, size, "fail (exit %d)", WEXITSTATUS(o->status));
  } else {
    snprintf(buf, size, "pass");
  }
  return buf;
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

static void child(const char *path, const char *seed, int fds[2]) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  close(fds[0]);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  FILE *null = freopen("/dev/null", "w", stdout);
  (void)null;
  unsetenv("HAKMEM_TRACE");
  if (seed != NULL)
    execl("/proc/self/exe", "hakmem-replay", "--perturb", seed, path, (char *)NULL);
  else
    execl("/proc/self/exe", "hakmem-replay", path, (char *)NULL);
  _exit(127);
}

outcome_t child_replay(const char *path, const char *seed, double timeout, char *err, size_t size) {
  outcome_t o = {.status = -1};
  int fds[2];
  if (pipe(fds) != 0)
    return o;
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "hakmem-replay: cannot fork a replay\n");
    exit(2);
  }
  if (pid == 0)
    child(path, seed, fds);
  close(fds[1]);
  bool in_time = t_read_until(fds[0], err, size, timeout > 0 ? timeout : 1e-3, NULL);
  close(fds[0]);
  if (!in_time)
    kill(pid, SIGKILL);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  o.status = in_time ? status : -1;
  diagnostic_of(err, o.what, sizeof o.what);
  return o;
}
