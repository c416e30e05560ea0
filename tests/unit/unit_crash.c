/* Crash report: what hak_crash_describe() says an address is (src/crash.c).
 *
 * Each case makes an address of one kind and checks the words the report uses for it:
 * a carved block of a live run (class, block index), a run's metadata (the field), a released
 * slab, a SuperSlab hakmem unmapped (from the graveyard), a large block (its first region and
 * past it), a large mapping hakmem unmapped, and addresses that are not hakmem's. */
#include "tiny/registry.h"
#include "unit.h"

static char text[512];

static const char *describe(const void *p) {
  hak_crash_describe((uintptr_t)p, text, sizeof text);
  fprintf(stderr, "  %p: %s\n", p, text);
  return text;
}

#define EXPECT_IN(p, word)                                                                         \
  T_CHECK(strstr(describe(p), (word)) != NULL, "describe(%p) = \"%s\" lacks \"%s\"", (void *)(p),  \
          text, (word))

static void live_block(void) {
  int cls = 4;
  void *p = hak_malloc(t_size_of_class(cls));
  T_CHECK(p != NULL, "hak_malloc failed");
  hak_slab_t *m = hak_run_of(p);
  char want[64];
  snprintf(want, sizeof want, "class %d (stride %u)", cls, m->stride);
  EXPECT_IN(p, "(live)");
  EXPECT_IN(p, want);
  EXPECT_IN(p, "(carved)");
  EXPECT_IN(p, "owned by cache");
  /* The block after the carved ones (a refill carves a batch, never the whole run here). */
  uint32_t carved = atomic_load(&m->carved);
  T_CHECK(carved < m->capacity, "the refill carved the whole run");
  EXPECT_IN(m->data + (size_t)carved * m->stride, "(never carved)");
  EXPECT_IN(&m->remote, "metadata of slab");
  EXPECT_IN(&m->remote, "(field remote)");
  EXPECT_IN(&m->carved, "(field carved)");
  EXPECT_IN(hak_ss_of(p), "its header");
  hak_free(p);
}

static void released_slab(void) {
  void *keep = hak_malloc(t_size_of_class(2)); /* keeps the SuperSlab mapped */
  T_CHECK(keep != NULL, "hak_malloc failed");
  hak_superslab_t *ss = hak_ss_of(keep);
  unsigned i = 0;
  while (i < HAK_SLABS_PER_SS && !(ss->free_mask >> i & 1)) i++;
  T_CHECK(i < HAK_SLABS_PER_SS, "no free slab in the SuperSlab of %p", keep);
  EXPECT_IN((uint8_t *)ss + ((size_t)i << HAK_SLAB_SHIFT) + 100, "released");
  hak_free(keep);
}

#define RUN_BLOCKS 96 /* 64 KiB blocks: three SuperSlabs' worth */
static void *run_blocks[RUN_BLOCKS];

static void *blocks_then_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < RUN_BLOCKS; i++) {
    run_blocks[i] = hak_malloc(64 * 1024);
    T_CHECK(run_blocks[i] != NULL, "hak_malloc(64 KiB) failed");
  }
  return NULL;
}

static void unmapped_superslab(void) {
  /* A thread's blocks, freed after the thread exited: each free releases its run, and the
   * trim unmaps every SuperSlab left empty: those that held only these blocks. */
  pthread_t t;
  t_start(&t, blocks_then_exit, NULL);
  t_join(t);
  for (int i = 0; i < RUN_BLOCKS; i++) hak_free(run_blocks[i]);
  uint64_t before = t_stats().superslabs_unmapped;
  hak_trim();
  T_CHECK(t_stats().superslabs_unmapped > before, "hak_trim unmapped no SuperSlab");
  int gone = 0;
  for (int i = 0; i < RUN_BLOCKS; i++) {
    uint8_t *p = run_blocks[i];
    if (hak_registry_kind((uintptr_t)p) != HAK_REGION_NONE) continue;
    if (gone++ > 0) continue;
    EXPECT_IN(p, "unmapped SuperSlab");
    EXPECT_IN(p, "a use after the region was released");
    EXPECT_IN((uint8_t *)hak_ss_of(p) + offsetof(hak_superslab_t, slabs) +
                  offsetof(hak_slab_t, remote),
              "metadata of slab 0 (field remote)");
  }
  T_CHECK(gone > 0, "every block's SuperSlab is still registered after the trim");
}

static void large_blocks(void) {
  size_t n = 5u << 20;
  uint8_t *p = hak_malloc(n);
  T_CHECK(p != NULL, "hak_malloc(%zu) failed", n);
  EXPECT_IN(p, "large mapping");
  EXPECT_IN(p + 100, "offset 100 of the block");
  EXPECT_IN(p + (3u << 20), "(in use)");
  hak_free(p);
  hak_trim(); /* drops the large cache */
  if (hak_registry_kind((uintptr_t)p) != HAK_REGION_NONE) return;
  EXPECT_IN(p + 64, "unmapped large mapping");
}

static void not_hakmem(void) {
  int local;
  EXPECT_IN(&local, "not hakmem's");
  EXPECT_IN(NULL, "null pointer");
  EXPECT_IN((void *)((uintptr_t)1 << 50), "not a user-space address");
}

int main(void) {
  t_thread_cache();
  live_block();
  released_slab();
  unmapped_superslab();
  large_blocks();
  not_hakmem();
  printf("unit_crash: ok\n");
  return 0;
}
