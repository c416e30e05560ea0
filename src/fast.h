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

/* ---- malloc --------------------------------------------------------------------------------- */

/* A block of class c4 / HAK_CLASS_SCALE off the thread's TLS SLL, or NULL when the list is
 * empty. The list and the counter are addressed as their array's start plus c4 times 4 and 2:
 * &tc->sll[c] and &tc->stat.allocs[c], each one address computation. */
static inline __attribute__((always_inline)) void *hak_sll_alloc4(unsigned c4) {
  _Static_assert(sizeof(hak_sll_t) == 4 * HAK_CLASS_SCALE &&
                     sizeof(((hak_tstat_t *)0)->allocs[0]) == 2 * HAK_CLASS_SCALE &&
                     sizeof(((hak_tstat_t *)0)->frees[0]) == 2 * HAK_CLASS_SCALE,
                 "a scaled class addresses the TLS SLLs and the counters");
  hak_tcache_t *tc = hak_tc;
  hak_class_t c = c4 / HAK_CLASS_SCALE;
  void *b = hak_sll_pop4(tc->sll, c4);
  if (hak_unlikely(b == NULL)) return NULL;
  hak_stat_inc(*(_Atomic(uint64_t) *)((char *)tc->stat.allocs + (uintptr_t)c4 * 2));
  return hak_bridge_out(b, c, (uint32_t)(hak_class_raw_size(c) + HAK_STRIDE_EXTRA));
}

static inline __attribute__((always_inline)) void *hak_sll_alloc(hak_class_t c) {
  return hak_sll_alloc4(c * HAK_CLASS_SCALE);
}

/* malloc without recording (the other entry points use it and record their own call): a tiny
 * request's class is one table load, a mid request's a few instructions, and either is served
 * from the TLS SLL when it has a block. */
static inline void *hak_alloc_fast(size_t n) {
  void *p = NULL;
  if (hak_likely(n <= HAK_TINY_REQ_MAX)) p = hak_sll_alloc4(hak_class4_by_size[n]);
  else if (n <= HAK_SLAB_REQ_MAX) p = hak_sll_alloc(hak_size_class(n));
  if (hak_likely(p != NULL)) return p;
  return hak_malloc_slow(n);
}

/* ---- free ----------------------------------------------------------------------------------- */

/* The run of SuperSlab ss holding u, or NULL when u is not exactly the user pointer of a
 * carved block (the slow path then sorts out large blocks, aligned blocks and invalid
 * pointers). ss is registered with an intact magic, or vouched for by the hint box. A free run
 * has carved 0, so a run that passes is bound, or was bound while this free read it: a free
 * run's class is never used before the owner check (hak_free_in), which only this thread's
 * own bind passes, or the remote path's class check. */
static inline hak_slab_t *hak_block_run(hak_superslab_t *ss, uintptr_t u) {
  hak_slab_t *m = hak_run_in(ss, u);
#if HAKMEM_CHECKED /* the checked bridge fills the block by the run's stride: a bound run only */
  if (hak_unlikely(m->class_idx >= HAK_NUM_CLASSES)) return NULL;
#endif
  uint64_t off = (uint64_t)(u - HAK_HDR_SIZE - (uintptr_t)m->data);
  /* Carved (before the block left its thread) and on a boundary. */
#if HAK_PLANTED(uncarved_free) /* planted bug: a block never carved passes */
  if (hak_unlikely(hak_run_block_index(m, off) >= m->capacity)) return NULL;
#else
  if (hak_unlikely(!hak_below_word(hak_run_block_index(m, off), &m->carved))) return NULL;
#endif
  return m;
}

/* The free of p once its SuperSlab ss is known. Every exit is a return or a tail call, so the
 * path needs no stack frame. */
