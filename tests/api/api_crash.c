/* api_crash MODE: crashes one way, for tests/api/check_crash.py (HAKMEM_CRASH_REPORT).
 *
 *   null      reads address 0
 *   unmapped  reads a block of a SuperSlab hakmem has unmapped: a thread allocates 64 KiB
 *             blocks and exits, they are freed, hak_trim() unmaps the empty SuperSlabs
 *   invalid   frees an address inside a block (hakmem's fail-fast: SIGABRT)
 *   two       a second thread faults (at 0x20) while the first one's report (of its fault at
 *             0x10) is under way: stderr is a pipe, filled before the first fault, so the report
 *             blocks at its first write; once the first thread is inside its handler (SIGSEGV
 *             blocked, read from /proc/self/task/TID/status) the second faults; once that one is
 *             inside its handler too, a child process starts copying the pipe to the real
 *             stderr (skipping the filler) and the report goes on. The child outlives this
 *             process, so nothing the report wrote is lost
 *
 * Prints `api_crash: survived` and exits 3 when the crash did not happen. */
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hak_test.h"

#define BLOCKS 96
static void *blocks[BLOCKS];

static void *allocate(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = T_MALLOC(64 * 1024);
    t_check(blocks[i] != NULL, "hak_malloc(64 KiB) failed");
  }
  return NULL;
}

/* A block whose SuperSlab is gone: hak_owns() denies it and hak_trim() unmapped some. */
static volatile uint64_t *unmapped_block(void) {
  pthread_t t;
  t_check(pthread_create(&t, NULL, allocate, NULL) == 0, "pthread_create");
  t_check(pthread_join(t, NULL) == 0, "pthread_join");
  for (int i = 0; i < BLOCKS; i++) T_FREE(blocks[i]);
  hak_trim();
  for (int i = BLOCKS; i-- > 0;)
    if (!hak_owns(blocks[i])) return (volatile uint64_t *)((char *)blocks[i] + 64);
  t_fail("no SuperSlab of the %d blocks was unmapped", BLOCKS);
}

static _Atomic(int) first_tid, second_tid;

/* Whether thread tid is inside a SIGSEGV handler: SIGSEGV is in its blocked set. No stdio. */
static bool in_handler(int tid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char *line = strstr(buf, "\nSigBlk:");
  return line != NULL && (strtoull(line + 8, NULL, 16) >> (SIGSEGV - 1) & 1) != 0;
}

static void wait_in_handler(_Atomic(int) *tid) {
  while (atomic_load(tid) == 0 || !in_handler(atomic_load(tid))) usleep(1000);
}

static void *fault_second(void *arg) {
  (void)arg;
  atomic_store(&second_tid, (int)syscall(SYS_gettid));
  volatile uintptr_t at = 0x20;
  return (void *)(uintptr_t) * (volatile uint64_t *)at;
}

static void *fault_first(void *arg) {
  (void)arg;
  atomic_store(&first_tid, (int)syscall(SYS_gettid));
  volatile uintptr_t at = 0x10;
  return (void *)(uintptr_t) * (volatile uint64_t *)at;
}

/* The copier: waits for the go byte (or for this process to end), skips `filled` bytes of the
 * pipe, copies the rest to fd 1 (the real stderr), exits at the pipe's end. */
static void copier(int data, int control, size_t filled) {
  char c, buf[4096];
  (void)!read(control, &c, 1);
  for (ssize_t n; (n = read(data, buf, sizeof buf)) > 0;) {
    size_t skip = filled < (size_t)n ? filled : (size_t)n;
    filled -= skip;
    (void)!write(1, buf + skip, (size_t)n - skip);
  }
  _exit(0);
}

static void two_faults(void) {
  int data[2], control[2];
  t_check(pipe(data) == 0 && pipe(control) == 0, "pipe");
  fcntl(data[1], F_SETPIPE_SZ, 4096);
  /* The filler goes through a second open file description, so that only it is non-blocking. */
  char path[64], fill[256];
  snprintf(path, sizeof path, "/proc/self/fd/%d", data[1]);
  int filler = open(path, O_WRONLY | O_NONBLOCK);
  t_check(filler >= 0, "open %s", path);
  memset(fill, '.', sizeof fill);
  size_t filled = 0;
  for (size_t chunk = sizeof fill; chunk > 0; chunk /= 2)
    for (ssize_t n; (n = write(filler, fill, chunk)) > 0;) filled += (size_t)n;
  close(filler);
  fprintf(stderr, "api_crash: stderr is a full pipe of %zu bytes; threads fault at 0x10, 0x20\n",
          filled);
  fflush(stderr);
  pid_t pid = fork();
  t_check(pid >= 0, "fork");
  if (pid == 0) {
    dup2(2, 1);
    close(data[1]);
    close(control[1]);
    copier(data[0], control[0], filled);
  }
  close(data[0]);
  close(control[0]);
  dup2(data[1], 2);
  close(data[1]);
  pthread_t t;
  t_check(pthread_create(&t, NULL, fault_first, NULL) == 0, "pthread_create");
  wait_in_handler(&first_tid);
  pthread_t second;
  t_check(pthread_create(&second, NULL, fault_second, NULL) == 0, "pthread_create");
  wait_in_handler(&second_tid);
  (void)!write(control[1], "g", 1);
  pthread_join(t, NULL);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  volatile uint64_t *p = NULL;
  if (strcmp(mode, "null") == 0) {
    printf("api_crash: read %llu\n", (unsigned long long)*p);
  } else if (strcmp(mode, "unmapped") == 0) {
    p = unmapped_block();
    fprintf(stderr, "api_crash: reading %p\n", (void *)p);
    printf("api_crash: read %llu\n", (unsigned long long)*p);
  } else if (strcmp(mode, "invalid") == 0) {
    char *b = T_MALLOC(200);
    T_FREE(b + 40);
  } else if (strcmp(mode, "two") == 0) {
    two_faults();
  } else {
    fprintf(stderr, "usage: api_crash null|unmapped|invalid|two\n");
    return 2;
  }
  printf("api_crash: survived\n");
  return 3;
}
