/* The OS layer: the only file that makes system calls (mmap, munmap, madvise, write, futex).
 *
 * Every mapping hakmem makes passes through here, so bytes_mapped and bytes_purged count them
 * all. No function here takes a lock, and none allocates but hak_os_thread_start (inside
 * pthread_create). */
#define _GNU_SOURCE /* REG_* of ucontext_t, mremap */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#if HAKMEM_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* ASan keeps its shadow of an address range across munmap: blocks hakmem poisoned in a
 * SuperSlab would still read as poisoned when the kernel hands the same addresses out again
 * (as a large block, say). Every range leaves hakmem unpoisoned. */
static void unpoison(void *p, size_t size) {
#if HAKMEM_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
  (void)p;
  (void)size;
}

void *hak_os_map(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return NULL;
  hak_gstat_add(HAK_G_BYTES_MAPPED, (int64_t)size);
  return p;
}

/* Maps size bytes aligned to align by over-mapping and trimming both ends. */
void *hak_os_map_aligned(size_t size, size_t align) {
  if (size + align < size) return NULL;
  size_t over = size + align - HAK_PAGE_SIZE;
  uint8_t *raw = mmap(NULL, over, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  size_t head = (size_t)(p - raw);
  size_t tail = over - head - size;
  if (head) munmap(raw, head);
  if (tail) munmap(p + size, tail);
  hak_gstat_add(HAK_G_BYTES_MAPPED, (int64_t)size);
  return p;
}

bool hak_os_move(void *from, size_t size, void *to) {
  unpoison(from, size);
  int saved = errno;
  void *moved = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  errno = saved;
  if (moved == MAP_FAILED) return false;
  hak_gstat_add(HAK_G_BYTES_MAPPED, -(int64_t)size); /* to's pages were counted, from's go */
  return true;
}

void hak_os_unmap(void *p, size_t size) {
  int saved = errno;
  unpoison(p, size);
  munmap(p, size);
  errno = saved;
  hak_gstat_add(HAK_G_BYTES_MAPPED, -(int64_t)size);
  hak_gstat_add(HAK_G_BYTES_PURGED, (int64_t)size);
}

void hak_os_purge(void *p, size_t size) {
  int saved = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = saved;
  hak_gstat_add(HAK_G_BYTES_PURGED, (int64_t)size);
}

uint64_t hak_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hak_os_write(int fd, const void *buf, size_t n) {
  int saved = errno;
  const char *s = buf;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      break;
    }
    s += w;
    n -= (size_t)w;
  }
  errno = saved;
}

#include <sys/resource.h>

uint64_t hak_os_peak_rss_kb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (uint64_t)ru.ru_maxrss;
}

#include <fcntl.h>

/* A private copy of stderr, for output at exit: some programs close fd 2 before exiting. */
int hak_os_dup_stderr(void) {
  int saved = errno;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  errno = saved;
  return fd < 0 ? 2 : fd;
}

/* Transparent huge pages for a fresh mapping: asked for (huge) or refused, so a 2 MiB region
 * touched in one place does not cost 2 MiB of RSS under THP "always" (HAKMEM_THP). */
void hak_os_thp(void *p, size_t size, bool huge) {
  int saved = errno;
  madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  errno = saved;
}

/* ---- files (the allocation trace) ---------------------------------------------------------- */

#include <signal.h>

/* Opens path read-write, created if missing, emptied when truncate; -1 on failure. */
int hak_os_open(const char *path, bool truncate) {
  int saved = errno;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  errno = saved;
  return fd;
}

