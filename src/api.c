/* The public API and glibc's semantics: sizes, errno, alignment, realloc, usable size.
 *
 * Everything here is built from the fast paths (fast.h) and the slow paths below; override.c
 * only renames these entry points. */
#include <errno.h>
#include <string.h>

#include "fast.h"
#include "hakmem.h"

/* ---- slow paths -------------------------------------------------------------------------- */

static void *slab_alloc(size_t n) {
  hak_class_t c = hak_size_class(n);
  hak_tcache_t *tc = hak_tc_acquire();
  void *b = hak_sll_pop(&tc->sll[c]);
  if (b == NULL) b = hak_refill_slow(tc, c);
  void *p = NULL;
  if (b != NULL) {
    hak_stat_inc(tc->stat.allocs[c]);
    p = hak_bridge_out(b, c, (uint32_t)(hak_class_raw_size(c) + HAK_STRIDE_EXTRA));
  }
  hak_tc_release(tc);
  hak_purge_notify(); /* the refill may have released runs (collected or pushed frees) */
  return p;
}

hak_noinline void *hak_malloc_slow(size_t n) {
  void *p;
  if (hak_unlikely(n > (size_t)PTRDIFF_MAX)) {
    p = NULL;
  } else if (n <= HAK_SLAB_REQ_MAX) {
    p = slab_alloc(n);
  } else {
    p = hak_large_alloc(n, 16, false);
  }
  if (p == NULL) errno = ENOMEM;
  return p;
}

/* Resolves p to its run and block even when it is not a block's user pointer: sets *base to
 * the block p lies in. Returns NULL when p is not inside a bound run of a live SuperSlab. */
static hak_slab_t *slab_in_ss(hak_superslab_t *ss, uintptr_t u, uint8_t **base) {
  if (ss == NULL) return NULL;
  hak_slab_t *m = hak_run_in(ss, u);
  if (m->class_idx >= HAK_NUM_CLASSES) return NULL;
  uint64_t off = (uint64_t)(u - (uintptr_t)m->data);
  if (off >= (uint64_t)m->capacity * m->stride) return NULL;
  *base = m->data + ((off * m->recip) >> HAK_RECIP_SHIFT) * m->stride;
  return m;
}

/* Whether the block at base has been carved (handed out at least once). */
static bool block_carved(const hak_slab_t *m, const uint8_t *base) {
  return (uint64_t)(base - m->data) / m->stride < atomic_load_explicit(&m->carved, hak_relaxed);
}

/* As slab_in_ss, for a pointer whose region is registered as a SuperSlab (fails fast on a
 * registered region with a bad magic). */
static hak_slab_t *slab_of_interior(uintptr_t u, uint8_t **base) {
  return slab_in_ss(hak_registry_ss(u), u, base);
}

/* An aligned allocation inside a slab block: two words below the user pointer. */
typedef struct aligned_mark_s {
  uint64_t magic; /* HAK_ALIGN_MAGIC ^ user pointer */
  uint8_t *inner; /* the block's own user pointer */
} aligned_mark_t;

static aligned_mark_t *aligned_mark_of(const void *p, uint8_t *base) {
  uint8_t *inner = base + HAK_HDR_SIZE;
  if ((const uint8_t *)p < inner + sizeof(aligned_mark_t)) return NULL;
  aligned_mark_t *mk = (aligned_mark_t *)((uint8_t *)p - sizeof(aligned_mark_t));
#if HAKMEM_ASAN
  /* A freed block is poisoned past its link word, mark included: it carries no mark. */
  if (__asan_region_is_poisoned(mk, sizeof *mk) != NULL) return NULL;
#endif
  if (mk->magic != (HAK_ALIGN_MAGIC ^ (uintptr_t)p) || mk->inner != inner) return NULL;
  return mk;
}

static const char *bad_free_reason(uintptr_t u) {
  if (hak_registry_kind(u) == HAK_REGION_NONE) return "invalid free (not a hakmem pointer)";
  return "invalid free (not the start of a block)";
}

