/* api_crash MODE: crashes one way, for tests/api/check_crash.py (HAKMEM_CRASH_REPORT).
 *
 *   null      reads address 0
 *   unmapped  reads a block of a SuperSlab hakmem has unmapped: a thread allocates 64 KiB
 *             blocks and exits, they are freed, hak_trim() unmaps the empty SuperSlabs
 *   invalid   frees an address inside a block (hakmem's fail-fast: SIGABRT)
 *
 * Prints `api_crash: survived` and exits 3 when the crash did not happen. */
#include <pthread.h>

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
  } else {
    fprintf(stderr, "usage: api_crash null|unmapped|invalid\n");
    return 2;
  }
  printf("api_crash: survived\n");
  return 3;
}
