/* Checked build: free blocks carry the fill pattern, verified when they are handed out again.
 *
 * Scenarios (each in a child process, see checked.h):
 *   pattern         what a program sees: a block freed and allocated again holds HAK_FREE_FILL
 *                   in every byte past its first word and 0 in that word (the link, cleared);
 *                   a freshly carved block holds the fill too; hak_config_t.checked is 1;
 *   sll_first_byte  a write to the first byte past the link of a block on the TLS SLL: the
 *                   next malloc of its class, which pops it, fails fast with "free block
 *                   modified after free";
 *   sll_last_byte   the same, for the block's last usable byte;
 *   mid_block       the same for a 4 KiB block of a mid class, written in its middle;
 *   freelist        a block spilled from the TLS SLL to its run's freelist is written to:
 *                   allocating until a refill takes it back fails fast;
 *   remote          a block freed by another thread (on its run's remote queue) is written to:
 *                   allocating until the owner drains and hands it out fails fast;
 *   released_run    a freelist block is written to and its run is released (thread exit): the
 *                   release walk finds it, though the block is never handed out again;
 *   large           a large block is freed into the mapping cache and written to (first page):
 *                   the next allocation that reuses the mapping fails fast. */
#include "checked.h"

#define UAF "free block modified after free (use after free?)"

static void scenario_pattern(void) {
  hak_config_t cfg;
  hak_config_get(&cfg);
  T_CHECK(cfg.checked == 1, "hak_config_t.checked is %d in the checked build", cfg.checked);
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  uint8_t *fresh = hak_malloc(n), *keep = hak_malloc(n);
  T_CHECK(fresh && keep, "hak_malloc(%zu) failed", n);
  for (size_t i = C_FILL_AT; i < n; i++)
    T_CHECK(fresh[i] == HAK_FREE_FILL, "fresh block %p: byte %zu is %#x, not the fill", fresh, i,
            fresh[i]);
  memset(fresh, 0x11, n);
  hak_free(fresh);
  uint8_t *again = hak_malloc(n);
  T_CHECK(again == fresh, "LIFO reuse gave %p, freed %p", again, fresh);
  T_CHECK(*c_link_word(again) == 0, "reused block %p: link word %#lx, not cleared", again,
          (unsigned long)*c_link_word(again));
  for (size_t i = C_FILL_AT; i < n; i++)
    T_CHECK(again[i] == HAK_FREE_FILL, "reused block %p: byte %zu is %#x, not the fill", again, i,
            again[i]);
  hak_free(again);
  hak_free(keep);
}

/* Frees a block onto the TLS SLL head, writes byte `at` of it, allocates its class again. */
static void sll_write_at(size_t n, size_t at) {
  t_thread_cache();
  int c = (int)hak_size_class(n);
  uint8_t *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  T_CHECK(at < hak_usable_size(p), "byte %zu is outside the block", at);
  c_free_to_sll_head(p, c);
  p[at] ^= 0x20; /* the use after free */
  void *q = hak_malloc(n);
  t_fail("the modified block was handed out again as %p (freed %p)", q, (void *)p);
}

static void scenario_sll_first_byte(void) { sll_write_at(t_size_of_class(C_CLASS), C_FILL_AT); }

static void scenario_sll_last_byte(void) {
  size_t n = t_size_of_class(C_CLASS);
  sll_write_at(n, n - 1);
}

static void scenario_mid_block(void) { sll_write_at(4096, 2048); }

static void scenario_freelist(void) {
  t_thread_cache();
  uint8_t *p = c_block_on_freelist(C_CLASS);
  p[C_FILL_AT + 3] = 0;
  c_alloc_until_failure(t_size_of_class(C_CLASS));
}

static void scenario_remote(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  uint8_t *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  c_free_remote(p);
  p[n / 2] = 1;
  c_alloc_until_failure(n);
}

/* The released_run scenario runs in a thread of its own, whose exit releases the run. */
static void *released_run_thread(void *arg) {
  (void)arg;
  t_thread_cache();
  uint8_t *p = c_block_on_freelist(C_CLASS);
  p[t_size_of_class(C_CLASS) - 1] ^= 1;
  hak_free(c_blocks[0]); /* the run's last block: nothing of it is out any more */
  return NULL;
}

static void scenario_released_run(void) {
  hak_opt.ss_adopt = 0; /* nothing is published: the exit releases every empty run */
  t_run_thread(released_run_thread, NULL);
  t_fail("the run holding the modified block was released without a diagnostic");
}

static void scenario_large(void) {
  size_t n = HAK_MID_MAX + 64 * 1024;
  uint8_t *p = hak_malloc(n);
  T_CHECK(p != NULL && hak_registry_kind((uintptr_t)p) == HAK_REGION_LARGE,
          "hak_malloc(%zu) = %p is not a large block", n, (void *)p);
  hak_free(p);
  p[100] = 7;
  void *q = hak_malloc(n);
  t_fail("the modified large mapping was handed out again as %p (freed %p)", q, (void *)p);
}

static const r_scenario_t scenarios[] = {
    {"pattern", scenario_pattern, R_SUCCEEDS, NULL},
    {"sll_first_byte", scenario_sll_first_byte, R_FAILS_FAST, UAF},
    {"sll_last_byte", scenario_sll_last_byte, R_FAILS_FAST, UAF},
    {"mid_block", scenario_mid_block, R_FAILS_FAST, UAF},
    {"freelist", scenario_freelist, R_FAILS_FAST, UAF},
    {"remote", scenario_remote, R_FAILS_FAST, UAF},
    {"released_run", scenario_released_run, R_FAILS_FAST, UAF},
    {"large", scenario_large, R_FAILS_FAST, UAF},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "checked_fill", scenarios, sizeof scenarios / sizeof scenarios[0]);
}