hak_noinline void hak_free_slow(void *p) {
  if (p == NULL) return; /* the fast path sends it here: no region is registered at 0 */
  uintptr_t u = (uintptr_t)p;
  unsigned kind = hak_registry_kind(u);
  if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR) {
    hak_large_free(p, hak_large_lookup(p, (int)kind));
    hak_purge_notify(); /* the mapping is cached */
    return;
  }
  uint8_t *base;
  hak_slab_t *m = kind == HAK_REGION_SS ? slab_of_interior(u, &base) : NULL;
  if (m == NULL) hak_fail(bad_free_reason(u), p, kind ? hak_ss_of(p) : NULL, -1);
  if (base + HAK_HDR_SIZE == (uint8_t *)p) {
    if (!block_carved(m, base))
      hak_fail("invalid free (block never allocated)", p, hak_ss_of(p), m->class_idx);
    /* A block's own pointer that the fast path refused: its header is not "in use". */
#if !HAKMEM_TINY_HEADERLESS
    uint64_t h = *(uint64_t *)base;
    if (h == HAK_HDR_FREE(m->class_idx))
      hak_fail("double free", p, hak_ss_of(p), m->class_idx);
    if ((h & ~HAK_HDR_FORM_MASK) == HAK_HDR_ALLOC(m->class_idx)) {
      /* In use, from operator new, freed by free() or realloc: allowed, as glibc allows it. */
      *(uint64_t *)base = HAK_HDR_ALLOC(m->class_idx);
      hak_free_fast(p);
      return;
    }
#endif
    hak_fail("invalid free (corrupt block header)", p, hak_ss_of(p), m->class_idx);
  }
  aligned_mark_t *mk = aligned_mark_of(p, base);
  if (mk == NULL) hak_fail("invalid free (interior pointer)", p, hak_ss_of(p), m->class_idx);
  mk->magic = 0; /* a second free of the aligned pointer is now invalid */
#if HAK_PLANTED(double_offset)
  hak_free_fast(base); /* planted bug: the block's base, its user offset skipped */
#else
  hak_free_fast(base + HAK_HDR_SIZE);
#endif
}

/* ---- C++ delete forms and sizes (HAK_DELETE_CHECKED builds) ------------------------------
 *
 * operator new records its form where the block keeps it: the in-use header (header mode), the
 * SuperSlab's form table (checked headerless), the large header. A delete checks the form and
 * its size argument against the block before it frees it, so the free's fast path is the one of
 * every build. A pointer these checks cannot resolve to a live block's own pointer is left to
 * the free, which diagnoses it (invalid, double free) or frees it (an aligned block). */

#if HAK_DELETE_CHECKED
/* The form of slab block base, read and, in header mode, cleared (the free's fast path compares
 * the plain in-use header). *live false: the header says the block is not in use (the free
 * diagnoses it). */
static unsigned slab_form_take(uint8_t *base, const hak_slab_t *m, bool *live) {
#if !HAKMEM_TINY_HEADERLESS
  uint64_t h = *(uint64_t *)base;
  *live = (h & ~HAK_HDR_FORM_MASK) == HAK_HDR_ALLOC(m->class_idx);
  if (!*live) return 0;
  *(uint64_t *)base = HAK_HDR_ALLOC(m->class_idx);
  return (unsigned)(h >> HAK_HDR_FORM_SHIFT) & 3;
#else
  (void)m;
  *live = true; /* a free block's byte is 0: nothing to compare, the free finds it free */
  return *hak_checked_form_of(base);
#endif
}

static void slab_form_set(uint8_t *base, unsigned form) {
#if !HAKMEM_TINY_HEADERLESS
  *(uint64_t *)base |= (uint64_t)form << HAK_HDR_FORM_SHIFT;
#else
  *hak_checked_form_of(base) = (uint8_t)form;
#endif
}

