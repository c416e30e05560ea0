/* Checked build: every link stored in a free block is encoded with the per-process secret and
 * the block's address, and validated when a list follows it.
 *
 * Scenarios (each in a child process, see checked.h):
 *   encoded       two blocks freed one after the other: the second one's link word is not the
 *                 first one's address, yet it decodes to it; a NULL link is not stored as 0;
 *   sll_pointer   a freed block on the TLS SLL gets a pointer to a live block written over its
 *                 first word (a dangling "next" pointer updated after the free): the malloc
 *                 that pops it fails fast with "corrupt free-list link";
 *   sll_zero      the same with 0 written (a dangling pointer cleared after the free);
 *   freelist      the first word of a block on its run's freelist is overwritten: the refill
 *                 that follows the freelist fails fast;
 *   remote        the first word of a block on a remote queue is overwritten: the owner's
 *                 drain fails fast. */
#include "checked.h"

#define LINK "corrupt free-list link"

static void scenario_encoded(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  uint8_t *keep = hak_malloc(n), *a = hak_malloc(n), *b = hak_malloc(n);
  T_CHECK(keep && a && b, "hak_malloc(%zu) failed", n);
  hak_sll_t *s = &hak_tc->sll[C_CLASS];
  while (s->head != NULL) /* an empty list first: a's link is NULL */
    T_CHECK(hak_malloc(n) != NULL, "hak_malloc(%zu) failed", n);
  c_free_to_sll_head(a, C_CLASS);
  c_free_to_sll_head(b, C_CLASS);
  T_CHECK(*c_link_word(a) != 0, "a NULL link is stored as 0");
  T_CHECK(hak_link_decode(t_base_of(a)) == NULL, "a's link decodes to %p, not NULL",
          hak_link_decode(t_base_of(a)));
  T_CHECK(*c_link_word(b) != (uintptr_t)t_base_of(a), "b's link word is a's address as it is");
  T_CHECK(hak_link_decode(t_base_of(b)) == t_base_of(a), "b's link decodes to %p, not a's base %p",
          hak_link_decode(t_base_of(b)), t_base_of(a));
  T_CHECK(hak_link_get(t_base_of(b)) == t_base_of(a), "hak_link_get disagrees with the decoding");
  T_CHECK(hak_malloc(n) == b && hak_malloc(n) == a, "LIFO order broken");
}

/* A block at the head of the TLS SLL gets its link word overwritten (with a live block's
 * address, or 0); the pop that follows it must fail fast. */
static void overwrite_sll_link(bool with_pointer) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  void *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  c_free_to_sll_head(p, C_CLASS);
  *c_link_word(p) = with_pointer ? (uintptr_t)keep : 0;
  void *q = hak_malloc(n);
  t_fail("the block with the %s link was popped: malloc returned %p",
         with_pointer ? "overwritten" : "cleared", q);
}

static void scenario_sll_pointer(void) { overwrite_sll_link(true); }

static void scenario_sll_zero(void) { overwrite_sll_link(false); }

static void scenario_freelist(void) {
  t_thread_cache();
  uint8_t *p = c_block_on_freelist(C_CLASS);
  *c_link_word(p) = (uintptr_t)c_blocks[0];
  c_alloc_until_failure(t_size_of_class(C_CLASS));
}

static void scenario_remote(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  void *keep = hak_malloc(n), *p = hak_malloc(n);
  T_CHECK(keep && p, "hak_malloc(%zu) failed", n);
  c_free_remote(p);
  *c_link_word(p) ^= 0x100; /* one bit flipped */
  c_alloc_until_failure(n);
}

static const r_scenario_t scenarios[] = {
    {"encoded", scenario_encoded, R_SUCCEEDS, NULL},
    {"sll_pointer", scenario_sll_pointer, R_FAILS_FAST, LINK},
    {"sll_zero", scenario_sll_zero, R_FAILS_FAST, LINK},
    {"freelist", scenario_freelist, R_FAILS_FAST, LINK},
    {"remote", scenario_remote, R_FAILS_FAST, LINK},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "checked_link", scenarios, sizeof scenarios / sizeof scenarios[0]);
}
