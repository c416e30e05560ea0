/* Regression test, root cause 2 of the playbook: TLS SLL normalize mismatch (box: TLS SLL).
 *
 * Root cause: a pointer of the wrong kind reaches the TLS SLL: free pushes the user pointer
 * instead of the base pointer (in header mode user == base + 8), so the list no longer holds
 * what malloc expects to pop. The next malloc of that class "converts" the user pointer again:
 * it writes a header over the first user word and hands out base + 16, a pointer 8 bytes off
 * the 16-byte grid that runs 8 bytes into the next block.
 *
 * Scenarios (each in a fresh child process, see regress.h):
 *   lifo   for every tiny class and a few mid classes: a block freed between two live
 *          neighbours is at the head of the thread's TLS SLL as its base pointer, the list
 *          validates (count == length, base alignment, no cycle), and the next malloc of the
 *          class returns the very same user pointer (LIFO), 16-aligned, owned, with the
 *          class's usable size, while the neighbours' contents stay intact;
 *   churn  two threads each run a seeded malloc/free sequence over tiny and mid sizes (with
 *          spills and refills); every block is 16-aligned, the exact start of a block of a run
 *          of its class, owned, big enough; live blocks never overlap and keep their contents;
 *          every TLS SLL validates at the end.
 * Catches: HAKMEM_PLANT_BUG=sll_userptr (header mode). Headerless builds have base == user, so
 * the bug cannot occur there; the same behaviour is checked all the same. */
#include "regress.h"

/* ---- lifo --------------------------------------------------------------------------------- */

#define MAX_EXTRA 1100

static void *extra[MAX_EXTRA];

/* Keeps allocating blocks of class c (into extra[]) until a push onto its SLL will not spill. */
static size_t make_room(int c, size_t n) {
  hak_sll_t *s = &hak_tc->sll[c];
  size_t k = 0;
  while (hak_sll_count(s) + 1 > s->cap) {
    T_CHECK(k < MAX_EXTRA, "class %d: SLL count %u never went below cap %u", c, hak_sll_count(s),
            s->cap);
    extra[k] = hak_malloc(n);
    T_CHECK(extra[k] != NULL, "hak_malloc(%zu) failed", n);
    k++;
  }
  return k;
}

static void lifo_class(int c) {
  size_t n = t_size_of_class(c);
  uint8_t *left = hak_malloc(n), *p = hak_malloc(n), *right = hak_malloc(n);
  T_CHECK(left && p && right, "hak_malloc(%zu) failed", n);
  t_fill(left, n, 1);
  t_fill(p, n, 2);
  t_fill(right, n, 3);
  size_t k = make_room(c, n);
  hak_sll_t *s = &hak_tc->sll[c];
  uint32_t count = hak_sll_count(s);

  hak_free(p);
  T_CHECK(hak_sll_count(s) == count + 1, "class %d: SLL count %u after a free, was %u", c,
          hak_sll_count(s), count);
  T_CHECK(s->head == t_base_of(p),
          "class %d: SLL head is %p after freeing user pointer %p; its base pointer is %p", c,
          s->head, (void *)p, t_base_of(p));
  T_CHECK(hak_sll_validate(s), "class %d: the TLS SLL does not validate after a free", c);
  t_verify(left, n, 1);
  t_verify(right, n, 3);

  uint8_t *q = hak_malloc(n);
  T_CHECK(q == p, "class %d: malloc after free returned %p, the block just freed is %p", c,
          (void *)q, (void *)p);
  T_CHECK(t_aligned(q, 16), "class %d: %p is not 16-aligned", c, (void *)q);
  T_CHECK(hak_owns(q) == 1, "class %d: hak_owns(%p) is 0 for a live block", c, (void *)q);
  T_CHECK(hak_usable_size(q) == n, "class %d: usable size %zu, expected %zu", c, hak_usable_size(q),
          n);
  T_CHECK(hak_sll_count(s) == count, "class %d: SLL count %u after the malloc, expected %u", c,
          hak_sll_count(s), count);
  t_fill(q, n, 4);
  t_verify(left, n, 1);
  t_verify(right, n, 3);
  t_verify(q, n, 4);

  hak_free(q);
  hak_free(left);
  hak_free(right);
  for (size_t i = 0; i < k; i++)
    hak_free(extra[i]);
  T_CHECK(hak_sll_validate(s), "class %d: the TLS SLL does not validate", c);
}

