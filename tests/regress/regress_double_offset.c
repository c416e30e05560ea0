/* Regression test, root cause 7 of the playbook: pointer wrap/unwrap toggle confusion (box:
 * pointer bridge).
 *
 * Root cause: the user <-> base offset is applied twice or skipped on one path. The path that
 * exercises it is the aligned free: memalign & co. of a small alignment return a pointer inside
 * an over-sized slab block, and free must turn it back into the block's own user pointer
 * (base + HAK_HDR_SIZE) before the ordinary free. Skipping the offset hands the free path the
 * base pointer, which is no block's user pointer: a valid free then fails (or, had the checks
 * been weaker, the block would go onto the list 8 bytes off).
 *
 * Scenarios (each in a fresh child process, see regress.h):
 *   aligned  memalign, aligned_alloc and posix_memalign for alignments 32 .. 4096 and sizes 1 ..
 *            3000: the pointer is aligned, owned, its usable size covers the request, live
 *            blocks never overlap and keep their contents. Each aligned free must succeed and
 *            put the inner block, as its base pointer, at the head of its class's TLS SLL (its
 *            offset applied exactly once); the aligned pointer is no longer owned, and the next
 *            malloc of the inner size returns the inner block's own user pointer (LIFO). realloc
 *            of an aligned block keeps its contents and frees it the same way;
 *   double   freeing an aligned pointer a second time fails fast with an "invalid free" (in
 *            ASan builds too, where the freed block, aligned mark included, is poisoned).
 * Catches: HAKMEM_PLANT_BUG=double_offset (header mode). Headerless builds have no offset (base
 * == user), so the bug cannot occur there; the same behaviour is checked all the same. */
#include "regress.h"

#define MAX_LIVE 128

typedef struct aligned_s {
  uint8_t *p;     /* the aligned pointer */
  uint8_t *inner; /* the slab block's own user pointer */
  size_t n, align;
  int cls;
} aligned_t;

static aligned_t live[MAX_LIVE];
static void *sorted[MAX_LIVE];
static size_t sorted_n[MAX_LIVE];

static const size_t aligns[] = {32, 64, 128, 256, 512, 1024, 4096};
static const size_t sizes[] = {1, 24, 100, 500, 1000, 3000};

static uint8_t *alloc_aligned(int how, size_t align, size_t n) {
  if (how == 0)
    return hak_memalign(align, n);
  if (how == 1)
    return hak_aligned_alloc(align, n);
  void *p = NULL;
  int rc = hak_posix_memalign(&p, align, n);
  T_CHECK(rc == 0, "posix_memalign(%zu, %zu) returned %d", align, n, rc);
  return p;
}

/* The slab block an aligned pointer lies in: its own user pointer and class. */
static aligned_t describe(uint8_t *p, size_t n, size_t align) {
  T_CHECK(hak_registry_kind((uintptr_t)p) == HAK_REGION_SS,
          "memalign(%zu, %zu) = %p: not in a SuperSlab", align, n, (void *)p);
  hak_slab_t *m = t_run_of(p);
  T_CHECK(m->class_idx < HAK_NUM_CLASSES, "memalign(%zu, %zu) = %p: in an unbound slab", align, n,
          (void *)p);
  size_t idx = (size_t)(p - m->data) / m->stride;
  aligned_t a = {p, m->data + idx * m->stride + HAK_HDR_SIZE, n, align, m->class_idx};
  return a;
}

static aligned_t take(int how, size_t align, size_t n, uint64_t seed) {
  uint8_t *p = alloc_aligned(how, align, n);
  T_CHECK(p != NULL, "aligned allocation (%zu, %zu) failed", align, n);
  T_CHECK(t_aligned(p, align), "aligned allocation (%zu, %zu) = %p is not aligned", align, n,
          (void *)p);
  T_CHECK(hak_owns(p) == 1, "hak_owns(%p) is 0 for a live aligned block", (void *)p);
  T_CHECK(hak_usable_size(p) >= n, "usable size %zu of %p < %zu", hak_usable_size(p), (void *)p, n);
  t_fill(p, n, seed);
  return describe(p, n, align);
}

