/* The memalign family (DROPIN 10, 11).
 *
 * Every power-of-two alignment from 1 to 1 MiB, plus 2 and 4 MiB, crossed with a set of sizes
 * from 0 to 3 MiB, through memalign, aligned_alloc and posix_memalign: the block is aligned,
 * owned, usable >= size, writable over its usable size, freeable, and realloc keeps its
 * contents. valloc is page aligned; pvalloc rounds the size up to a page. posix_memalign
 * rejects bad alignments with EINVAL without touching *p and huge sizes with ENOMEM. */
#include "hak_test.h"

#define PAGE 4096

static const size_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 100, 1000, 4096, 65536, 300000, 3u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

enum { VIA_MEMALIGN, VIA_ALIGNED_ALLOC, VIA_POSIX_MEMALIGN };
static const char *const via_name[] = {"memalign", "aligned_alloc", "posix_memalign"};

/* What any block must satisfy: the requested alignment, and never less than plain malloc's. */
static size_t required_alignment(size_t align, size_t size) {
  size_t base = size > 8 ? 16 : 8;
  return align > base ? align : base;
}

static void *aligned_by(int via, size_t align, size_t size) {
  switch (via) {
  case VIA_MEMALIGN:
    return T_MEMALIGN(align, size);
  case VIA_ALIGNED_ALLOC:
    return T_ALIGNED_ALLOC(align, size);
  default: {
    void *p = NULL;
    int rc = T_POSIX_MEMALIGN(&p, align, size);
    t_check(rc == 0, "posix_memalign(%zu, %zu) returned %d", align, size, rc);
    return p;
  }
  }
}

/* realloc of an aligned block keeps the first min(old, new) bytes. */
static void check_realloc(unsigned char *p, size_t size, size_t new_size, const char *via,
                          size_t align) {
  uint64_t key = t_key(p, size ^ align);
  t_fill_key(p, size, key);
  unsigned char *q = T_REALLOC(p, new_size);
  t_check(q != NULL, "realloc(%s(%zu, %zu), %zu) returned NULL", via, align, size, new_size);
  t_check(T_USABLE(q) >= new_size, "usable_size after realloc to %zu is %zu", new_size,
          T_USABLE(q));
  t_verify_key(q, size < new_size ? size : new_size, key);
  T_FREE(q);
}

static void check_aligned(int via, size_t align, size_t size) {
  unsigned char *p = aligned_by(via, align, size);
  const char *name = via_name[via];
  t_check(p != NULL, "%s(%zu, %zu) returned NULL", name, align, size);
  t_check(t_aligned(p, required_alignment(align, size)), "%s(%zu, %zu) = %p is not %zu-aligned",
          name, align, size, (void *)p, required_alignment(align, size));
  t_check(hak_owns(p), "hak_owns(%s(%zu, %zu)) is false", name, align, size);
  size_t usable = T_USABLE(p);
  t_check(usable >= size, "usable_size(%s(%zu, %zu)) = %zu", name, align, size, usable);
  t_fill(p, usable, align + size);
  t_verify(p, usable, align + size);
  /* Every third block is freed as it is; the others go through realloc, alternately growing
   * and shrinking (never to 0, which would free). */
  static unsigned counter;
  counter++;
  if (counter % 3 == 0) {
    T_FREE(p);
    return;
  }
  size_t new_size = (counter % 2 || size < 2) ? size * 2 + 24 : size / 2;
  check_realloc(p, size, new_size, name, align);
}

static void check_matrix(void) {
  for (size_t align = 1; align <= (4u << 20); align *= 2) {
    for (size_t i = 0; i < NSIZES; i++) {
      check_aligned(VIA_MEMALIGN, align, sizes[i]);
      check_aligned(VIA_ALIGNED_ALLOC, align, sizes[i]);
      if (align >= sizeof(void *))
        check_aligned(VIA_POSIX_MEMALIGN, align, sizes[i]);
    }
  }
}

static size_t round_page(size_t n) { return (n + PAGE - 1) & ~(size_t)(PAGE - 1); }

