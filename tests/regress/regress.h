/* Helpers shared by the regression tests of tests/regress/: one program per root-cause
 * candidate of the debug playbook (DESIGN §7), each proven to fail with its bug planted
 * (-DHAKMEM_PLANT_BUG=<name>; tests/planted/run_planted.sh runs the proof) and to pass
 * without it.
 *
 * A test program is a list of scenarios. Run without arguments, it runs every scenario in a
 * fresh child process (itself, re-executed with the scenario's name), so that
 *   - each scenario starts from an empty allocator and sees the same layout every time;
 *   - a scenario may end in a crash: a scenario that must fail fast passes only when the child
 *     dies by SIGABRT after printing hakmem's diagnostic (a line "hakmem: <diag>..."), and one
 *     that must succeed passes only when the child exits 0, so a SIGSEGV, an abort with the
 *     wrong diagnostic or a hang (the child has R_CHILD_SECONDS) is a failure either way.
 * Run with a scenario's name, it runs that scenario in this process (for a debugger).
 *
 * The tests link hakmem_core (no malloc override: libc keeps its own malloc) and reach hakmem
 * through the hak_* API and its internal headers. Checks detect damage by behaviour and box
 * state, never through hak_assert, which is compiled out of the plain builds the planted bugs
 * are proven in. Checks (T_CHECK), threads and the allocator's view of a block come from
 * tests/support; this header adds the scenario runner and what only these tests ask of a
 * SuperSlab. Nothing here allocates through hakmem. */
#ifndef HAKMEM_REGRESS_H
#define HAKMEM_REGRESS_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fast.h"
#include "hak_block.h"
#include "hak_child.h"
#include "hak_test.h"
#include "hakmem.h"

/* A scenario that runs longer hangs: SIGALRM ends it. The planted-bug proof builds with less
 * (HAKMEM_REGRESS_CHILD_SECONDS), since a planted bug may hang several scenarios. */
#ifndef R_CHILD_SECONDS
#define R_CHILD_SECONDS 60
#endif
#define R_SS_ALL_FREE 0xFFFFFFFFu

/* ---- scenarios ----------------------------------------------------------------------------- */

typedef enum r_expect_e {
  R_SUCCEEDS,  /* the child exits 0 */
  R_FAILS_FAST /* the child dies by SIGABRT after a "hakmem: <diag>" line */
} r_expect_t;

typedef struct r_scenario_s {
  const char *name;
  void (*run)(void);
  r_expect_t expect;
  const char *diag; /* R_FAILS_FAST: what follows "hakmem: " on the diagnostic line */
} r_scenario_t;

/* Settings every scenario starts from: no time-based decay (an empty SuperSlab stays mapped
 * until the test trims it), fixed TLS capacities, adoption on, no remote frees held back. */
static inline void r_settle_options(void) {
  hak_process_init();
  hak_opt.decay_ms = 3600000;
  hak_opt.ace_enabled = 0;
  hak_opt.ss_adopt = 1;
  hak_opt.must_adopt = 0;
  hak_opt.remote_batch = 1; /* a scenario's remote free reaches its run at once */
}

/* Reads the child's stderr to its end (every writer gone) into captured, or until the time is
 * up (a scenario's own fork children outlive a child ended by its alarm and keep the pipe
 * open). Returns false when the time ran out. */
static inline bool r_collect(int fd, char *captured, size_t size) {
  return t_read_until(fd, captured, size, R_CHILD_SECONDS + 5, NULL);
}

/* Runs this program again as `test name` in a child (its own process group) whose stderr goes
 * into captured; returns its wait status. The child gets R_CHILD_SECONDS and no core dump. */