void hak_new_record(void *p, size_t n, unsigned form) {
  if (n <= HAK_SLAB_REQ_MAX) {
    slab_form_set((uint8_t *)p - HAK_HDR_SIZE, form); /* malloc's own block: p is its user pointer */
  } else {
    hak_large_header_at((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK, HAK_REGION_LARGE)->form =
        (uint8_t)form;
  }
}

static void form_check(unsigned got, unsigned form, const void *p, const void *ss, int cls) {
  if (got == 0 || got == form) return; /* malloc's blocks: any delete, as glibc allows */
  hak_fail(form == HAK_FORM_ARRAY ? "delete[] of a block from new (not new[])"
                                  : "delete of a block from new[]",
           p, ss, cls);
}

void hak_delete_check(void *p, size_t n, unsigned form) {
  uintptr_t u = (uintptr_t)p;
  unsigned kind = hak_registry_kind(u);
  if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR) {
    hak_large_t *h = hak_large_peek(p, (int)kind);
    if (h == NULL) return;
    form_check(h->form, form, p, h, -1);
    /* A large block came from a request above the slab sizes and fits it. */
    if (n != HAK_NO_SIZE && (n <= HAK_SLAB_REQ_MAX || n > h->usable))
      hak_fail("sized delete with the wrong size", p, h, -1);
    return;
  }
  uint8_t *base;
  hak_slab_t *m = kind == HAK_REGION_SS ? slab_of_interior(u, &base) : NULL;
  if (m == NULL || base + HAK_HDR_SIZE != (uint8_t *)p || !block_carved(m, base)) return;
  bool live;
  unsigned got = slab_form_take(base, m, &live);
  if (!live) return;
  form_check(got, form, p, hak_ss_of(p), m->class_idx);
  /* Only sizes of other classes are wrong as far as the block can tell. */
  if (n != HAK_NO_SIZE && (n > HAK_SLAB_REQ_MAX || hak_size_class(n) != m->class_idx))
    hak_fail("sized delete with the wrong size", p, hak_ss_of(p), m->class_idx);
}
#endif

/* ---- aligned allocation ------------------------------------------------------------------ */

static void *alloc_aligned(size_t n, size_t align) {
  if (align <= 16) return hak_alloc_fast(n);
  if (n > (size_t)PTRDIFF_MAX - align) return NULL;
  if (n + align <= HAK_SLAB_REQ_MAX && align < HAK_SLAB_SIZE) {
    /* Over-allocate inside a slab block and mark the aligned pointer (see aligned_mark_t). */
    uint8_t *inner = hak_alloc_fast(n + align);
    if (inner == NULL || ((uintptr_t)inner & (align - 1)) == 0) return inner;
    uintptr_t u = ((uintptr_t)inner + sizeof(aligned_mark_t) + align - 1) & ~(uintptr_t)(align - 1);
    aligned_mark_t *mk = (aligned_mark_t *)(u - sizeof(aligned_mark_t));
    mk->magic = HAK_ALIGN_MAGIC ^ u;
    mk->inner = inner;
    return (void *)u;
  }
  return hak_large_alloc(n, align, false);
}

static bool is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

/* ---- the calls, untraced ------------------------------------------------------------------
 *
 * What the public entry points do, without recording: they call each other (realloc frees and
 * allocates) through these, so a traced call is recorded exactly once. */

static void *calloc_impl(size_t count, size_t size) {
  size_t n;
  if (hak_unlikely(__builtin_mul_overflow(count, size, &n))) {
    errno = ENOMEM;
    return NULL;
  }
  if (n > HAK_SLAB_REQ_MAX) {
    if (n > (size_t)PTRDIFF_MAX) {
      errno = ENOMEM;
      return NULL;
    }
    void *p = hak_large_alloc(n, 16, true);
    if (p == NULL) errno = ENOMEM;
    return p;
  }
  void *p = hak_alloc_fast(n);
  if (p != NULL) memset(p, 0, n);
  return p;
}

