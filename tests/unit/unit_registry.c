/* Registry (src/tiny/registry.[ch]): address -> kind of hakmem region, without touching the
 * region.
 *
 * - a stack address, (void *)1, a global, a page mapped by the test, addresses at and above
 *   2^47 and the null page are HAK_REGION_NONE, and hak_owns() says 0 for them;
 * - small blocks are HAK_REGION_SS, a 1 MiB block HAK_REGION_LARGE, a block aligned to 4 MiB
 *   HAK_REGION_LARGE_FAR, and hak_owns() says 1 for each;
 * - after a thread fills SuperSlabs with blocks of one big class, frees them and exits, the
 *   emptied SuperSlabs are released by hak_trim(): their regions read NONE, hak_owns() of
 *   their old blocks is 0 (and the memory really is unmapped, so any touch would fault);
 * - hak_registry_set/clear round-trip on a region-aligned mapping the test owns. */
#include <errno.h>
#include <sys/mman.h>

#include "unit.h"

static int a_global;

static void check_foreign(const void *p, const char *what) {
  T_CHECK(hak_registry_kind((uintptr_t)p) == HAK_REGION_NONE, "%s %p: kind %u", what, p,
          hak_registry_kind((uintptr_t)p));
  T_CHECK(hak_owns(p) == 0, "%s %p: hak_owns says yes", what, p);
}

static void check_foreign_addresses(void) {
  int on_stack = 0;
  check_foreign(&on_stack, "stack address");
  check_foreign((void *)1, "(void *)1");
  check_foreign(NULL, "NULL");
  check_foreign((void *)4096, "the second page");
  check_foreign(&a_global, "global");
  check_foreign((void *)check_foreign, "function");
  void *page = mmap(NULL, HAK_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  T_CHECK(page != MAP_FAILED, "mmap failed");
  check_foreign(page, "mmap'ed page");
  check_foreign((uint8_t *)page + 100, "inside an mmap'ed page");
  munmap(page, HAK_PAGE_SIZE);
  check_foreign((void *)((uintptr_t)1 << HAK_ADDR_BITS), "2^47");
  check_foreign((void *)(((uintptr_t)1 << HAK_ADDR_BITS) + HAK_SS_SIZE * 3), "above 2^47");
  check_foreign((void *)~(uintptr_t)0, "~0");
  check_foreign((void *)0xffff800000000000ull, "kernel half");
  /* An address above 2^47 whose low bits are those of a live SuperSlab is still foreign. */
  void *p = hak_malloc(64);
  T_CHECK(p != NULL, "hak_malloc failed");
  check_foreign((void *)((uintptr_t)p | ((uintptr_t)1 << 50)), "aliased high address");
  hak_free(p);
}

static void check_own_blocks(void) {
  void *small[HAK_NUM_CLASSES];
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    small[c] = hak_malloc(t_size_of_class(c));
    T_CHECK(small[c] != NULL, "hak_malloc failed");
    T_CHECK(hak_registry_kind((uintptr_t)small[c]) == HAK_REGION_SS, "class %d block: kind %u", c,
            hak_registry_kind((uintptr_t)small[c]));
    T_CHECK(hak_registry_ss((uintptr_t)small[c]) == hak_ss_of(small[c]),
            "class %d block: registry SuperSlab", c);
    T_CHECK(hak_owns(small[c]) == 1, "class %d block not owned", c);
  }
  void *big = hak_malloc((size_t)1 << 20);
  T_CHECK(big != NULL, "hak_malloc(1 MiB) failed");
  T_CHECK(hak_registry_kind((uintptr_t)big) == HAK_REGION_LARGE, "1 MiB block: kind %u",
          hak_registry_kind((uintptr_t)big));
  T_CHECK(hak_registry_ss((uintptr_t)big) == NULL, "a large block resolved to a SuperSlab");
  T_CHECK(hak_owns(big) == 1, "1 MiB block not owned");
  void *far = hak_memalign((size_t)4 << 20, 100);
  T_CHECK(far != NULL && ((uintptr_t)far & (((size_t)4 << 20) - 1)) == 0, "memalign 4 MiB: %p",
          far);
  T_CHECK(hak_registry_kind((uintptr_t)far) == HAK_REGION_LARGE_FAR, "4 MiB-aligned block: kind %u",
          hak_registry_kind((uintptr_t)far));
  T_CHECK(hak_owns(far) == 1, "4 MiB-aligned block not owned");
  hak_free(far);
  hak_free(big);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) hak_free(small[c]);
  /* A freed large block whose mapping was unmapped is foreign again. */
  hak_trim();
  T_CHECK(hak_registry_kind((uintptr_t)far) == HAK_REGION_NONE, "freed far block: kind %u",
          hak_registry_kind((uintptr_t)far));
  T_CHECK(hak_owns(far) == 0 && hak_owns(big) == 0, "freed large blocks still owned");
}

/* ---- an emptied SuperSlab, released by hak_trim ---------------------------------------------- */

#define FILL_BLOCKS 48
static void *fill[FILL_BLOCKS];

static void *fill_thread(void *arg) {
  (void)arg;
  const int big = HAK_NUM_CLASSES - 1;
  for (int i = 0; i < FILL_BLOCKS; i++) {
    fill[i] = hak_malloc(t_size_of_class(big));
    T_CHECK(fill[i] != NULL, "hak_malloc failed");
  }
  for (int i = 0; i < FILL_BLOCKS; i++) hak_free(fill[i]);
  return NULL; /* thread exit flushes the SLL and releases the empty runs */
}

