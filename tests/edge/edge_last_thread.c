/* edge_last_thread main|thread: a process whose main thread leaves by pthread_exit ends when its
 * last thread does, the purge thread notwithstanding (a process ends when its last thread ends,
 * and hakmem's purge thread is a thread: without the purge box's watch, such a process lived on
 * with only hakmem-purge, which blocks every signal, until SIGKILL).
 *
 * The test forks a child (from its main thread with "main", from a second thread with
 * "thread", as a program that forks from a worker does), and the child:
 *   - allocates and frees 300 KiB and 64-byte blocks until hakmem's purge thread runs (it
 *     checks /proc for hakmem-purge, so the case cannot pass without the thread);
 *   - registers an atexit handler that writes "atexit ran" into a pipe to the test;
 *   - starts a worker that allocates, frees and returns after 100 ms;
 *   - calls pthread_exit in its main thread.
 * glibc then ends the child with exit(0) when its last thread is gone. The test waits for the
 * child for up to 60 s (the hang detector; the child needs well under a second) and asserts
 * exit status 0 and the atexit line. Without a purge thread the case cannot tell anything, so
 * it is not registered where the thread is off (TSan). */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "hak_proc.h"
#include "hak_test.h"

#define HANG_SECONDS 60

static int report_fd = -1;

static void churn(void) {
  for (int i = 0; i < 200; i++) T_FREE(T_MALLOC(300000));
  for (int i = 0; i < 4096; i++) T_FREE(T_MALLOC(64));
}

static void at_exit(void) {
  static const char line[] = "atexit ran\n";
  if (write(report_fd, line, sizeof line - 1) < 0) _exit(3);
}

static void *worker(void *arg) {
  (void)arg;
  churn();
  struct timespec t = {0, 100000000};
  nanosleep(&t, NULL);
  churn();
  return NULL;
}

/* The child: ends by pthread_exit of its main thread (the forking thread's copy). */
static void child(void) {
  for (int i = 0; i < 500 && t_tasks("hakmem-purge", NULL) == 0; i++) {
    churn();
    struct timespec t = {0, 10000000};
    nanosleep(&t, NULL);
  }
  if (t_tasks("hakmem-purge", NULL) != 1) _exit(4); /* no purge thread: nothing to show */
  if (atexit(at_exit) != 0) _exit(5);
  pthread_t w;
  if (pthread_create(&w, NULL, worker, NULL) != 0) _exit(6);
  pthread_detach(w);
  pthread_exit(NULL);
}

static pid_t fork_child(void) {
  pid_t pid = fork();
  t_check(pid >= 0, "fork failed: %s", strerror(errno));
  if (pid == 0) child();
  return pid;
}

static void *forking_thread(void *arg) {
  *(pid_t *)arg = fork_child();
  return NULL;
}

int main(int argc, char **argv) {
  t_check(argc == 2 && (strcmp(argv[1], "main") == 0 || strcmp(argv[1], "thread") == 0),
          "usage: edge_last_thread main|thread");
  int fds[2];
  t_check(pipe(fds) == 0, "pipe failed: %s", strerror(errno));
  report_fd = fds[1];
  T_FREE(T_MALLOC(16));
  pid_t pid;
  if (strcmp(argv[1], "main") == 0) {
    pid = fork_child();
  } else {
    pthread_t t;
    t_check(pthread_create(&t, NULL, forking_thread, &pid) == 0, "pthread_create failed");
    pthread_join(t, NULL);
  }
  close(fds[1]);
  int status = 0;
  double t0 = t_now();
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (t_now() - t0 > HANG_SECONDS) {
      int purge = t_tasks("hakmem-purge", NULL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      t_fail("the child outlived its last thread: still there %d s after its main thread's "
             "pthread_exit (this process sees %d hakmem-purge threads of its own)",
             HANG_SECONDS, purge);
    }
    struct timespec t = {0, 5000000};
    nanosleep(&t, NULL);
  }
  char got[64] = "";
  ssize_t n = read(fds[0], got, sizeof got - 1);
  got[n > 0 ? n : 0] = '\0';
  t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child ended with status 0x%x (4: no purge thread started)", status);
  t_check(strcmp(got, "atexit ran\n") == 0, "the child's atexit handler did not run (read \"%s\")",
          got);
  printf("edge_last_thread %s ok: the child exited 0 after %.2f s, atexit ran\n", argv[1],
         t_now() - t0);
  return 0;
}
