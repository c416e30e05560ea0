/* Helpers for tests and tools that run a child process and judge how it ended
 * (tests/support/expect_abort.c, tests/regress, fuzz/interleave.c, hakmem-replay's children):
 * what a wait status means, reading a pipe to its end, finding a line in what it read. Nothing
 * here allocates. */
#ifndef HAK_CHILD_H
#define HAK_CHILD_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* "killed by signal 6 (Aborted)", "exited with status 1", ... */
static inline void t_describe_status(int status, char *buf, size_t size) {
  if (WIFSIGNALED(status))
    snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else if (WIFEXITED(status))
    snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
  else
    snprintf(buf, size, "wait status 0x%x", status);
}

/* Reads fd to its end (every writer gone) into buf, NUL-terminated, keeping a prefix of
 * size - 1 bytes and draining the rest. With seconds > 0 it stops once that many seconds have
 * passed (a grandchild may keep the pipe open). *len gets the length stored when len is not
 * NULL. Returns false when the time ran out first. */
static inline bool t_read_until(int fd, char *buf, size_t size, double seconds, size_t *len) {
  size_t got = 0;
  bool ended = false;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  double end = (double)t.tv_sec + (double)t.tv_nsec / 1e9 + seconds;
  for (;;) {
    int wait_ms = -1;
    if (seconds > 0) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      double left = end - ((double)t.tv_sec + (double)t.tv_nsec / 1e9);
      if (left <= 0) break;
      wait_ms = (int)(left * 1000) + 1;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ended = true;
      break;
    }
    size_t keep = (size_t)n < size - 1 - got ? (size_t)n : size - 1 - got;
    memcpy(buf + got, chunk, keep);
    got += keep;
  }
  buf[got] = '\0';
  if (len != NULL) *len = got;
  return ended;
}

/* Reads fd to its end into buf (as t_read_until, without a time limit); the length stored. */
static inline size_t t_read_all(int fd, char *buf, size_t size) {
  size_t len;
  t_read_until(fd, buf, size, 0, &len);
  return len;
}

/* The first line of text that starts with prefix, or NULL. */
static inline const char *t_line_with(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *line = text; *line;) {
    if (strncmp(line, prefix, n) == 0)
      return line;
    const char *nl = strchr(line, '\n');
    if (nl == NULL)
      break;
    line = nl + 1;
  }
  return NULL;
}

/* In a forked child, before exec: no core dump, stderr into the write end of pipe fds. */
static inline void t_child_stderr_to(int fds[2]) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  close(fds[0]);
  if (dup2(fds[1], STDERR_FILENO) < 0) _exit(126);
  close(fds[1]);
}

#endif /* HAK_CHILD_H */
