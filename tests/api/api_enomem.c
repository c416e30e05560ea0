/* Out of memory under an address-space limit (setrlimit RLIMIT_AS, what `ulimit -v` sets):
 * every allocation entry point fails cleanly once the limit is reached, never crashes, and
 * the allocator works again once memory is freed.
 *   - large requests beyond the limit: malloc, calloc, realloc, aligned_alloc, memalign and
 *     valloc return NULL with errno ENOMEM, posix_memalign returns ENOMEM and leaves its
 *     pointer alone; realloc's old block stays intact and usable;
 *   - small requests until the limit: the first NULL comes with errno ENOMEM, after blocks
 *     that all still hold what was written into them;
 *   - after freeing them, small and large requests succeed again.
 * Registered only without ASan and TSan (their shadow memory needs the address space the limit
 * takes away). */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "hak_test.h"

#define MIB ((size_t)1 << 20)
#define HEADROOM (256 * MIB)

static size_t vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  t_check(f != NULL, "open /proc/self/statm");
  unsigned long pages = 0;
  t_check(fscanf(f, "%lu", &pages) == 1, "read /proc/self/statm");
  fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void expect_enomem(void *p, const char *what) {
  int e = errno;
  t_check(p == NULL, "%s beyond the limit returned %p", what, p);
  t_check(e == ENOMEM, "%s beyond the limit: errno %d, not ENOMEM", what, e);
}

int main(void) {
  T_FREE(T_MALLOC(16)); /* the allocator set up before the limit */
  size_t limit = vm_size() + HEADROOM;
  struct rlimit rl = {limit, limit};
  t_check(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS, %zu): %s", limit,
          strerror(errno));
  size_t huge = 2 * HEADROOM;
  errno = 0;
  expect_enomem(T_MALLOC(huge), "malloc");
  errno = 0;
  expect_enomem(T_CALLOC(1, huge), "calloc");
  errno = 0;
  expect_enomem(T_ALIGNED_ALLOC(4096, huge), "aligned_alloc");
  errno = 0;
  expect_enomem(T_MEMALIGN(1 << 21, huge), "memalign");
  errno = 0;
  expect_enomem(T_VALLOC(huge), "valloc");
  void *untouched = (void *)&rl;
  t_check(T_POSIX_MEMALIGN(&untouched, 64, huge) == ENOMEM, "posix_memalign did not fail");
  t_check(untouched == (void *)&rl, "posix_memalign changed its pointer on failure");
  char *old = T_MALLOC(1000);
  t_check(old != NULL, "malloc(1000) under the limit");
  memset(old, 0x6b, 1000);
  errno = 0;
  expect_enomem(T_REALLOC(old, huge), "realloc");
  for (int i = 0; i < 1000; i++)
    t_check(old[i] == 0x6b, "realloc's failure changed byte %d of the old block", i);
  T_FREE(old);
  /* Small blocks until the limit. */
  size_t cap = HEADROOM / 4096 * 2, n = 0;
  char **blocks = T_MALLOC(cap * sizeof(char *));
  t_check(blocks != NULL, "bookkeeping");
  char *p;
  for (;;) {
    errno = 0;
    p = T_MALLOC(4000);
    if (p == NULL) break;
    t_check(n < cap, "%zu blocks of 4000 bytes under a limit of %zu MiB of headroom", n,
            HEADROOM / MIB);
    memset(p, (int)(n & 0x7f), 4000);
    blocks[n++] = p;
  }
  t_check(errno == ENOMEM, "the first failing small malloc: errno %d, not ENOMEM", errno);
  t_check(n > 1000, "only %zu blocks before the limit", n);
  for (size_t i = 0; i < n; i++) {
    t_check(blocks[i][0] == (char)(i & 0x7f) && blocks[i][3999] == (char)(i & 0x7f),
            "block %zu lost its contents", i);
    T_FREE(blocks[i]);
  }
  T_FREE(blocks);
  hak_trim();
  /* Memory again. */
  void *again = T_MALLOC(4000), *big = T_MALLOC(HEADROOM / 4);
  t_check(again != NULL && big != NULL, "no memory after the frees (small %p, large %p)",
          again, big);
  T_FREE(again);
  T_FREE(big);
  printf("api_enomem ok: %zu blocks of 4000 bytes before ENOMEM\n", n);
  return 0;
}
