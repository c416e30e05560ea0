/* What /proc says about this process, read without allocating (open, read, getdents64), so a
 * test can watch its resident memory and its threads while it makes no allocator call: the
 * purge tests (tests/api/api_purge.c, tests/unit/unit_purge.c). */
#ifndef HAK_PROC_H
#define HAK_PROC_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hak_test.h"

/* Reads at most size - 1 bytes of path into buf, NUL-terminated; false when it cannot. */
static inline bool t_proc_read(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return false;
  buf[n] = '\0';
  return true;
}

/* The number after key ("VmRSS:", "SigBlk:", ...) in a status file, in base 10 or 16; fails
 * the test when the file or the key is missing. */
static inline unsigned long long t_proc_field(const char *path, const char *key, int base) {
  char buf[8192];
  if (!t_proc_read(path, buf, sizeof buf)) t_fail("cannot read %s", path);
  const char *at = strstr(buf, key);
  if (at == NULL) t_fail("no %s in %s", key, path);
  return strtoull(at + strlen(key), NULL, base);
}

/* This process's resident set, in KiB. */
static inline long long t_rss_kb(void) {
  return (long long)t_proc_field("/proc/self/status", "VmRSS:", 10);
}

/* Calls fn(tid, arg) for every thread of this process. */
static inline void t_tasks_foreach(void (*fn)(long tid, void *arg), void *arg) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[4096];
  long n;
  while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      /* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name */
      unsigned short reclen;
      memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char *name = buf + off + 19;
      if (name[0] >= '0' && name[0] <= '9') fn(strtol(name, NULL, 10), arg);
      off += reclen;
    }
  }
  close(fd);
}

typedef struct t_task_count_s {
  const char *comm; /* NULL: every thread */
  int n;
  long tid; /* the last one counted */
} t_task_count_t;

static inline void t_task_count_one(long tid, void *arg) {
  t_task_count_t *c = (t_task_count_t *)arg;
  if (c->comm != NULL) {
    char path[64], name[32];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    if (!t_proc_read(path, name, sizeof name)) return;
    name[strcspn(name, "\n")] = '\0';
    if (strcmp(name, c->comm) != 0) return;
  }
  c->n++;
  c->tid = tid;
}

/* How many threads this process has (comm NULL) or has with that name; *tid (when not NULL)
 * gets one of them. */
static inline int t_tasks(const char *comm, long *tid) {
  t_task_count_t c = {comm, 0, -1};
  t_tasks_foreach(t_task_count_one, &c);
  if (tid != NULL) *tid = c.tid;
  return c.n;
}

static inline void *t_proc_nothing(void *arg) { return arg; }

/* How many threads this process has once the sanitizer's own exist: ThreadSanitizer starts a
 * background thread with the program's first pthread_create, so one thread is started and
 * joined first. Call it before anything could start the purge thread. */
static inline int t_tasks_base(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, t_proc_nothing, NULL) != 0) t_fail("pthread_create failed");
  pthread_join(t, NULL);
  return t_tasks(NULL, NULL);
}

#endif /* HAK_PROC_H */