static void check_page_allocs(void) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t size = sizes[i];
    unsigned char *v = T_VALLOC(size);
    t_check(v != NULL, "valloc(%zu) returned NULL", size);
    t_check(t_aligned(v, PAGE), "valloc(%zu) = %p is not page aligned", size, (void *)v);
    t_check(T_USABLE(v) >= size, "usable_size(valloc(%zu)) = %zu", size, T_USABLE(v));
    t_fill(v, T_USABLE(v), size);
    t_verify(v, T_USABLE(v), size);
    check_realloc(v, size, size + 5000, "valloc", PAGE);

    unsigned char *pv = T_PVALLOC(size);
    size_t want = size == 0 ? PAGE : round_page(size);
    t_check(pv != NULL, "pvalloc(%zu) returned NULL", size);
    t_check(t_aligned(pv, PAGE), "pvalloc(%zu) = %p is not page aligned", size, (void *)pv);
    t_check(T_USABLE(pv) >= want, "usable_size(pvalloc(%zu)) = %zu, expected >= %zu", size,
            T_USABLE(pv), want);
    t_fill(pv, want, size + 1);
    t_verify(pv, want, size + 1);
    T_FREE(pv);
  }
}

static void check_posix_memalign_errors(void) {
  static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 96, 4097};
  void *const sentinel = (void *)(uintptr_t)0x5e5e5e5e5e50ull;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *p = sentinel;
    int rc = T_POSIX_MEMALIGN(&p, bad[i], 64);
    t_check(rc == EINVAL, "posix_memalign(alignment %zu) returned %d, expected EINVAL", bad[i], rc);
    t_check(p == sentinel, "posix_memalign(alignment %zu) failed but changed *p to %p", bad[i], p);
  }
  void *p = sentinel;
  volatile size_t huge = SIZE_MAX;
  int rc = T_POSIX_MEMALIGN(&p, 64, huge);
  t_check(rc == ENOMEM, "posix_memalign(64, SIZE_MAX) returned %d, expected ENOMEM", rc);
  rc = T_POSIX_MEMALIGN(&p, 4096, huge - 4096);
  t_check(rc == ENOMEM, "posix_memalign(4096, SIZE_MAX - 4096) returned %d, expected ENOMEM", rc);
}

/* A non-power-of-two alignment: glibc rounds it up to the next power of two, a stricter
 * allocator fails with EINVAL. Either is accepted; a block must honour the rounded alignment. */
static void check_odd_alignment(void) {
  static const size_t odd[] = {24, 48, 3000};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    size_t next = 1;
    while (next < odd[i])
      next *= 2;
    for (int via = VIA_MEMALIGN; via <= VIA_ALIGNED_ALLOC; via++) {
      errno = 0;
      void *p = via == VIA_MEMALIGN ? T_MEMALIGN(odd[i], 100) : T_ALIGNED_ALLOC(odd[i], 100);
      if (p == NULL) {
        t_check(errno == EINVAL, "%s(%zu, 100) returned NULL with errno %d, expected EINVAL",
                via_name[via], odd[i], errno);
        continue;
      }
      t_check(t_aligned(p, next), "%s(%zu, 100) = %p is not %zu-aligned", via_name[via], odd[i], p,
              next);
      t_check(T_USABLE(p) >= 100, "usable_size(%s(%zu, 100)) = %zu", via_name[via], odd[i],
              T_USABLE(p));
      t_fill(p, 100, 5);
      t_verify(p, 100, 5);
      T_FREE(p);
    }
  }
  volatile size_t huge = SIZE_MAX;
  errno = 0;
  t_check(T_MEMALIGN(64, huge) == NULL && errno == ENOMEM,
          "memalign(64, SIZE_MAX) did not fail with ENOMEM (errno %d)", errno);
  errno = 0;
  t_check(T_ALIGNED_ALLOC(4096, huge - 100) == NULL && errno == ENOMEM,
          "aligned_alloc(4096, SIZE_MAX - 100) did not fail with ENOMEM (errno %d)", errno);
}

int main(void) {
  uint64_t live = t_live_blocks();
  check_matrix();
  check_page_allocs();
  check_posix_memalign_errors();
  check_odd_alignment();
  uint64_t end = t_live_blocks();
  t_check(end == live, "live_blocks went from %llu to %llu although every block was freed",
          (unsigned long long)live, (unsigned long long)end);
  printf("api_align: ok\n");
  return 0;
}
