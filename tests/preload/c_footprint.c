/* A C program under LD_PRELOAD=libhakmem.so: hakmem brings no C++ runtime with it.
 *
 * 1. /proc/self/maps shows libhakmem mapped and none of libstdc++, libgcc_s and libm (the C++
 *    operators are built in C and reach the runtime by name only when an allocation fails).
 * 2. operator new (_Znwm, found by name, defined by libhakmem) still allocates here, and a
 *    failing one in a process with no C++ runtime ends in the one-line diagnostic and abort,
 *    never a return of NULL from a throwing form. */
#ifndef _GNU_SOURCE /* hak_test_target defines it; built by hand too */
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hak_child.h"

static int failures;

#define CHECK(cond, ...)                   \
  do {                                     \
    if (!(cond)) {                         \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                 \
      failures++;                          \
    }                                      \
  } while (0)

static void check_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) {
    perror("/proc/self/maps");
    exit(2);
  }
  static const char *const foreign[] = {"/libstdc++.so", "/libgcc_s.so", "/libm.so"};
  char line[1024];
  int hakmem = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (strstr(line, "/libhakmem") != NULL) hakmem = 1;
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
      CHECK(strstr(line, foreign[i]) == NULL, "mapped with hakmem preloaded: %s", line);
  }
  fclose(f);
  CHECK(hakmem, "libhakmem is not mapped: run this under LD_PRELOAD");
}

typedef void *(*new_fn)(size_t);

static void check_operator_new(void) {
  new_fn op_new = (new_fn)dlsym(RTLD_DEFAULT, "_Znwm");
  void (*op_delete)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "_ZdlPv");
  CHECK(op_new != NULL && op_delete != NULL, "operator new/delete not found by name");
  if (op_new == NULL || op_delete == NULL) return;
  Dl_info info;
  CHECK(dladdr((void *)op_new, &info) && info.dli_fname != NULL &&
            strstr(info.dli_fname, "libhakmem") != NULL,
        "operator new is not libhakmem's (%s)", info.dli_fname ? info.dli_fname : "?");
  char *p = op_new(100);
  CHECK(p != NULL, "operator new(100) returned NULL");
  if (p != NULL) {
    memset(p, 0x5a, 100);
    op_delete(p);
  }

  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(2);
  }
  pid_t pid = fork();
  if (pid == 0) {
    t_child_stderr_to(fds);
    void *q = op_new(SIZE_MAX / 2); /* cannot be served */
    printf("operator new(SIZE_MAX / 2) returned %p\n", q);
    _exit(0);
  }
  close(fds[1]);
  char err[4096];
  t_read_all(fds[0], err, sizeof err);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  char how[128];
  t_describe_status(status, how, sizeof how);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
        "a failing operator new without a C++ runtime: child %s, expected SIGABRT", how);
  CHECK(strstr(err, "hakmem: operator new: allocation failed and no C++ runtime is loaded") !=
            NULL,
        "the diagnostic is missing; the child's stderr:\n%s", err);
}

int main(void) {
  check_maps();
  check_operator_new();
  if (failures != 0) return 1;
  printf("c_footprint: no C++ runtime mapped; operator new served and fails fast\n");
  return 0;
}