/* Frees aligned block a and checks where its inner block went. */
static void give_back(const aligned_t *a, uint64_t seed) {
  t_verify(a->p, a->n, seed);
  hak_sll_t *s = &hak_tc->sll[a->cls];
  bool room = hak_sll_count(s) + 1 <= s->cap; /* no spill: the block stays at the head */
  hak_free(a->p);
  if (a->p == a->inner)
    return;      /* the block happened to be aligned: an ordinary free */
  T_CHECK(hak_owns(a->p) == 0, "aligned pointer %p still owned after its free", (void *)a->p);
  if (!room)
    return;
  T_CHECK(s->head == t_base_of(a->inner),
          "aligned free of %p: SLL head of class %d is %p, the block's base pointer is %p",
          (void *)a->p, a->cls, s->head, t_base_of(a->inner));
  T_CHECK(hak_sll_validate(s), "class %d: the TLS SLL does not validate", a->cls);
  /* LIFO: the inner block is the next one of its size. */
  uint8_t *q = hak_malloc(t_size_of_class(a->cls));
  T_CHECK(q == a->inner,
          "malloc after the aligned free of %p returned %p, expected the inner "
          "block %p",
          (void *)a->p, (void *)q, (void *)a->inner);
  T_CHECK(t_aligned(q, 16) && hak_owns(q) == 1, "re-allocated inner block %p", (void *)q);
  hak_free(q);
}

static void check_live(size_t k) {
  for (size_t i = 0; i < k; i++) {
    sorted[i] = live[i].p;
    sorted_n[i] = live[i].n;
    t_verify(live[i].p, live[i].n, i);
  }
  r_check_disjoint(sorted, sorted_n, k, sorted, sorted_n);
}

static void scenario_aligned(void) {
  t_thread_cache();
  size_t k = 0, inside = 0;
  for (int how = 0; how < 3; how++)
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
      for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        T_CHECK(k < MAX_LIVE, "too many blocks");
        live[k] = take(how, aligns[a], sizes[s], k);
        inside += live[k].p != live[k].inner;
        k++;
      }
  T_CHECK(inside >= 16, "only %zu of %zu aligned blocks lie inside a larger block", inside, k);
  check_live(k);
  /* Free every other block, newest first, checking the rest after each free. */
  for (size_t i = k; i-- > 0;) {
    if (i % 2)
      continue;
    give_back(&live[i], i);
  }
  for (size_t i = 1; i < k; i += 2)
    t_verify(live[i].p, live[i].n, i);
  /* realloc of an aligned block: contents move, the old block is freed through the bridge. */
  for (size_t i = 1; i < k; i += 2) {
    size_t n2 = live[i].n + 40;
    uint8_t *q = hak_realloc(live[i].p, n2);
    T_CHECK(q != NULL, "realloc(%p, %zu) failed", (void *)live[i].p, n2);
    T_CHECK(t_aligned(q, 16) && hak_owns(q) == 1, "realloc returned %p", (void *)q);
    t_verify_key(q, live[i].n, t_key(live[i].p, i));
    hak_free(q);
  }
}

static void scenario_double(void) {
  t_thread_cache();
  aligned_t a = take(0, 256, 100, 1);
  T_CHECK(a.p != a.inner, "memalign(256, 100) returned the block's own pointer %p", (void *)a.p);
  aligned_t b = take(0, 256, 100, 2);
  hak_free(a.p);
  t_verify(b.p, b.n, 2);
  fprintf(stderr, "regress_double_offset: freeing aligned pointer %p again; hakmem must abort\n",
          (void *)a.p);
  hak_free(a.p);
}

static const r_scenario_t scenarios[] = {
    {"aligned", scenario_aligned, R_SUCCEEDS, NULL},
    {"double", scenario_double, R_FAILS_FAST, "invalid free"},
};

int main(int argc, char **argv) {
  return r_main(argc, argv, "regress_double_offset", scenarios,
                sizeof scenarios / sizeof scenarios[0]);
}
