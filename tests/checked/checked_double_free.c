/* Checked build: a second free of a free block fails fast with "double free", also in
 * headerless mode (the rule: a block whose bytes past the link are all the fill pattern and
 * whose link decodes to a valid link is free already), and legal programs are never flagged.
 *
 * Scenarios (each in a child process, see checked.h):
 *   sll        free, free: the block is on the TLS SLL;
 *   freelist   a block spilled to its run's freelist is freed again;
 *   mid        free, free of a 4 KiB block;
 *   remote     another thread frees a block twice (the block is on a remote queue);
 *   owner      another thread frees a block, then its owner frees it again;
 *   legal      what a correct program does must pass: blocks of every class freed without
 *              ever being written, filled with the fill byte over every byte, or holding a
 *              pointer to another block of their class in their first word (a list node)
 *              with the rest untouched; calloc, realloc and aligned blocks likewise. */
#include "checked.h"

#define DOUBLE "double free"

static void scenario_sll(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  void *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  c_free_to_sll_head(p, C_CLASS);
  hak_free(p);
}

static void scenario_freelist(void) {
  t_thread_cache();
  hak_free(c_block_on_freelist(C_CLASS));
}

static void scenario_mid(void) {
  void *p = hak_malloc(4096);
  T_CHECK(p != NULL, "hak_malloc(4096) failed");
  hak_free(p);
  hak_free(p);
}

static void *free_twice(void *p) {
  hak_free(p);
  hak_free(p);
  return NULL;
}

static void scenario_remote(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  void *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  t_run_thread(free_twice, p);
}

static void scenario_owner(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  void *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  c_free_remote(p);
  hak_free(p);
}

/* ---- legal programs ------------------------------------------------------------------------ */

#define ROUNDS 64

/* A round of blocks of request size n: allocated, shaped by `how`, freed (in two orders). */
static void legal_round(size_t n, int how) {
  static void *p[ROUNDS];
  for (int i = 0; i < ROUNDS; i++) {
    p[i] = hak_malloc(n);
    T_CHECK(p[i] != NULL, "hak_malloc(%zu) failed", n);
    if (how == 1)
      memset(p[i], HAK_FREE_FILL, n);
    if (how == 2 && i > 0)
      *(void **)p[i] = p[i - 1]; /* a list node; the rest of the block is not written */
  }
  for (int i = 0; i < ROUNDS; i += 2)
    hak_free(p[i]);
  for (int i = 1; i < ROUNDS; i += 2)
    hak_free(p[i]);
}

static void scenario_legal(void) {
  t_thread_cache();
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    for (int how = 0; how < 3; how++)
      for (int again = 0; again < 3; again++)
        legal_round(t_size_of_class(c), how);
  for (size_t n = 1; n <= 8192; n = n * 2 + 1) {
    void *z = hak_calloc(1, n);
    void *r = hak_realloc(hak_malloc(n), 3 * n);
    void *a = hak_memalign(64, n);
    T_CHECK(z && r && a, "calloc/realloc/memalign of %zu failed", n);
    hak_free(z);
    hak_free(hak_realloc(r, n / 3 + 1));
    hak_free(a);
  }
}

static const r_scenario_t scenarios[] = {
    {"sll", scenario_sll, R_FAILS_FAST, DOUBLE},
    {"freelist", scenario_freelist, R_FAILS_FAST, DOUBLE},
    {"mid", scenario_mid, R_FAILS_FAST, DOUBLE},
    {"remote", scenario_remote, R_FAILS_FAST, DOUBLE},
    {"owner", scenario_owner, R_FAILS_FAST, DOUBLE},
    {"legal", scenario_legal, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "checked_double_free", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