static void check_trim_unregisters(void) {
  t_run_thread(fill_thread, NULL);
  /* SuperSlabs the thread left entirely free (still mapped until trimmed). */
  hak_superslab_t *empty[FILL_BLOCKS];
  int nempty = 0;
  for (int i = 0; i < FILL_BLOCKS; i++) {
    hak_superslab_t *ss = hak_ss_of(fill[i]);
    T_CHECK(hak_registry_kind((uintptr_t)ss) == HAK_REGION_SS, "block %d: region gone before trim",
            i);
    if (ss->free_mask != 0xFFFFFFFFu) continue;
    bool dup = false;
    for (int j = 0; j < nempty; j++) dup |= empty[j] == ss;
    if (!dup) empty[nempty++] = ss;
  }
  T_CHECK(nempty >= 1, "no SuperSlab was left empty by the thread");
  hak_stats_t st0 = t_stats();
  uint64_t epoch0 = atomic_load(&hak_ss_release_epoch);
  T_CHECK(hak_trim() == 1, "hak_trim released nothing");
  hak_stats_t st1 = t_stats();
  T_CHECK(st1.superslabs_unmapped - st0.superslabs_unmapped >= (uint64_t)nempty,
          "superslabs_unmapped grew by %llu, %d were empty",
          (unsigned long long)(st1.superslabs_unmapped - st0.superslabs_unmapped), nempty);
  T_CHECK(atomic_load(&hak_ss_release_epoch) > epoch0, "release epoch not bumped");
  for (int j = 0; j < nempty; j++) {
    T_CHECK(hak_registry_kind((uintptr_t)empty[j]) == HAK_REGION_NONE,
            "released SuperSlab %p still registered", (void *)empty[j]);
    /* msync fails with ENOMEM on unmapped memory: the region is really gone. */
    errno = 0;
    T_CHECK(msync(empty[j], HAK_PAGE_SIZE, MS_ASYNC) == -1 && errno == ENOMEM,
            "released SuperSlab %p still mapped", (void *)empty[j]);
  }
  int checked = 0;
  for (int i = 0; i < FILL_BLOCKS; i++) {
    bool released = false;
    for (int j = 0; j < nempty; j++) released |= hak_ss_of(fill[i]) == empty[j];
    if (!released) continue;
    T_CHECK(hak_registry_kind((uintptr_t)fill[i]) == HAK_REGION_NONE, "old block %p: kind %u",
            fill[i], hak_registry_kind((uintptr_t)fill[i]));
    T_CHECK(hak_registry_ss((uintptr_t)fill[i]) == NULL, "old block %p resolves", fill[i]);
    T_CHECK(hak_owns(fill[i]) == 0, "old block %p still owned", fill[i]);
    checked++;
  }
  T_CHECK(checked > 0, "no old block checked");
  /* The allocator goes on: new blocks come from new or reused SuperSlabs. */
  void *p = hak_malloc(t_size_of_class(HAK_NUM_CLASSES - 1));
  T_CHECK(p != NULL && hak_owns(p) == 1, "allocation after trim");
  hak_free(p);
}

/* ---- set / clear on a region of our own ----------------------------------------------------- */

static void check_set_clear(void) {
  size_t len = 2 * HAK_SS_SIZE;
  uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  T_CHECK(raw != MAP_FAILED, "mmap failed");
  uintptr_t region = ((uintptr_t)raw + HAK_SS_MASK) & ~(uintptr_t)HAK_SS_MASK;
  T_CHECK(region + HAK_SS_SIZE <= (uintptr_t)raw + len, "alignment arithmetic");
  T_CHECK(hak_registry_kind(region) == HAK_REGION_NONE, "fresh region already registered");
  unsigned before_next = hak_registry_kind(region + HAK_SS_SIZE);
  unsigned before_prev = hak_registry_kind(region - HAK_SS_SIZE);
  const unsigned kinds[] = {HAK_REGION_SS, HAK_REGION_LARGE, HAK_REGION_LARGE_FAR};
  for (int round = 0; round < 3; round++) {
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
      hak_registry_set(region, (enum hak_region_kind)kinds[k]);
      T_CHECK(hak_registry_kind(region) == kinds[k], "set kind %u, read %u", kinds[k],
              hak_registry_kind(region));
      T_CHECK(hak_registry_kind(region + 12345) == kinds[k], "interior: %u",
              hak_registry_kind(region + 12345));
      T_CHECK(hak_registry_kind(region + HAK_SS_SIZE - 1) == kinds[k], "last byte: %u",
              hak_registry_kind(region + HAK_SS_SIZE - 1));
      T_CHECK(hak_registry_kind(region + HAK_SS_SIZE) == before_next, "next region changed");
      T_CHECK(hak_registry_kind(region - HAK_SS_SIZE) == before_prev, "previous region changed");
      if (kinds[k] == HAK_REGION_LARGE) /* no valid large header there: not a live block */
        T_CHECK(hak_owns((void *)(region + 128)) == 0, "fake large region owned");
      hak_registry_clear(region);
      T_CHECK(hak_registry_kind(region) == HAK_REGION_NONE, "clear left kind %u",
              hak_registry_kind(region));
      T_CHECK(hak_owns((void *)(region + 128)) == 0, "cleared region owned");
    }
  }
  munmap(raw, len);
}

int main(void) {
  /* No time-based decay in this program: an emptied SuperSlab stays mapped until hak_trim()
   * forces it. Set before the first free, which may start the purge thread that reads it. */
  hak_opt.decay_ms = 3600000;
  t_thread_cache();
  check_foreign_addresses();
  check_own_blocks();
  check_trim_unregisters();
  check_set_clear();
  printf("unit_registry: OK\n");
  return 0;
}
