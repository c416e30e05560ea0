/* Exports the glibc allocator surface: malloc, free and friends, the __libc_* entry points
 * glibc uses internally, and the malloc.h extras. Built only with HAKMEM_OVERRIDE.
 *
 * malloc and free inline the fast paths behind one test of the trace flag (hak_malloc_entry,
 * hak_free_entry in fast.h); the rest forward to the hak_ API (api.c), which records its own calls. */
#include <errno.h>
#include <malloc.h>
#include <string.h>

#include "fast.h"
#include "hakmem.h"

#if !HAKMEM_OVERRIDE
#error "override.c is built only with HAKMEM_OVERRIDE"
#endif

hak_api void *malloc(size_t size) { return hak_malloc_entry(size); }
hak_api void free(void *ptr) { hak_free_entry(ptr); }
hak_api void cfree(void *ptr) { free(ptr); }
hak_api void *calloc(size_t n, size_t size) { return hak_calloc(n, size); }
hak_api void *realloc(void *ptr, size_t size) { return hak_realloc(ptr, size); }
hak_api void *reallocarray(void *ptr, size_t n, size_t size) {
  return hak_reallocarray(ptr, n, size);
}
hak_api void *memalign(size_t alignment, size_t size) { return hak_memalign(alignment, size); }
hak_api void *aligned_alloc(size_t alignment, size_t size) {
  return hak_aligned_alloc(alignment, size);
}
hak_api int posix_memalign(void **out, size_t alignment, size_t size) {
  return hak_posix_memalign(out, alignment, size);
}
hak_api void *valloc(size_t size) { return hak_valloc(size); }
hak_api void *pvalloc(size_t size) { return hak_pvalloc(size); }
hak_api size_t malloc_usable_size(void *ptr) { return hak_usable_size(ptr); }
hak_api int malloc_trim(size_t pad) {
  (void)pad;
  return hak_trim();
}

/* Options of glibc's allocator do not apply; accept them so programs carry on. */
hak_api int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}

static void fill_mallinfo2(struct mallinfo2 *mi) {
  hak_stats_t s;
  hak_stats_get(&s);
  memset(mi, 0, sizeof(*mi));
  mi->arena = s.bytes_mapped;
  mi->hblks = s.large_allocs;
  mi->uordblks = s.bytes_mapped;
}

hak_api struct mallinfo2 mallinfo2(void) {
  struct mallinfo2 mi;
  fill_mallinfo2(&mi);
  return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

hak_api struct mallinfo mallinfo(void) {
  struct mallinfo2 m2;
  fill_mallinfo2(&m2);
  struct mallinfo mi;
  memset(&mi, 0, sizeof(mi));
  mi.arena = clamp_int(m2.arena);
  mi.hblks = clamp_int(m2.hblks);
  mi.uordblks = clamp_int(m2.uordblks);
  return mi;
}

hak_api void malloc_stats(void) { hak_stats_print(); }

/* glibc's internal entry points. */
hak_api void *__libc_malloc(size_t size) { return malloc(size); }
hak_api void __libc_free(void *ptr) { free(ptr); }
hak_api void *__libc_calloc(size_t n, size_t size) { return hak_calloc(n, size); }
hak_api void *__libc_realloc(void *ptr, size_t size) { return hak_realloc(ptr, size); }
hak_api void *__libc_memalign(size_t alignment, size_t size) {
  return hak_memalign(alignment, size);
}
hak_api void *__libc_valloc(size_t size) { return hak_valloc(size); }
hak_api void *__libc_pvalloc(size_t size) { return hak_pvalloc(size); }
hak_api int __libc_mallopt(int param, int value) { return mallopt(param, value); }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
hak_api struct mallinfo __libc_mallinfo(void) { return mallinfo(); }
#pragma GCC diagnostic pop
hak_api int __posix_memalign(void **out, size_t alignment, size_t size) {
  return hak_posix_memalign(out, alignment, size);
}
