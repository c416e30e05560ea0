/* SuperSlab / slab (src/tiny/superslab.c): carving, class binding, run and region recycling.
 *
 * - the SuperSlab of any block has magic == HAK_SS_MAGIC ^ address, and its slab table is
 *   consistent: bound runs (HEAD) have class_idx < HAK_NUM_CLASSES and used <= carved <=
 *   capacity, continuation slabs point at a head that covers them, free slabs are unbound
 *   and marked in free_mask;
 * - hak_superslab_take_run(c) binds a run with the class's geometry (stride, slab count,
 *   maximal capacity that fits, 16-aligned user pointers, exact reciprocal division, an
 *   exact-division index that accepts block starts only), no
 *   owner and nothing carved; hak_superslab_release_run() makes every slab of it free again;
 * - releasing a run purges its pages once trimmed (the memory reads back as zero);
 * - a SuperSlab that became empty and is taken again has a bumped generation, and
 *   superslabs_reused counts it. */
#include "unit.h"

#define SS_ALL 0xFFFFFFFFu
#define MAX_HELD 256

static void check_magic(const hak_superslab_t *ss) {
  T_CHECK(ss->magic == (HAK_SS_MAGIC ^ (uintptr_t)ss), "SuperSlab %p: magic %#llx", (void *)ss,
          (unsigned long long)ss->magic);
  T_CHECK(hak_registry_kind((uintptr_t)ss) == HAK_REGION_SS, "SuperSlab %p not registered",
          (void *)ss);
}

/* The slab table of ss (read without its lock: only this thread allocates). */
static void check_table(const hak_superslab_t *ss) {
  check_magic(ss);
  for (unsigned i = 0; i < HAK_SLABS_PER_SS; i++) {
    const hak_slab_t *m = &ss->slabs[i];
    bool free_bit = (ss->free_mask >> i) & 1;
    switch (m->state) {
    case HAK_SLAB_FREE:
      T_CHECK(free_bit, "ss %p slab %u: free but not in free_mask", (void *)ss, i);
      T_CHECK(m->class_idx == HAK_CLASS_NONE, "ss %p slab %u: free with class %d", (void *)ss, i,
              m->class_idx);
      break;
    case HAK_SLAB_HEAD:
      T_CHECK(!free_bit, "ss %p slab %u: bound but in free_mask", (void *)ss, i);
      T_CHECK(m->class_idx < HAK_NUM_CLASSES, "ss %p slab %u: bound with class %d", (void *)ss, i,
              m->class_idx);
      T_CHECK(m->head == i && m->nslabs >= 1 && i + m->nslabs <= HAK_SLABS_PER_SS,
              "ss %p slab %u: head %u nslabs %u", (void *)ss, i, m->head, m->nslabs);
      T_CHECK(m->nslabs == hak_run_slabs_for(m->class_idx), "ss %p slab %u: %u slabs for class %d",
              (void *)ss, i, m->nslabs, m->class_idx);
      T_CHECK(m->used <= m->carved && m->carved <= m->capacity,
              "ss %p slab %u: used %u carved %u capacity %u", (void *)ss, i, m->used,
              (unsigned)m->carved, m->capacity);
      break;
    case HAK_SLAB_CONT: {
      T_CHECK(!free_bit, "ss %p slab %u: continuation in free_mask", (void *)ss, i);
      const hak_slab_t *h = &ss->slabs[m->head];
      T_CHECK(m->head < i && h->state == HAK_SLAB_HEAD && m->head + h->nslabs > i,
              "ss %p slab %u: continuation of %u which does not cover it", (void *)ss, i, m->head);
      break;
    }
    default:
      T_CHECK(0, "ss %p slab %u: state %d", (void *)ss, i, m->state);
    }
    /* hak_run_in follows head_off: it must name slabs[head], in every state. */
    T_CHECK((const uint8_t *)ss + m->head_off == (const uint8_t *)&ss->slabs[m->head],
            "ss %p slab %u: head_off %u names another slab than head %u", (void *)ss, i,
            m->head_off, m->head);
  }
}