void hak_os_close(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

/* Reads exactly n bytes at off; false on a short read or an error. */
bool hak_os_pread(int fd, void *buf, size_t n, uint64_t off) {
  int saved = errno;
  ssize_t r = pread(fd, buf, n, (off_t)off);
  errno = saved;
  return r == (ssize_t)n;
}

bool hak_os_truncate(int fd, uint64_t size) {
  int saved = errno;
  int r = ftruncate(fd, (off_t)size);
  errno = saved;
  return r == 0;
}

/* A shared mapping of size bytes of the file at off (page aligned): stores reach the page cache
 * at once and survive the process, however it ends. Not counted in bytes_mapped. */
void *hak_os_map_file(int fd, uint64_t off, size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

void hak_os_unmap_file(void *p, size_t size) {
  int saved = errno;
  munmap(p, size);
  errno = saved;
}

int hak_os_getpid(void) { return (int)getpid(); }

/* True when a process with this pid exists (ours to signal or not). */
bool hak_os_alive(int pid) {
  int saved = errno;
  bool alive = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
  errno = saved;
  return alive;
}

/* Bits that differ between processes and runs, for the checked build's link secret: two clocks
 * and the process id (the caller adds addresses, which ASLR varies). */
uint64_t hak_os_entropy(void) {
  struct timespec mono, real;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  uint64_t t = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
  return t ^ ((uint64_t)real.tv_nsec << 20) ^ ((uint64_t)real.tv_sec << 40) ^
         ((uint64_t)getpid() << 32);
}

/* ---- fatal signals (the crash report, crash.c) --------------------------------------------- */

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>

static void (*fatal_report)(const hak_fault_t *f);

static void fault_regs(hak_fault_t *f, const void *uctx) {
#if defined(__x86_64__)
  static const int order[16] = {REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI,
                                REG_RBP, REG_RSP, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                REG_R12, REG_R13, REG_R14, REG_R15};
  const ucontext_t *uc = uctx;
  for (int i = 0; i < 16; i++) f->regs[i] = (uint64_t)uc->uc_mcontext.gregs[order[i]];
  f->ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#else
  (void)f;
  (void)uctx;
#endif
}

/* The thread that owns the report, 0 while none does. Only the first fatal signal reports:
 * another thread's fatal signal meanwhile waits in its handler for the reporter to end the
 * process (its own report would be mixed into the first, and the default action would end the
 * process in the middle of the first report); a fatal signal in the reporting thread itself
 * (its report faulted) ends the process at once. */
static _Atomic(int) fatal_owner;

/* The default action for sig, raised at this thread: blocked while the handler runs, it is
 * delivered as the handler returns, before a faulting instruction would run again (so the
 * process ends even when the fault would not recur), with the interrupted context in the core. */
static void fatal_default(int sig, int tid) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
  syscall(SYS_tgkill, getpid(), tid, sig);
}

static void fatal_handler(int sig, siginfo_t *si, void *uctx) {
  int saved = errno;
  int tid = (int)syscall(SYS_gettid), owner = 0;
  if (!atomic_compare_exchange_strong(&fatal_owner, &owner, tid)) {
    if (owner != tid)
      for (;;) pause(); /* the reporting thread ends the process */
    fatal_default(sig, tid);
    errno = saved;
    return;
  }
  hak_fault_t f = {.sig = sig, .code = si->si_code, .from_kernel = si->si_code > 0, .tid = tid};
  if (sig != SIGABRT) f.addr = (uintptr_t)si->si_addr;
  fault_regs(&f, uctx);
  fatal_report(&f);
  fatal_default(sig, tid);
  errno = saved;
}

void hak_os_catch_fatal(void (*report)(const hak_fault_t *f)) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
  fatal_report = report;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = fatal_handler;
  sa.sa_flags = SA_SIGINFO;
  /* Every fatal signal blocked while one is handled: a second one in the reporting thread is
   * then fatal at once (the kernel forces a synchronous fault through), never a nested report. */
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&sa.sa_mask, sigs[i]);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

bool hak_os_chdir(const char *path) { return chdir(path) == 0; }

/* A raw fork: glibc's fork() would run pthread_atfork handlers, hakmem's among them, which take
 * locks the crashing thread may hold. */
int hak_os_run_wait(const char *path, char *const argv[], char *const envp[]) {
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  long pid = syscall(SYS_fork);
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    execve(path, argv, envp);
    syscall(SYS_exit_group, 127);
  }
  int status = 0;
  while (syscall(SYS_wait4, pid, &status, 0, NULL) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void hak_os_yield(void) { sched_yield(); }

/* ---- the purge thread (purge.c) ------------------------------------------------------------ */

#include <linux/futex.h>
#include <pthread.h>

/* Starts fn on a detached thread that blocks every signal from its first instruction (it
 * inherits the mask set here around the call), so a process-directed signal never lands on
 * it, named name (ps, /proc/self/task/TID/comm; 15 bytes at most) before this returns. False
 * when the thread could not be made. pthread_create may allocate. */
bool hak_os_thread_start(void *(*fn)(void *), const char *name) {
  int saved = errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  bool ok = pthread_attr_init(&attr) == 0;
  if (ok) {
    pthread_t t;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ok = pthread_create(&t, &attr, fn, NULL) == 0;
    if (ok) pthread_setname_np(t, name);
    pthread_attr_destroy(&attr);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return ok;
}

/* Sleeps while *word == val; may return early (a wake-up, a spurious return): callers loop. */
void hak_os_futex_wait(_Atomic(uint32_t) *word, uint32_t val) {
  int saved = errno;
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
  errno = saved;
}

void hak_os_futex_wake(_Atomic(uint32_t) *word) {
  int saved = errno;
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  errno = saved;
}

int hak_os_gettid(void) { return (int)syscall(SYS_gettid); }

/* Threads of this process still running: /proc/self/stat's num_threads (field 20), less the
 * main thread when it has exited and waits as a zombie for the others (the state, field 3,
 * is the main thread's); 0 when /proc cannot be read. */
int hak_os_live_threads(void) {
  int saved = errno;
  char buf[512];
  int n = 0;
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  errno = saved;
  if (len <= 0) return 0;
  buf[len] = '\0';
  const char *p = strrchr(buf, ')'); /* the end of the command name, which may hold spaces */
  if (p == NULL || p[1] != ' ') return 0;
  char state = p[2];
  for (int field = 2; *p != '\0'; p++) {
    if (*p != ' ' || ++field != 20) continue;
    for (p++; *p >= '0' && *p <= '9'; p++) n = n * 10 + (*p - '0');
    return n - (state == 'Z');
  }
  return 0;
}

void hak_os_sleep_ms(uint64_t ms) {
  int saved = errno;
  struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) continue;
  errno = saved;
}