static void scenario_lifo(void) {
  t_thread_cache();
  for (int c = 0; c < TINY_NUM_CLASSES; c++)
    lifo_class(c);
  for (int c = TINY_NUM_CLASSES; c < HAK_NUM_CLASSES; c += 5)
    lifo_class(c);
}

/* ---- churn -------------------------------------------------------------------------------- */

#define SLOTS 192
#define OPS 6000

typedef struct churn_s {
  uint64_t seed;
  void *p[SLOTS];
  size_t n[SLOTS];
  void *sorted[SLOTS];
  size_t sorted_n[SLOTS];
} churn_t;

static churn_t churns[2];

static size_t churn_size(t_rng_t *r) {
  switch (t_rng_below(r, 4)) {
  case 0:
    return t_rng_range(r, 1, 64);
  case 1:
    return t_rng_range(r, 65, 1024);
  case 2:
    return t_rng_range(r, 1, 256);
  default:
    return t_rng_range(r, 1025, 8192);
  }
}

static void check_block(void *p, size_t n) {
  T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
  T_CHECK(t_aligned(p, 16), "hak_malloc(%zu) returned %p, not 16-aligned", n, p);
  hak_slab_t *m = t_run_of(p);
  T_CHECK(m->class_idx == hak_size_class(n), "hak_malloc(%zu) = %p lies in a run of class %u", n, p,
          m->class_idx);
  T_CHECK(t_block_index(m, t_base_of(p)) >= 0, "hak_malloc(%zu) = %p is not the start of a block",
          n, p);
  T_CHECK(hak_owns(p) == 1, "hak_owns(%p) is 0 for a live block", p);
  T_CHECK(hak_usable_size(p) >= n, "usable size %zu of %p < %zu", hak_usable_size(p), p, n);
}

static void *churn_thread(void *arg) {
  churn_t *ch = arg;
  t_rng_t r;
  t_rng_seed(&r, ch->seed);
  for (int op = 0; op < OPS; op++) {
    size_t i = (size_t)t_rng_below(&r, SLOTS);
    if (ch->p[i] != NULL) {
      t_verify(ch->p[i], ch->n[i], i);
      hak_free(ch->p[i]);
      ch->p[i] = NULL;
    } else {
      size_t n = churn_size(&r);
      ch->p[i] = hak_malloc(n);
      ch->n[i] = n;
      check_block(ch->p[i], n);
      t_fill(ch->p[i], n, i);
    }
    if (op % 500 == 499) {
      size_t k = 0;
      for (size_t j = 0; j < SLOTS; j++)
        if (ch->p[j] != NULL) {
          ch->sorted[k] = ch->p[j];
          ch->sorted_n[k++] = ch->n[j];
        }
      r_check_disjoint(ch->sorted, ch->sorted_n, k, ch->sorted, ch->sorted_n);
    }
  }
  for (size_t i = 0; i < SLOTS; i++) {
    if (ch->p[i] == NULL)
      continue;
    t_verify(ch->p[i], ch->n[i], i);
    hak_free(ch->p[i]);
    ch->p[i] = NULL;
  }
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    T_CHECK(hak_sll_validate(&hak_tc->sll[c]), "class %d: the TLS SLL does not validate", c);
  return NULL;
}

static void scenario_churn(void) {
  pthread_t t;
  churns[0].seed = 11;
  churns[1].seed = 12;
  T_CHECK(pthread_create(&t, NULL, churn_thread, &churns[1]) == 0, "pthread_create failed");
  churn_thread(&churns[0]);
  T_CHECK(pthread_join(t, NULL) == 0, "pthread_join failed");
}

static const r_scenario_t scenarios[] = {
    {"lifo", scenario_lifo, R_SUCCEEDS, NULL},
    {"churn", scenario_churn, R_SUCCEEDS, NULL},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_sll_userptr", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