static void check_blocks_of_live_superslabs(void) {
  static void *p[HAK_NUM_CLASSES][4];
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    for (int i = 0; i < 4; i++) {
      p[c][i] = hak_malloc(t_size_of_class(c));
      T_CHECK(p[c][i] != NULL, "hak_malloc failed");
      hak_superslab_t *ss = hak_ss_of(p[c][i]);
      check_table(ss);
      hak_slab_t *m = t_run_of(hak_bridge_base(p[c][i]));
      T_CHECK(m->class_idx == c, "block of class %d in a run of class %d", c, m->class_idx);
    }
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    for (int i = 0; i < 4; i++) hak_free(p[c][i]);
}

/* ---- take / release -------------------------------------------------------------------------- */

static unsigned idx_of(const hak_slab_t *m) { return (unsigned)(m - hak_ss_of(m)->slabs); }

static void check_fresh_run(hak_slab_t *m, int c) {
  T_CHECK(m != NULL, "take_run(%d) failed", c);
  hak_superslab_t *ss = hak_ss_of(m);
  check_table(ss);
  unsigned idx = idx_of(m);
  int k = hak_run_slabs_for(c);
  T_CHECK(m->state == HAK_SLAB_HEAD && m->class_idx == c && m->head == idx,
          "class %d: run state %d class %d head %u (idx %u)", c, m->state, m->class_idx, m->head,
          idx);
  T_CHECK(m->nslabs == k && k >= 1 && k <= (int)HAK_SLABS_PER_SS / 2, "class %d: %u slabs, want %d",
          c, m->nslabs, k);
  T_CHECK(hak_owner_of(m) == NULL, "class %d: fresh run has owner %p", c, (void *)hak_owner_of(m));
  T_CHECK(m->used == 0 && m->carved == 0 && m->freelist == NULL, "class %d: fresh run not empty",
          c);
  T_CHECK(atomic_load(&m->remote) == 0, "class %d: fresh run has remote word %#lx", c,
          (unsigned long)atomic_load(&m->remote));
  T_CHECK(m->stride == hak_stride_of(c), "class %d: stride %u, want %u", c, m->stride,
          hak_stride_of(c));
  /* Geometry: block 0 after the SuperSlab header (slab 0), user pointers 16-aligned, the
   * capacity is the most blocks that fit in the run. */
  uint8_t *run = (uint8_t *)ss + (size_t)idx * HAK_SLAB_SIZE;
  uint8_t *run_end = run + (size_t)k * HAK_SLAB_SIZE;
  uint8_t *min_data = idx == 0 ? (uint8_t *)ss + sizeof(hak_superslab_t) : run;
  T_CHECK(m->data >= min_data && m->data < min_data + 64 + 16, "class %d: data %p, run %p", c,
          (void *)m->data, (void *)run);
  T_CHECK(((uintptr_t)m->data + HAK_HDR_SIZE) % 16 == 0, "class %d: user pointers misaligned", c);
  T_CHECK(m->capacity >= 1, "class %d: capacity 0", c);
  T_CHECK(m->data + (size_t)m->capacity * m->stride <= run_end,
          "class %d: %u blocks of %u bytes overflow the run", c, m->capacity, m->stride);
  T_CHECK(m->data + (size_t)(m->capacity + 1) * m->stride > run_end,
          "class %d: capacity %u is not maximal", c, m->capacity);
  /* The reciprocal gives the exact block index of every offset in the run. */
  for (uint32_t i = 0; i < m->capacity; i++) {
    uint64_t offs[3] = {(uint64_t)i * m->stride, (uint64_t)i * m->stride + m->stride / 2,
                        (uint64_t)i * m->stride + m->stride - 1};
    for (int j = 0; j < 3; j++)
      T_CHECK(((offs[j] * m->recip) >> HAK_RECIP_SHIFT) == i,
              "class %d: offset %llu maps to block %llu, not %u", c, (unsigned long long)offs[j],
              (unsigned long long)((offs[j] * m->recip) >> HAK_RECIP_SHIFT), i);
  }
  /* The exact-division index (the free path's check) names block i at its start, and gives
   * at least the capacity for every other offset: inside a block, past the run, before it. */
  for (uint32_t i = 0; i <= m->capacity; i++) {
    uint64_t start = (uint64_t)i * m->stride;
    uint64_t got = hak_run_block_index(m, start);
    T_CHECK(i == m->capacity ? got >= m->capacity : got == i,
            "class %d: start of block %u indexes as %llu", c, i, (unsigned long long)got);
    uint64_t other[4] = {start + 1, start + 8, start + m->stride - 8, start - 8};
    for (int j = 0; j < 4; j++)
      T_CHECK(hak_run_block_index(m, other[j]) >= m->capacity,
              "class %d: offset %lld (block %u) passes as block %llu", c, (long long)other[j], i,
              (unsigned long long)hak_run_block_index(m, other[j]));
  }
  for (int j = 1; j < k; j++)
    T_CHECK(ss->slabs[idx + j].state == HAK_SLAB_CONT && ss->slabs[idx + j].head == idx,
            "class %d: slab %u not a continuation of %u", c, idx + j, idx);
  T_CHECK(((ss->free_mask >> idx) & ((k == 32 ? SS_ALL : (1u << k) - 1))) == 0,
          "class %d: run slabs still in free_mask", c);
}

