/* Planted workloads for scripts/hakmem-triage: small programs with a known bug that shows up
 * in a known set of hakmem configurations, so the triage's results and decision can be checked.
 *
 * Not linked with hakmem: it runs under LD_PRELOAD and learns which build it runs under from
 * hak_config_get, looked up at run time (absent: not under hakmem at all).
 *
 *   workload pass          allocates, checks and frees; no bug anywhere
 *   workload every_mode    use-after-free write over a free block's list link, in every build
 *   workload hdrless_only  the same, only in headerless builds (TC2, TC3, checked)
 *   workload hint_only     the same, only where the hint box is compiled (TC3, checked)
 *   workload exit          exits with status 3 after some allocations
 *   workload hang          a thread waits forever after some allocations
 *
 * The first line of output names the configuration seen, so a caller can tell that the
 * library it meant to preload is the one that ran. */
#ifndef _GNU_SOURCE /* hak_test_target defines it; built by hand too */
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"

enum { BLOCK_SIZE = 200, KEEP = 64, ROUNDS = 4096 };

/* A non-canonical address: following it as a list link faults on every x86-64 machine. It is
 * 16-byte aligned, so the fault comes from the load and not from an alignment assertion. */
#define BAD_LINK ((uintptr_t)0xdead00000000dea0u)

/* Keeps blocks reachable so the compiler cannot drop a malloc/free pair. */
static void *volatile sink;

static int config_of(hak_config_t *cfg) {
  void (*get)(hak_config_t *) = (void (*)(hak_config_t *))dlsym(RTLD_DEFAULT, "hak_config_get");
  memset(cfg, 0, sizeof(*cfg));
  if (get == NULL) return 0;
  get(cfg);
  return 1;
}

/* Allocates, fills, checks and frees a few rounds of blocks of one class. */
static void churn(void) {
  void *keep[KEEP];
  for (int r = 0; r < 8; r++) {
    for (int i = 0; i < KEEP; i++) {
      keep[i] = malloc(BLOCK_SIZE);
      if (keep[i] == NULL) abort();
      memset(keep[i], i, BLOCK_SIZE);
    }
    for (int i = 0; i < KEEP; i++) {
      if (((unsigned char *)keep[i])[BLOCK_SIZE - 1] != (unsigned char)i) abort();
      free(keep[i]);
    }
  }
}

/* Frees a block, writes over its first word (where every hakmem build keeps the free-list
 * link), then allocates from the same class until the allocator follows the bad link. */
static void corrupt_free_link(void) {
  void *victim = malloc(BLOCK_SIZE);
  uintptr_t addr = (uintptr_t)victim;
  free(victim);
  fprintf(stderr, "workload: writing over the link of freed block %p\n", victim);
  *(volatile uintptr_t *)addr = BAD_LINK;
  for (int i = 0; i < ROUNDS; i++) {
    sink = malloc(BLOCK_SIZE);
    if (sink != NULL) memset(sink, 0x5a, BLOCK_SIZE);
  }
  fprintf(stderr, "workload: the bad link was never followed\n");
}

static void *wait_forever(void *unused) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
  (void)unused;
  pthread_mutex_lock(&lock);
  for (;;) pthread_cond_wait(&never, &lock);
  return NULL;
}

static int hang(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, wait_forever, NULL) != 0) return 4;
  fprintf(stderr, "workload: waiting for a thread that never finishes\n");
  pthread_join(t, NULL);
  return 0;
}

/* Whether a corruption mode plants its bug in this configuration; -1 for any other mode. */
static int plants(const char *mode, const hak_config_t *cfg) {
  if (strcmp(mode, "every_mode") == 0) return 1;
  if (strcmp(mode, "hdrless_only") == 0) return cfg->headerless;
  if (strcmp(mode, "hint_only") == 0) return cfg->tls_hint;
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s pass|every_mode|hdrless_only|hint_only|exit|hang\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  hak_config_t cfg;
  int under = config_of(&cfg);
  printf("workload %s: hakmem=%d headerless=%d tls_hint=%d\n", mode, under, cfg.headerless,
         cfg.tls_hint);
  fflush(stdout);
  churn();
  if (strcmp(mode, "pass") == 0) return 0;
  if (strcmp(mode, "exit") == 0) return 3;
  if (strcmp(mode, "hang") == 0) return hang();
  int plant = plants(mode, &cfg);
  if (plant < 0) {
    fprintf(stderr, "workload: unknown mode %s\n", mode);
    return 2;
  }
  if (plant) corrupt_free_link();
  return 0;
}