/* With record (tracing), the call is recorded where the trace's order needs it: after every
 * allocation it makes and before it frees ptr, so another thread's allocation that returns ptr
 * again orders after it (trace.c), as a free's does. */
static void *realloc_impl(void *ptr, size_t size, bool record) {
  void *q;
  if (ptr == NULL) {
    q = hak_alloc_fast(size);
  } else if (size == 0) {
    q = NULL;
    if (record) hak_trace_record(HAK_TR_REALLOC, q, size, (uintptr_t)ptr);
    hak_free_fast(ptr);
    hak_sched_point(HAK_SP_REALLOC_FREED, ptr);
    return q;
  } else {
    size_t old = hak_usable_size(ptr);
    if (size <= old && size >= old / 2) {
      q = ptr; /* fits, and not too wasteful to keep */
    } else if ((q = hak_alloc_fast(size)) != NULL) {
      memcpy(q, ptr, size < old ? size : old);
      if (record) hak_trace_record(HAK_TR_REALLOC, q, size, (uintptr_t)ptr);
      hak_free_fast(ptr);
      hak_sched_point(HAK_SP_REALLOC_FREED, ptr);
      return q;
    } /* else errno set; the old block is untouched */
  }
  if (record) hak_trace_record(HAK_TR_REALLOC, q, size, (uintptr_t)ptr);
  return q;
}

