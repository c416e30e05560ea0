/* api_failfast MODE [SIZE]: hands hak_free a pointer hakmem must reject (DESIGN §5, DROPIN 21).
 * Run under expect_abort: passing means the process died by SIGABRT after a "hakmem: " line.
 * Returning from the bad free is a failure (exit 1 with a message), whatever happens later.
 *
 * Modes:
 *   stack     a pointer into the caller's stack frame
 *   interior  p + 16 for a live block of SIZE bytes (default 1024)
 *   one       p + 1 for a live block of SIZE bytes (default 64): unaligned, one byte off
 *   far       p + 1 GiB for a live block of SIZE bytes (default 64): possibly unmapped
 *   mmap      the start of a page mapped by the test itself (a foreign allocator's block)
 *   double    free the same block of SIZE bytes (default 32) twice */
#include <stdint.h>
#include <sys/mman.h>

#include "hak_test.h"

/* Keeps the compiler from reasoning about the pointer (it must not see a stack address). */
static void *launder(void *p) {
  void *volatile v = p;
  return v;
}

static size_t size_arg(int argc, char **argv, size_t dflt) {
  return argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : dflt;
}

static unsigned char *live_block(size_t size) {
  unsigned char *p = T_MALLOC(size);
  t_check(p != NULL, "malloc(%zu) returned NULL", size);
  t_check(hak_owns(p), "hak_owns(malloc(%zu)) is false", size);
  t_fill(p, size, 1);
  /* A few neighbours so the block is not alone in its slab or mapping. */
  for (int i = 0; i < 4; i++)
    t_check(T_MALLOC(size) != NULL, "malloc(%zu) returned NULL", size);
  return p;
}

static void bad_free(const char *what, void *p) {
  fprintf(stderr, "api_failfast: freeing %s (%p); hakmem must abort\n", what, p);
  T_FREE(launder(p));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: api_failfast stack|interior|one|far|mmap|double [SIZE]\n");
    return 2;
  }
  const char *mode = argv[1];
  /* Make sure hakmem is initialised and owns memory before the bad free. */
  void *warm = T_MALLOC(48);
  t_check(warm != NULL, "malloc(48) returned NULL");

  if (strcmp(mode, "stack") == 0) {
    _Alignas(64) unsigned char frame[256];
    memset(frame, 0x5a, sizeof frame);
    bad_free("a stack address", frame + 64);
  } else if (strcmp(mode, "interior") == 0) {
    size_t size = size_arg(argc, argv, 1024);
    t_check(size > 16, "interior needs SIZE > 16");
    bad_free("an interior pointer (block + 16)", live_block(size) + 16);
  } else if (strcmp(mode, "one") == 0) {
    bad_free("block + 1", live_block(size_arg(argc, argv, 64)) + 1);
  } else if (strcmp(mode, "far") == 0) {
    unsigned char *p = live_block(size_arg(argc, argv, 64));
    bad_free("block + 1 GiB", (void *)((uintptr_t)p + ((uintptr_t)1 << 30)));
  } else if (strcmp(mode, "mmap") == 0) {
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t_check(page != MAP_FAILED, "mmap of one page failed");
    memset(page, 0, 4096);
    bad_free("a page from mmap", page);
  } else if (strcmp(mode, "double") == 0) {
    unsigned char *p = live_block(size_arg(argc, argv, 32));
    T_FREE(p);
    bad_free("a block already freed", p);
  } else {
    fprintf(stderr, "api_failfast: unknown mode '%s'\n", mode);
    return 2;
  }
  t_fail("hak_free accepted an invalid pointer in mode '%s' and returned", mode);
}