static inline __attribute__((always_inline)) void hak_free_in(void *p, hak_tcache_t *tc,
                                                              hak_superslab_t *ss) {
  hak_slab_t *m = hak_block_run(ss, (uintptr_t)p);
  if (hak_unlikely(m == NULL)) {
    hak_free_slow(p);
    return;
  }
  void *base = hak_bridge_base(p);
  if (hak_unlikely(!hak_bridge_in(base, m->class_idx, m->stride))) {
    hak_free_slow(p);
    return;
  }
  if (hak_unlikely(hak_word_ne(&m->owner, (uintptr_t)tc))) {
    hak_free_remote_mt(m, base, tc);
    return;
  }
  /* This thread owns the run: it bound it after the class was set (superslab.c), and unbinds
   * it before the class is reset, so class4 is HAK_CLASS_SCALE times a class. It addresses the
   * class's TLS SLL (16 bytes) and free counter (8) as one index each, as malloc does. */
  uintptr_t c4 = m->class4;
  hak_stat_inc(*(_Atomic(uint64_t) *)((char *)tc->stat.frees + c4 * 2));
#if HAK_PLANTED(sll_userptr)
  base = p; /* planted bug: the user pointer goes onto the TLS SLL */
#endif
  if (hak_unlikely(hak_sll_push4(tc->sll, c4, base)))
    hak_spill_slow(tc, (hak_class_t)(c4 / HAK_CLASS_SCALE));
}

/* The free of p: hak_free (entry: the public entry point, behind the trace gate) or an
 * internal free (which records nothing). With the hint box a hit vouches for the SuperSlab and
 * a miss goes out of line (hint.c: the trace flag for an entry, the registry, the insert, the
 * miss counted, then this same free); no hint is inserted while the gate is shut, so every
 * entry free then misses. Without the hint box the registry is asked inline; the entry's range
 * check is the gate itself. NULL needs no test of its own: no hint or registry entry covers
 * address 0, so it takes the slow path, which returns. */
static inline __attribute__((always_inline)) void hak_free_as(void *p, bool entry) {
  hak_tcache_t *tc = hak_tc;
  uintptr_t u = (uintptr_t)p;
#if HAK_HINT_COMPILED
  uintptr_t ss = u & ~(uintptr_t)HAK_SS_MASK;
  if (hak_unlikely(!hak_hint_hit(tc, ss))) {
    hak_free_hint_miss(p, tc, entry);
    return;
  }
  hak_free_in(p, tc, (hak_superslab_t *)ss);
#else
  if (entry && hak_unlikely(!hak_below_word(u, &hak_gate_addr))) {
    hak_free_gated(p);
    return;
  }
  if (!entry && hak_unlikely(u >> HAK_ADDR_BITS)) {
    hak_free_slow(p);
    return;
  }
  hak_superslab_t *ss = hak_registry_ss_below(u);
  if (hak_unlikely(ss == NULL)) {
    hak_free_slow(p);
    return;
  }
  hak_free_in(p, tc, ss);
#endif
}

static inline __attribute__((always_inline)) void hak_free_fast(void *p) { hak_free_as(p, false); }

/* ---- entry points ----------------------------------------------------------------------- */

/* What malloc/hak_malloc and free/hak_free do (api.c and override.c both inline these). Their
 * fast paths are behind the gates (internal.h), shut while the trace flag is up, so the flag
 * itself is tested only on the gated ways: malloc's of a request at or above the gate (a mid
 * request then pops its class's list there: hak_malloc_gated), free's of an address at or
 * above it or of a hint miss. */
static inline __attribute__((always_inline)) void *hak_malloc_entry(size_t n) {
  if (hak_likely(hak_below_word(n, &hak_gate_size))) {
    void *p = hak_sll_alloc4(hak_class4_by_size[n]);
    if (hak_likely(p != NULL)) return p;
    return hak_malloc_slow(n);
  }
  return hak_malloc_gated(n);
}

static inline __attribute__((always_inline)) void hak_free_entry(void *p) { hak_free_as(p, true); }

#endif /* HAKMEM_FAST_H */