static void *memalign_impl(size_t alignment, size_t size) {
  if (!is_pow2(alignment)) {
    /* glibc rounds a non-power-of-two alignment up to the next power of two. */
    if (alignment > ((size_t)1 << 62)) {
      errno = EINVAL;
      return NULL;
    }
    size_t a = 1;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  void *p = alloc_aligned(size, alignment);
  if (p == NULL) errno = ENOMEM;
  return p;
}

static void *aligned_alloc_impl(size_t alignment, size_t size) {
  if (!is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return memalign_impl(alignment, size);
}

static int posix_memalign_impl(void **out, size_t alignment, size_t size) {
  if (!is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  void *p = alloc_aligned(size, alignment);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

static void *pvalloc_impl(size_t size) {
  size_t n = (size + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1);
  if (n < size) {
    errno = ENOMEM;
    return NULL;
  }
  return memalign_impl(HAK_PAGE_SIZE, n ? n : HAK_PAGE_SIZE);
}

/* ---- the public API ----------------------------------------------------------------------
 *
 * Each entry point tests hak_tracing() once: allocations record after the call, frees before
 * (trace.c says why). malloc and free test it only on their gated ways (fast.h). */

hak_cold void *hak_malloc_traced(size_t size) {
  void *p = hak_alloc_fast(size);
  hak_trace_record(HAK_TR_MALLOC, p, size, 0);
  return p;
}

hak_cold void hak_free_traced(void *ptr) {
  if (ptr != NULL) hak_trace_record(HAK_TR_FREE, ptr, 0, 0);
  hak_free_fast(ptr);
}

hak_noinline void *hak_malloc_gated(size_t size) {
  if (hak_tracing()) return hak_malloc_traced(size);
  return hak_alloc_fast(size);
}

hak_noinline void hak_free_gated(void *ptr) {
  if (hak_tracing()) {
    hak_free_traced(ptr);
    return;
  }
  hak_free_fast(ptr);
}

hak_api void *hak_malloc(size_t size) { return hak_malloc_entry(size); }

hak_api void hak_free(void *ptr) { hak_free_entry(ptr); }

/* Records an allocation call that returned p; returns p. */
static inline void *traced(void *p, enum hak_trace_op op, uint64_t size, uint64_t aux) {
  if (hak_tracing()) hak_trace_record(op, p, size, aux);
  return p;
}

hak_api void *hak_calloc(size_t count, size_t size) {
  return traced(calloc_impl(count, size), HAK_TR_CALLOC, count, size);
}

hak_api size_t hak_usable_size(const void *ptr) {
  if (ptr == NULL) return 0;
  uintptr_t u = (uintptr_t)ptr;
  unsigned kind = hak_registry_kind(u);
  if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR)
    return hak_large_lookup(ptr, (int)kind)->usable;
  uint8_t *base;
  hak_slab_t *m = kind == HAK_REGION_SS ? slab_of_interior(u, &base) : NULL;
  if (m == NULL) hak_fail("usable size of a pointer hakmem does not own", ptr, NULL, -1);
  if (base + HAK_HDR_SIZE != (uint8_t *)ptr && aligned_mark_of(ptr, base) == NULL)
    hak_fail("usable size of an interior pointer", ptr, hak_ss_of(ptr), m->class_idx);
  return (size_t)(base + m->stride - (const uint8_t *)ptr);
}

hak_api void *hak_realloc(void *ptr, size_t size) {
  return realloc_impl(ptr, size, hak_tracing());
}

hak_api void *hak_reallocarray(void *ptr, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL; /* nothing happened: nothing to record */
  }
  return hak_realloc(ptr, n);
}

hak_api void *hak_memalign(size_t alignment, size_t size) {
  return traced(memalign_impl(alignment, size), HAK_TR_MEMALIGN, size, alignment);
}

hak_api void *hak_aligned_alloc(size_t alignment, size_t size) {
  return traced(aligned_alloc_impl(alignment, size), HAK_TR_ALIGNED_ALLOC, size, alignment);
}

hak_api int hak_posix_memalign(void **out, size_t alignment, size_t size) {
  void *p = NULL;
  int rc = posix_memalign_impl(&p, alignment, size);
  if (rc == 0) *out = p;
  traced(p, HAK_TR_POSIX_MEMALIGN, size, alignment);
  return rc;
}

hak_api void *hak_valloc(size_t size) {
  return traced(memalign_impl(HAK_PAGE_SIZE, size), HAK_TR_VALLOC, size, 0);
}

hak_api void *hak_pvalloc(size_t size) {
  return traced(pvalloc_impl(size), HAK_TR_PVALLOC, size, 0);
}

hak_api int hak_trim(void) {
  if (hak_tc->state == HAK_TC_LIVE) hak_remote_flush(hak_tc);
  size_t released = hak_superslab_trim(true) + hak_large_trim(true);
  traced(NULL, HAK_TR_TRIM, 0, 0);
  return released > 0;
}

hak_api int hak_version(void) { return HAKMEM_VERSION; }

hak_api int hak_owns(const void *ptr) {
  uintptr_t u = (uintptr_t)ptr;
  unsigned kind = hak_registry_kind(u);
  if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR)
    return hak_large_peek(ptr, (int)kind) != NULL;
  uint8_t *base;
  hak_slab_t *m = kind == HAK_REGION_SS ? slab_in_ss(hak_registry_ss_peek(u), u, &base) : NULL;
  if (m == NULL) return 0;
  if (base + HAK_HDR_SIZE != (const uint8_t *)ptr) return aligned_mark_of(ptr, base) != NULL;
  if (!block_carved(m, base)) return 0;
#if !HAKMEM_TINY_HEADERLESS
  return (*(uint64_t *)base & ~HAK_HDR_FORM_MASK) == HAK_HDR_ALLOC(m->class_idx);
#else
  return 1;
#endif
}

hak_api void hak_config_get(hak_config_t *out) {
  out->headerless = HAKMEM_TINY_HEADERLESS;
  out->tls_hint = HAK_HINT_COMPILED;
  out->override = HAKMEM_OVERRIDE;
  out->asan = HAKMEM_ASAN;
  out->tiny_max = HAK_TINY_MAX;
  out->mid_max = HAK_MID_MAX;
  out->checked = HAKMEM_CHECKED;
  out->debug = HAKMEM_DEBUG;
}

hak_api long hak_option_get(const char *name) {
  hak_process_init();
  return hak_options_lookup(name);
}
