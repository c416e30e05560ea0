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

#define CAPTURE_MAX (64 * 1024)

static char captured[CAPTURE_MAX + 1];

static int has_hakmem_line(const char *text) {
  for (const char *line = text; *line;) {
    if (strncmp(line, "hakmem: ", 8) == 0)
      return 1;
    const char *nl = strchr(line, '\n');
    if (nl == NULL)
      break;
    line = nl + 1;
  }
  return 0;
}

static size_t read_all(int fd) {
  size_t len = 0;
  for (;;) {
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t keep = (size_t)n;
    if (keep > CAPTURE_MAX - len)
      keep = CAPTURE_MAX - len; /* keep draining, store a prefix */
    memcpy(captured + len, chunk, keep);
    len += keep;
  }
  captured[len] = '\0';
  return len;
}

static void describe(int status, char *buf, size_t size) {
  if (WIFSIGNALED(status))
    snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else if (WIFEXITED(status))
    snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
  else
    snprintf(buf, size, "wait status 0x%x", status);
}

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
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    close(fds[0]);
    if (dup2(fds[1], STDERR_FILENO) < 0)
      _exit(126);
    close(fds[1]);
    execv(argv[3], &argv[3]);
    fprintf(stderr, "expect_abort: cannot exec %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  read_all(fds[0]);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("expect_abort: waitpid");
      return 2;
    }
  }

  int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  int diagnosed = has_hakmem_line(captured);
  printf("--- %s: child stderr ---\n%s--- end ---\n", name, captured);
  if (aborted && diagnosed) {
    printf("PASS: %s: aborted with a hakmem diagnostic\n", name);
    return 0;
  }
  char how[128];
  describe(status, how, sizeof how);
  fprintf(stderr, "FAIL: %s: expected SIGABRT and a 'hakmem: ' line on stderr; child %s, %s\n",
          name, how, diagnosed ? "diagnostic present" : "no 'hakmem: ' line");
  return 1;
}