static void check_released(hak_superslab_t *ss, unsigned idx, int k) {
  for (int j = 0; j < k; j++) {
    hak_slab_t *s = &ss->slabs[idx + j];
    T_CHECK(s->state == HAK_SLAB_FREE && s->class_idx == HAK_CLASS_NONE && s->head == idx + j,
            "slab %u after release: state %d class %d head %u", idx + j, s->state, s->class_idx,
            s->head);
    T_CHECK((ss->free_mask >> (idx + j)) & 1, "slab %u after release not in free_mask", idx + j);
  }
}

static void check_take_release_all_classes(void) {
  uint64_t bound0 = t_stats().slabs_bound;
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_slab_t *m = hak_superslab_take_run(c);
    check_fresh_run(m, c);
    hak_superslab_t *ss = hak_ss_of(m);
    unsigned idx = idx_of(m);
    hak_superslab_release_run(m);
    check_released(ss, idx, hak_run_slabs_for(c));
    check_table(ss);
  }
  T_CHECK(t_stats().slabs_bound - bound0 >= HAK_NUM_CLASSES, "slabs_bound grew by %llu",
          (unsigned long long)(t_stats().slabs_bound - bound0));
}

/* ---- purge and reuse of a whole SuperSlab --------------------------------------------------- */

static hak_slab_t *held[MAX_HELD];
static int nheld;

static hak_slab_t *take_held(int c) {
  T_CHECK(nheld < MAX_HELD, "too many runs held");
  hak_slab_t *m = hak_superslab_take_run(c);
  T_CHECK(m != NULL, "take_run(%d) failed", c);
  held[nheld++] = m;
  return m;
}

static void release_held_except(const hak_slab_t *a, const hak_slab_t *b) {
  int k = 0;
  for (int i = 0; i < nheld; i++) {
    if (held[i] == a || held[i] == b) continue;
    hak_superslab_release_run(held[i]);
  }
  for (int i = 0; i < nheld; i++)
    if (held[i] == a || held[i] == b) held[k++] = held[i];
  nheld = k;
}

