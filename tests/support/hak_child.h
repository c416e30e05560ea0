/* Helpers for tests that run a child process and judge how it ended (tests/support/expect_abort.c,
 * tests/regress): what a wait status means, and reading a pipe to its end. Nothing here
 * allocates. */
#ifndef HAK_CHILD_H
#define HAK_CHILD_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

/* Reads fd to its end into buf, NUL-terminated; keeps draining past size - 1 bytes, storing a
 * prefix. Returns the length stored. */
static inline size_t t_read_all(int fd, char *buf, size_t size) {
  size_t len = 0;
  for (;;) {
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t keep = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
    memcpy(buf + len, chunk, keep);
    len += keep;
  }
  buf[len] = '\0';
  return len;
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