static inline int r_spawn(const char *test, const char *name, char *captured, size_t size) {
  int fds[2];
  if (pipe(fds) != 0)
    t_fail("pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    t_fail("fork: %s", strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    t_child_stderr_to(fds);
    alarm(R_CHILD_SECONDS); /* survives exec */
    char *argv[] = {(char *)test, (char *)name, NULL};
    execv("/proc/self/exe", argv);
    fprintf(stderr, "cannot exec /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid); /* also here: whichever runs first, the group exists before the kill */
  close(fds[1]);
  if (!r_collect(fds[0], captured, size))
    kill(-pid, SIGKILL);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      t_fail("waitpid: %s", strerror(errno));
  kill(-pid, SIGKILL); /* what the scenario forked and left behind */
  return status;
}

/* Runs scenario s in a child and judges how it ended; returns 1 when as expected. */
static inline int r_run_child(const char *test, const r_scenario_t *s) {
  static char captured[64 * 1024];
  int status = r_spawn(test, s->name, captured, sizeof captured);
  char how[128], want[160];
  t_describe_status(status, how, sizeof how);
  int ok;
  if (s->expect == R_SUCCEEDS) {
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    snprintf(want, sizeof want, "exit status 0");
  } else {
    snprintf(want, sizeof want, "hakmem: %s", s->diag);
    ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && t_line_with(captured, want);
    snprintf(want, sizeof want, "SIGABRT after a line 'hakmem: %s...'", s->diag);
  }
  printf("--- %s/%s: child stderr ---\n%s--- end ---\n", test, s->name, captured);
  if (ok)
    printf("PASS: %s/%s: %s\n", test, s->name, how);
  else
    printf("FAIL: %s/%s: expected %s; the child %s\n", test, s->name, want, how);
  return ok;
}

/* main() of a regression test: every scenario in a child, or the one named in argv[1]. */
static inline int r_main(int argc, char **argv, const char *test, const r_scenario_t *list,
                         size_t n) {
  if (argc > 1) {
    for (size_t i = 0; i < n; i++) {
      if (strcmp(argv[1], list[i].name) != 0)
        continue;
      r_settle_options();
      list[i].run();
      if (list[i].expect == R_FAILS_FAST)
        t_fail("%s/%s: hakmem returned where it had to fail fast (%s)", test, list[i].name,
               list[i].diag);
      printf("%s/%s: OK\n", test, list[i].name);
      return 0;
    }
    fprintf(stderr, "%s: unknown scenario '%s'\n", test, argv[1]);
    return 2;
  }
  hak_config_t cfg;
  hak_config_get(&cfg);
  printf("%s: headerless %d, hint %d, asan %d, planted bug %d\n", test, cfg.headerless,
         cfg.tls_hint, cfg.asan, HAKMEM_PLANT_BUG);
  size_t passed = 0;
  for (size_t i = 0; i < n; i++) passed += (size_t)r_run_child(test, &list[i]);
  printf("%s: %zu of %zu scenarios passed\n", test, passed, n);
  return passed == n ? 0 : 1;
}

/* ---- the allocator's view of a block ----------------------------------------------------- */

/* The largest class: runs of half a SuperSlab, so a few blocks bind a whole SuperSlab. */
#define R_BIG_CLASS (HAK_NUM_CLASSES - 1)

/* True when every slab of ss is bound, to runs of class c owned by tc. */
static inline bool r_ss_all_mine(const hak_superslab_t *ss, int c, const hak_tcache_t *tc) {
  if (ss->free_mask != 0)
    return false;
  for (unsigned i = 0; i < HAK_SLABS_PER_SS; i++) {
    const hak_slab_t *m = &ss->slabs[i];
    if (m->state != HAK_SLAB_HEAD)
      continue;
    if (m->class_idx != c || hak_owner_of(m) != tc)
      return false;
  }
  return true;
}

/* True when the pages at p are mapped (msync fails with ENOMEM on unmapped memory). */
static inline bool r_mapped(const void *p) {
  errno = 0;
  return msync((void *)((uintptr_t)p & ~(uintptr_t)(HAK_PAGE_SIZE - 1)), HAK_PAGE_SIZE, MS_ASYNC) ==
         0;
}

/* Maps size fresh zeroed bytes exactly at the unmapped address p (another mapper taking a
 * range hakmem gave back); false when the kernel placed them elsewhere or refused. */
static inline bool r_map_at(void *p, size_t size) {
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
  void *q = mmap(p, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (q == MAP_FAILED)
    return false;
  if (q != p) {
    munmap(q, size);
    return false;
  }
  return true;
}

/* ---- pointer sets -------------------------------------------------------------------------- */

/* Fails unless the n blocks p[i] of size[i] bytes (user pointers) are pairwise disjoint. Sorts a
 * copy in scratch (n entries). */
static inline void r_check_disjoint(void *const *p, const size_t *size, size_t n, void **scratch,
                                    size_t *scratch_size) {
  for (size_t i = 0; i < n; i++)
    scratch[i] = p[i];
  /* Sort pointers and carry sizes along: a simple insertion sort keeps it allocation-free. */
  for (size_t i = 0; i < n; i++)
    scratch_size[i] = size[i];
  for (size_t i = 1; i < n; i++) {
    void *v = scratch[i];
    size_t s = scratch_size[i];
    size_t j = i;
    for (; j > 0 && (uintptr_t)scratch[j - 1] > (uintptr_t)v; j--) {
      scratch[j] = scratch[j - 1];
      scratch_size[j] = scratch_size[j - 1];
    }
    scratch[j] = v;
    scratch_size[j] = s;
  }
  for (size_t i = 1; i < n; i++)
    T_CHECK((uintptr_t)scratch[i - 1] + scratch_size[i - 1] <= (uintptr_t)scratch[i],
            "live blocks overlap: %p (%zu bytes) and %p", scratch[i - 1], scratch_size[i - 1],
            scratch[i]);
}

#endif /* HAKMEM_REGRESS_H */
