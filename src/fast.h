/* The fast paths of malloc and free, inline for api.c and override.c.
 *
 * malloc: size -> class (one table load), pop the thread's TLS SLL, encode the user pointer.
 * free:   region (hint or registry) -> slab -> class and block checks -> decode -> push onto
 *         the TLS SLL when this thread owns the slab, else the remote queue (slow path).
 * Neither takes a lock or performs an atomic read-modify-write. The thread cache starts as a
 * static empty cache, so "not initialised" and "list empty" are one branch. */
#ifndef HAKMEM_FAST_H
#define HAKMEM_FAST_H

#include "internal.h"
#include "tiny/hint.h"
#include "tiny/ptr_bridge.h"
#include "tiny/registry.h"
#include "tiny/tls_sll.h"

/* ---- size classes ------------------------------------------------------------------------ */

/* Class sizes before the pointer-mode extra: 16, 32 .. 128, then four steps per doubling up to
 * HAK_MID_MAX. Usable bytes are this plus HAK_HDR_SIZE in header mode (stride = size + 16). */
static inline size_t hak_class_raw_size(unsigned c) {
  if (c < 8) return 16u * (c + 1);
  unsigned k = c - 8;
  size_t base = (size_t)128 << (k / 4);
  return base + (base >> 2) * (k % 4 + 1);
}

/* Bucket (m + 15) / 16 -> class, for m <= HAK_TINY_MAX. */
extern const uint8_t hak_tiny_class_of[HAK_TINY_MAX / 16 + 1];

/* The request the class table sees: header mode gets 8 of the usable bytes for free. */
static inline size_t hak_class_key(size_t n) {
#if HAKMEM_TINY_HEADERLESS
  return n;
#else
  return n > HAK_HDR_SIZE ? n - HAK_HDR_SIZE : 0;
#endif
}

/* Class of a request of n bytes, n <= HAK_MID_MAX + HAK_HDR_SIZE. */
static inline unsigned hak_size_class(size_t n) {
  size_t m = hak_class_key(n);
  if (m <= HAK_TINY_MAX) return hak_tiny_class_of[(m + 15) >> 4];
  unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)(m - 1));
  size_t idx = (m - 1 - ((size_t)1 << e)) >> (e - 2);
  return 8u + (e - 7u) * 4u + (unsigned)idx;
}

#define HAK_SLAB_REQ_MAX (HAK_MID_MAX + HAK_HDR_SIZE)

/* ---- malloc --------------------------------------------------------------------------------- */

static inline void *hak_alloc_fast(size_t n) {
  if (hak_likely(n <= HAK_TINY_MAX + HAK_HDR_SIZE)) {
    unsigned c = hak_tiny_class_of[(hak_class_key(n) + 15) >> 4];
    hak_tcache_t *tc = hak_tc;
    void *b = hak_sll_pop(&tc->sll[c]);
    if (hak_likely(b != NULL)) {
      hak_stat_inc(tc->stat.allocs[c]);
      return hak_bridge_out(b, c, (uint32_t)(hak_class_raw_size(c) + HAK_STRIDE_EXTRA));
    }
  }
  return hak_malloc_slow(n);
}

/* ---- free ----------------------------------------------------------------------------------- */

/* The slab run holding p, or NULL when p is not exactly the user pointer of a carved block in
 * a bound run of a registered SuperSlab (the slow path then sorts out large blocks, aligned
 * blocks and invalid pointers). *hit reports a hint-box hit. */
static inline hak_slab_t *hak_slab_of_block(uintptr_t u, hak_tcache_t *tc, bool *hit) {
  uintptr_t ssa = u & ~(uintptr_t)HAK_SS_MASK;
  *hit = hak_hint_hit(tc, ssa);
  hak_superslab_t *ss = (hak_superslab_t *)ssa;
  if (!*hit && hak_unlikely((ss = hak_registry_ss(u)) == NULL)) return NULL;
  hak_slab_t *m = hak_run_in(ss, u);
  if (hak_unlikely(m->class_idx >= HAK_NUM_CLASSES)) return NULL;
  uint64_t off = (uint64_t)(u - HAK_HDR_SIZE - (uintptr_t)m->data);
#if HAK_PLANTED(uncarved_free) /* planted bug: a block never carved passes */
  uint64_t limit = m->capacity;
#else
  uint64_t limit = atomic_load_explicit(&m->carved, hak_relaxed); /* carved before it left */
#endif
  if (hak_unlikely(hak_run_block_index(m, off) >= limit)) return NULL; /* carved, on a boundary */
  return m;
}

/* Every exit from the fast path is either a return or a tail call, so the hit path needs no
 * stack frame. */
static inline __attribute__((always_inline)) void hak_free_fast(void *p) {
  if (hak_unlikely(p == NULL)) return;
  hak_tcache_t *tc = hak_tc;
  bool hit;
  hak_slab_t *m = hak_slab_of_block((uintptr_t)p, tc, &hit);
  if (hak_unlikely(m == NULL)) {
    hak_free_slow(p);
    return;
  }
  unsigned c = m->class_idx;
  void *base = hak_bridge_base(p);
  if (hak_unlikely(!hak_bridge_in(base, c, m->stride))) {
    hak_free_slow(p);
    return;
  }
  if (hak_unlikely(atomic_load_explicit(&m->owner, hak_relaxed) != tc)) {
    hak_free_remote_mt(m, base, tc, hit);
    return;
  }
#if HAK_HINT_COMPILED
  if (hak_unlikely(!hit)) {
    hak_free_local_hint_miss(tc, base, c);
    return;
  }
  hak_stat_inc(tc->stat.hint_hits[c]);
#endif
  hak_stat_inc(tc->stat.frees[c]);
#if HAK_PLANTED(sll_userptr)
  base = p; /* planted bug: the user pointer goes onto the TLS SLL */
#endif
  if (hak_unlikely(hak_sll_push(&tc->sll[c], base))) hak_spill_slow(tc, (int)c);
}

/* ---- entry points ----------------------------------------------------------------------- */

/* What malloc/hak_malloc and free/hak_free do: one test of the trace flag, then the fast path
 * (api.c and override.c both inline these). */
static inline __attribute__((always_inline)) void *hak_malloc_entry(size_t n) {
  if (hak_tracing()) return hak_malloc_traced(n);
  return hak_alloc_fast(n);
}

static inline __attribute__((always_inline)) void hak_free_entry(void *p) {
  if (hak_tracing()) {
    hak_free_traced(p);
    return;
  }
  hak_free_fast(p);
}

#endif /* HAKMEM_FAST_H */
