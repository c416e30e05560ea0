/* Checked build: the expensive invariant walks (hak_assert_expensive) catch damaged allocator
 * state where it is checked: the TLS SLL at every spill and refill, a run's freelist at bind and
 * release, the remote queue at drain.
 *
 * Scenarios (each in a child process, see checked.h); the damage is done to hakmem's own state,
 * as a stray write or an allocator bug would:
 *   sll_count      the SLL count is one below the list's length: the next spill's walk fails
 *                  (hak_checked_sll_ok);
 *   sll_class      a block of another class is linked at the tail of the SLL: the next spill's
 *                  walk fails, though the spill itself never reaches the tail;
 *   run_count      a run's carved count is one too high (its freelist is one short of
 *                  carved - used): the run's release at thread exit fails
 *                  (hak_checked_run_ok);
 *   remote_loop    the head of a run's freelist is also put on its remote queue, linked to
 *                  itself: the owner's drain, which relinks each block onto the freelist, would
 *                  go round forever; it stops when it has counted more blocks than are out of
 *                  the run;
 *   remote_cycle   two queued blocks are linked into a cycle: the drain's count, checked per
 *                  block, passes the blocks out of the run (the drain only reads the chain, to
 *                  count it, before it splices it onto the freelist whole). */
#include "checked.h"

#define SLL_WALK "assertion failed: hak_checked_sll_ok"
#define RUN_WALK "assertion failed: hak_checked_run_ok"
#define DRAIN "remote drain returned more blocks than were out"

/* Allocates cap + 1 blocks of class c into c_blocks[], then frees the first one: the TLS SLL
 * holds at least one block and has room for one more. */
static void alloc_blocks(int c) {
  size_t n = t_size_of_class(c);
  hak_sll_t *s = &hak_tc->sll[c];
  T_CHECK(s->cap + 1 <= C_MAX_BLOCKS, "cap %u too large", s->cap);
  for (size_t i = 0; i <= s->cap; i++)
    T_CHECK((c_blocks[i] = hak_malloc(n)) != NULL, "hak_malloc(%zu) failed", n);
  c_free_to_sll_head(c_blocks[0], c);
}

/* Frees c_blocks[1..cap] until the TLS SLL of class c spills. */
static void free_until_spill(int c) {
  uint64_t spills = atomic_load(&hak_tc->stat.spills[c]);
  for (size_t i = 1; i <= hak_tc->sll[c].cap && atomic_load(&hak_tc->stat.spills[c]) == spills;
       i++)
    hak_free(c_blocks[i]);
  t_fail("no diagnostic from the spill (spills %llu -> %llu)", (unsigned long long)spills,
         (unsigned long long)atomic_load(&hak_tc->stat.spills[c]));
}

static void scenario_sll_count(void) {
  t_thread_cache();
  alloc_blocks(C_CLASS);
  hak_tc->sll[C_CLASS].room++; /* the count one below the length */
  free_until_spill(C_CLASS);
}

static void scenario_sll_class(void) {
  t_thread_cache();
  alloc_blocks(C_CLASS);
  void *other = hak_malloc(t_size_of_class(C_CLASS + 1));
  T_CHECK(other != NULL, "hak_malloc failed");
  hak_sll_t *s = &hak_tc->sll[C_CLASS];
  void *tail = s->head;
  while (hak_link_decode(tail) != NULL)
    tail = hak_link_decode(tail);
  hak_link_set(tail, t_base_of(other));
  hak_link_set(t_base_of(other), NULL);
  s->room--; /* the count one above the length */
  free_until_spill(C_CLASS);
}

static void *run_count_thread(void *arg) {
  (void)arg;
  t_thread_cache();
  c_block_on_freelist(C_CLASS);
  hak_slab_t *m = t_run_of(c_blocks[0]);
  T_CHECK(m->carved < m->capacity, "setup: the run is carved to its end");
  m->carved++;
  hak_free(c_blocks[0]);
  return NULL; /* the exit gives every block back and releases the run */
}

static void scenario_run_count(void) {
  hak_opt.ss_adopt = 0; /* nothing is published: the exit releases every empty run */
  t_run_thread(run_count_thread, NULL);
  t_fail("the damaged run was released without a diagnostic");
}

static void scenario_remote_loop(void) {
  t_thread_cache();
  uint8_t *p = c_block_on_freelist(C_CLASS);
  hak_slab_t *m = t_run_of(c_blocks[0]);
  T_CHECK(m->freelist == t_base_of(p) && atomic_load(&m->remote) == 0,
          "setup: %p is not the freelist's head, or the queue is not empty", (void *)p);
  hak_link_set(t_base_of(p), t_base_of(p));
  atomic_store(&m->remote, hak_rq_word(t_base_of(p), 0, 0));
  c_alloc_until_failure(t_size_of_class(C_CLASS));
}

static void scenario_remote_cycle(void) {
  t_thread_cache();
  size_t n = t_size_of_class(C_CLASS);
  void *keep = hak_malloc(n), *a = hak_malloc(n), *b = hak_malloc(n);
  T_CHECK(keep && a && b, "hak_malloc(%zu) failed", n);
  c_free_remote(a);
  c_free_remote(b); /* queue: b -> a */
  hak_link_set(t_base_of(a), t_base_of(b));
  c_alloc_until_failure(n);
}

static const r_scenario_t scenarios[] = {
    {"sll_count", scenario_sll_count, R_FAILS_FAST, SLL_WALK},
    {"sll_class", scenario_sll_class, R_FAILS_FAST, SLL_WALK},
    {"run_count", scenario_run_count, R_FAILS_FAST, RUN_WALK},
    {"remote_loop", scenario_remote_loop, R_FAILS_FAST, DRAIN},
    {"remote_cycle", scenario_remote_cycle, R_FAILS_FAST, DRAIN},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "checked_walks", scenarios, sizeof scenarios / sizeof scenarios[0]);
}
