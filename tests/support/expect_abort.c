/* expect_abort CHECK_NAME -- PROG ARGS...
 *
 * Runs PROG and passes only if it dies by SIGABRT after printing, on stderr, a line that starts
 * with "hakmem: " (hakmem's fail-fast diagnostic). The child's stderr is captured through a
 * pipe and echoed, so the CTest log shows the diagnostic; on failure the runner says what it
 * saw instead. Core dumps are disabled in the child. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hak_child.h"

#define CAPTURE_MAX (64 * 1024)

static char captured[CAPTURE_MAX + 1];

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: expect_abort CHECK_NAME -- PROG ARGS...\n");
    return 2;
  }
  const char *name = argv[1];
  int fds[2];
  if (pipe(fds) != 0) {
    perror("expect_abort: pipe");
    return 2;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("expect_abort: fork");
    return 2;
  }
  if (pid == 0) {
    t_child_stderr_to(fds);
    execv(argv[3], &argv[3]);
    fprintf(stderr, "expect_abort: cannot exec %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  t_read_all(fds[0], captured, sizeof captured);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("expect_abort: waitpid");
      return 2;
    }
  }

  int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  int diagnosed = t_line_with(captured, "hakmem: ") != NULL;
  printf("--- %s: child stderr ---\n%s--- end ---\n", name, captured);
  if (aborted && diagnosed) {
    printf("PASS: %s: aborted with a hakmem diagnostic\n", name);
    return 0;
  }
  char how[128];
  t_describe_status(status, how, sizeof how);
  fprintf(stderr, "FAIL: %s: expected SIGABRT and a 'hakmem: ' line on stderr; child %s, %s\n",
          name, how, diagnosed ? "diagnostic present" : "no 'hakmem: ' line");
  return 1;
}