static void check_purge_and_reuse(void) {
  const int big = HAK_NUM_CLASSES - 1; /* runs of half a SuperSlab */
  T_CHECK(hak_run_slabs_for(big) == (int)HAK_SLABS_PER_SS / 2, "class %d: %d slabs per run", big,
          hak_run_slabs_for(big));
  /* Hold half-SuperSlab runs until both halves of one SuperSlab X are ours. */
  hak_slab_t *lo = NULL, *hi = NULL;
  for (int tries = 0; tries < MAX_HELD - 2 && (lo == NULL || hi == NULL); tries++) {
    hak_slab_t *m = take_held(big);
    hak_superslab_t *ss = hak_ss_of(m);
    if (ss->free_mask != 0) continue;
    hak_slab_t *a = &ss->slabs[0], *b = &ss->slabs[HAK_SLABS_PER_SS / 2];
    bool have_a = false, have_b = false;
    for (int i = 0; i < nheld; i++) {
      have_a |= held[i] == a;
      have_b |= held[i] == b;
    }
    if (have_a && have_b) lo = a, hi = b;
  }
  T_CHECK(lo != NULL && hi != NULL, "never got both halves of one SuperSlab");
  hak_superslab_t *x = hak_ss_of(lo);
  release_held_except(lo, hi);

  /* Purge: fill the upper half, release it (X stays in use through the lower half), trim. */
  hak_stats_t st0 = t_stats();
  memset(hi->data, 0xA5, 2 * HAK_PAGE_SIZE);
  uint8_t *hi_data = hi->data;
  hak_superslab_release_run(hi);
  check_released(x, HAK_SLABS_PER_SS / 2, HAK_SLABS_PER_SS / 2);
  T_CHECK(x->dirty_mask >> (HAK_SLABS_PER_SS / 2) == 0xFFFF, "released slabs not dirty: %#x",
          x->dirty_mask);
  hak_superslab_trim(true);
  check_magic(x);
  T_CHECK(x->dirty_mask == 0, "dirty_mask %#x after a forced trim", x->dirty_mask);
  T_CHECK(t_stats().bytes_purged - st0.bytes_purged >= HAK_SS_SIZE / 2, "bytes_purged grew by %llu",
          (unsigned long long)(t_stats().bytes_purged - st0.bytes_purged));
  for (size_t i = 0; i < 2 * HAK_PAGE_SIZE; i++)
    T_CHECK(hi_data[i] == 0, "purged byte %zu reads %#x", i, hi_data[i]);

  /* Reuse: empty X entirely; the next run taken comes from it with a new generation. */
  uint64_t gen = atomic_load(&x->generation);
  T_CHECK(gen >= 1, "generation %llu", (unsigned long long)gen);
  hak_superslab_release_run(lo);
  nheld = 0;
  T_CHECK(x->free_mask == SS_ALL && x->list == HAK_SSL_EMPTY,
          "X not empty after releasing both halves: free_mask %#x list %d", x->free_mask, x->list);
  T_CHECK(atomic_load(&x->generation) == gen, "generation moved while X sat empty");
  uint64_t reused0 = t_stats().superslabs_reused;
  hak_slab_t *again = NULL;
  for (int tries = 0; tries < 8 && again == NULL; tries++) {
    hak_slab_t *m = take_held(big);
    if (hak_ss_of(m) == x) again = m;
  }
  T_CHECK(again != NULL, "the empty SuperSlab was not reused");
  check_magic(x);
  check_fresh_run(again, big);
  T_CHECK(atomic_load(&x->generation) == gen + 1, "generation %llu after reuse, was %llu",
          (unsigned long long)atomic_load(&x->generation), (unsigned long long)gen);
  T_CHECK(t_stats().superslabs_reused > reused0, "superslabs_reused did not grow");
  release_held_except(NULL, NULL);
  nheld = 0;
}

int main(void) {
  t_thread_cache();
  /* No time-based decay: empty SuperSlabs stay as they are until the test trims them. */
  hak_opt.decay_ms = 3600000;
  check_blocks_of_live_superslabs();
  check_take_release_all_classes();
  check_purge_and_reuse();
  /* Blocks still work after all that. */
  check_blocks_of_live_superslabs();
  printf("unit_superslab: OK\n");
  return 0;
}
