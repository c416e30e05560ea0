/* TLS SLL (src/tiny/tls_sll.h): the per-thread, per-class LIFO of free blocks.
 *
 * - after any mix of allocations and frees, hak_tc->sll[c] passes hak_sll_validate (count ==
 *   length, no cycle, base alignment, count <= cap), checked after every single operation;
 * - a free that pushes the list above its capacity spills it down to cap / 2, so the count
 *   seen after any free never exceeds cap;
 * - every block on the list is a carved block of a run of class c owned by this thread;
 * - hak_sll_validate itself rejects a wrong count, a cycle, a misaligned node and a list over
 *   its capacity (so the checks above can fail). */
#include "unit.h"

#define MAX_BLOCKS 3000

static void *blocks[MAX_BLOCKS];

/* Walks the list: every node is a base of a carved block of a run of class c that this thread
 * owns. Returns the length. */
static uint32_t check_sll_ownership(int c) {
  hak_sll_t *s = &hak_tc->sll[c];
  uint32_t n = 0;
  for (void *b = s->head; b != NULL; b = hak_link_get(b)) {
    T_CHECK(++n <= hak_sll_count(s), "class %d: list longer than its count %u", c,
            hak_sll_count(s));
    T_CHECK(hak_registry_kind((uintptr_t)b) == HAK_REGION_SS,
            "class %d: node %p not in a SuperSlab", c, b);
    hak_superslab_t *ss = hak_ss_of(b);
    T_CHECK(ss->magic == (HAK_SS_MAGIC ^ (uintptr_t)ss), "class %d: node %p: bad SuperSlab magic",
            c, b);
    hak_slab_t *m = t_run_of(b);
    T_CHECK(m->state == HAK_SLAB_HEAD, "class %d: node %p: run state %d", c, b, m->state);
    T_CHECK(m->class_idx == c, "class %d: node %p belongs to a run of class %d", c, b,
            m->class_idx);
    T_CHECK(hak_owner_of(m) == hak_tc, "class %d: node %p belongs to a run owned by %p, not %p", c,
            b, (void *)hak_owner_of(m), (void *)hak_tc);
    long idx = t_block_index(m, b);
    T_CHECK(idx >= 0 && (uint32_t)idx < m->carved, "class %d: node %p is not a carved block", c, b);
#if !HAKMEM_TINY_HEADERLESS
    /* Freed blocks carry the free header, freshly carved ones whatever the slab held; never
     * the in-use header, which would let a double free through. */
    T_CHECK(*(uint64_t *)b != HAK_HDR_ALLOC(c), "class %d: node %p has the in-use header", c, b);
#endif
  }
  T_CHECK(n == hak_sll_count(s), "class %d: length %u, count %u", c, n, hak_sll_count(s));
  return n;
}

static void check_valid(int c, const char *when, size_t i) {
  hak_sll_t *s = &hak_tc->sll[c];
  T_CHECK(hak_sll_validate(s), "class %d: invalid SLL %s %zu (count %u cap %u)", c, when, i,
          hak_sll_count(s), s->cap);
}

/* Allocates n blocks of class c (n even), then frees them in the given order (0: FIFO,
 * 1: LIFO, 2: odd ones first), checking the list after every operation. */
static void churn(int c, size_t n, int order) {
  size_t sz = t_size_of_class(c);
  hak_sll_t *s = &hak_tc->sll[c];
  for (size_t i = 0; i < n; i++) {
    blocks[i] = hak_malloc(sz);
    T_CHECK(blocks[i] != NULL, "hak_malloc(%zu) failed", sz);
    T_CHECK(hak_sll_count(s) <= s->cap, "class %d: count %u above cap %u after malloc", c,
            hak_sll_count(s), s->cap);
    if (i % 16 == 0) check_valid(c, "after malloc", i);
  }
  check_valid(c, "after mallocs", n);
  check_sll_ownership(c);

  uint64_t spills_seen = 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = order == 0 ? k : order == 1 ? n - 1 - k : k < n / 2 ? 2 * k + 1 : 2 * (k - n / 2);
    uint32_t cap = s->cap;
    uint64_t spills = atomic_load_explicit(&hak_tc->stat.spills[c], memory_order_relaxed);
    T_CHECK(blocks[i] != NULL, "free order visits %zu twice", i);
    hak_free(blocks[i]);
    blocks[i] = NULL;
    T_CHECK(hak_sll_count(s) <= s->cap, "class %d: count %u above cap %u after free %zu", c,
            hak_sll_count(s), s->cap, k);
    T_CHECK(s->cap == cap, "class %d: a free changed the capacity %u -> %u", c, cap, s->cap);
    if (atomic_load_explicit(&hak_tc->stat.spills[c], memory_order_relaxed) != spills) {
      /* This free went above cap: the spill brought the list down to half. */
      T_CHECK(hak_sll_count(s) <= cap / 2, "class %d: count %u after a spill, cap %u", c,
              hak_sll_count(s), cap);
      spills_seen++;
    }
    if (k % 16 == 0) check_valid(c, "after free", k);
  }
  check_valid(c, "after frees", n);
  check_sll_ownership(c);
  T_CHECK(spills_seen > 0, "class %d: %zu frees never spilled (cap %u)", c, n, s->cap);
}

/* hak_sll_validate on hand-made lists: it must reject each kind of corruption. */
static void check_validator(void) {
  static _Alignas(64) uint8_t arena[16 * 64];
  void *node[8];
  for (int i = 0; i < 8; i++) node[i] = arena + 64 * i + (16 - HAK_HDR_SIZE) % 16;
  for (int i = 0; i < 8; i++) hak_link_set(node[i], i + 1 < 8 ? node[i + 1] : NULL);
  hak_sll_t s = {.head = node[0], .room = 0, .cap = 8};
  T_CHECK(hak_sll_validate(&s), "a well-formed list of 8 is rejected");
  hak_sll_set_count(&s, 7);
  T_CHECK(!hak_sll_validate(&s), "count 7 for a list of 8 accepted");
  hak_sll_set_count(&s, 9);
  hak_sll_set_cap(&s, 16);
  T_CHECK(!hak_sll_validate(&s), "count 9 for a list of 8 accepted");
  hak_sll_set_count(&s, 8);
  hak_sll_set_cap(&s, 7);
  T_CHECK(!hak_sll_validate(&s), "a list above its capacity accepted");
  hak_sll_set_cap(&s, 8);
  hak_link_set(node[7], node[3]); /* cycle */
  T_CHECK(!hak_sll_validate(&s), "a cyclic list accepted");
  hak_link_set(node[7], NULL);
  T_CHECK(hak_sll_validate(&s), "list not restored");
  void *odd = arena + 64 * 9 + (16 - HAK_HDR_SIZE) % 16 + 8; /* wrong offset mod 16 */
  hak_link_set(odd, NULL);
  hak_link_set(node[7], odd);
  hak_sll_set_count(&s, 9);
  hak_sll_set_cap(&s, 9);
  T_CHECK(!hak_sll_validate(&s), "a misaligned node accepted");
  hak_sll_t empty = {.head = NULL, .room = 0, .cap = 0};
  T_CHECK(hak_sll_validate(&empty), "the empty list rejected");
}

static void *thread_churn(void *arg) {
  int c = (int)(intptr_t)arg;
  churn(c, 700, 2);
  return NULL;
}

int main(void) {
  check_validator();
  t_thread_cache();
  /* The static empty cache every thread starts on is a valid (empty) list of capacity 0. */
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    T_CHECK(hak_tc_empty.sll[c].head == NULL && hak_tc_empty.sll[c].room == 0 &&
                hak_tc_empty.sll[c].cap == 0,
            "hak_tc_empty class %d is not empty", c);

  const int classes[] = {0, 3, 7, 12, 19, 20, 27};
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    int c = classes[i];
    for (int order = 0; order < 3; order++) churn(c, c < TINY_NUM_CLASSES ? 2000 : 1000, order);
  }
  /* A second thread keeps its own lists valid and owns what they hold. */
  t_run_thread(thread_churn, (void *)(intptr_t)5);
  printf("unit_tls_sll: OK\n");
  return 0;
}
