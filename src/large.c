/* Large blocks (above HAK_MID_MAX): each in its own mapping, aligned to a registry region, with
 * a cache of freed mappings for reuse and a decay before they go back to the OS.
 *
 * Layout: the mapping starts on a region boundary with the header (hak_large_t); the user
 * pointer follows at max(HAK_LARGE_HDR, alignment). For alignments of a region or more the
 * user pointer starts a region of its own and the header sits just below it (LARGE_FAR).
 * Exactly one region per mapping is registered: the one holding the user pointer.
 *
 * Reuse: a request takes the smallest cached mapping large enough (its tail unmapped when it is
 * much larger) or, failing that, the largest one of at least half its size, moved by mremap to
 * a new aligned place and grown: the pages a freed block populated serve the next block of
 * another size without page faults.
 *
 * Invariants: a cached mapping stays registered with user == NULL, so a second free of it is a
 * diagnosed double free; it is unregistered before it is unmapped or moved; the cache holds at most
 * HAKMEM_LARGE_CACHE_MB; entries older than the decay are unmapped on the next large call (or
 * by the purge thread); large_pending is true whenever the cache holds a mapping (set by the
 * free that caches it, recomputed by every decay pass; a reuse may leave it stale-true).
 * Checked builds: a cached mapping holds HAK_FREE_FILL in the page after its header, verified
 * when the mapping is reused (the rest of a large block is not covered).
 */
#include <string.h>

#include "internal.h"
#include "tiny/registry.h"

#define HAK_LARGE_HDR ((size_t)128)

static hak_lock_t large_lock;
static hak_large_t *cache;  /* most recently freed first */
static size_t cache_bytes;
static _Atomic(bool) large_pending; /* written under large_lock, peeked without */

static size_t page_up(size_t n) { return (n + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1); }

hak_large_t *hak_large_header_at(uintptr_t region, int kind) {
  return (hak_large_t *)(kind == HAK_REGION_LARGE ? region : region - HAK_LARGE_HDR);
}

hak_large_t *hak_large_peek(const void *p, int kind) {
  hak_large_t *h = hak_large_header_at((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK, kind);
  if (h->magic != (HAK_LARGE_MAGIC ^ (uintptr_t)h) || h->user != p) return NULL;
  return h;
}

hak_large_t *hak_large_lookup(const void *p, int kind) {
  hak_large_t *h = hak_large_header_at((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK, kind);
  if (h->magic != (HAK_LARGE_MAGIC ^ (uintptr_t)h))
    hak_fail("invalid free (corrupt large header)", p, h, -1);
  if (h->user == NULL) hak_fail("double free", p, h, -1);
  if (h->user != p) hak_fail("invalid free (interior pointer)", p, h, -1);
  return h;
}

/* The region a mapping's registry entry names (the one holding the user pointer). */
static uintptr_t entry_region(const hak_large_t *h) {
  return h->far ? (uintptr_t)h + HAK_LARGE_HDR : (uintptr_t)h;
}

static void unmap_entry(hak_large_t *h) {
  hak_registry_clear(entry_region(h));
  h->magic = 0;
  hak_ring_event("large_unmap", h->map, h->map_size);
  hak_crash_note_unmap(h->map, h->map_size, HAK_REGION_LARGE);
  hak_os_unmap(h->map, h->map_size);
}

/* Takes the entry at link off the cache and unmaps it; its size. */
static size_t cache_unlink(hak_large_t **link) {
  hak_large_t *h = *link;
  size_t size = h->map_size;
  *link = h->next;
  cache_bytes -= size;
  unmap_entry(h);
  return size;
}

/* Unmaps cached entries older than the decay (all of them when forced), then the oldest ones
 * while the cache is over budget; the bytes given back. Called with large_lock held. */
static size_t decay_locked(uint64_t now, bool force, size_t budget) {
  size_t released = 0;
  for (hak_large_t **link = &cache; *link != NULL;) {
    if (force || now - (*link)->freed_ms >= (uint64_t)hak_opt.decay_ms) {
      released += cache_unlink(link);
    } else {
      link = &(*link)->next;
    }
  }
  while (cache_bytes > budget) {
    hak_large_t **oldest = &cache;
    for (hak_large_t **link = &cache; *link != NULL; link = &(*link)->next)
      if ((*link)->freed_ms <= (*oldest)->freed_ms) oldest = link;
    released += cache_unlink(oldest);
  }
  atomic_store_explicit(&large_pending, cache != NULL, hak_relaxed);
  return released;
}

/* ---- checked builds: the fill of a cached mapping ------------------------------------------ */

#if HAKMEM_CHECKED
#define LARGE_FILL_BYTES HAK_PAGE_SIZE /* map_size > HAK_MID_MAX: always room for it */

static void large_fill(hak_large_t *h) {
  memset(h->map + HAK_LARGE_HDR, HAK_FREE_FILL, LARGE_FILL_BYTES);
}

static void large_verify(hak_large_t *h) {
  uint8_t *p = h->map + HAK_LARGE_HDR;
  size_t at = hak_checked_fill_changed(p, LARGE_FILL_BYTES);
  if (hak_unlikely(at != LARGE_FILL_BYTES))
    hak_fail("free block modified after free (use after free?)", p + at, h, -1);
}
#endif

/* Cut h down to map_size bytes: its tail goes back to the OS (the head keeps its pages). */
static void entry_shrink(hak_large_t *h, size_t map_size) {
  hak_crash_note_unmap(h->map + map_size, h->map_size - map_size, HAK_REGION_LARGE);
  hak_os_unmap(h->map + map_size, h->map_size - map_size);
  h->map_size = map_size;
}

/* Move h to a fresh region-aligned place grown to map_size (its pages move without a fault);
 * the new header, or NULL when the move failed (h is then unchanged). */
static hak_large_t *entry_grow(hak_large_t *h, size_t map_size) {
  uint8_t *old = h->map;
  size_t old_size = h->map_size;
  /* Unregistered before the move frees the old range: another thread may map it at once and
   * register it as its own, and a lookup of the old address (a stale free, hak_owns) must not
   * read the header there meanwhile. */
#if !HAK_PLANTED(large_grow_late_unregister) /* planted bug: cleared below, after the move */
  hak_registry_clear((uintptr_t)old);
#endif
  uint8_t *map = hak_os_remap_aligned(old, old_size, map_size, HAK_SS_SIZE);
  if (map == NULL) {
    hak_registry_set((uintptr_t)old, HAK_REGION_LARGE);
    return NULL;
  }
  hak_sched_point(HAK_SP_LARGE_GROW, old);
#if HAK_PLANTED(large_grow_late_unregister) /* planted bug: the late clear */
  hak_registry_clear((uintptr_t)old);
#endif
  hak_crash_note_unmap(old, old_size, HAK_REGION_LARGE);
  hak_ring_event("large_grow", map, map_size);
  h = (hak_large_t *)map;
  h->magic = HAK_LARGE_MAGIC ^ (uintptr_t)h;
  h->map = map;
  h->map_size = map_size;
  hak_registry_set((uintptr_t)map, HAK_REGION_LARGE);
  return h;
}

/* A cached mapping for map_size bytes, taken off the cache, or NULL: the smallest one large
 * enough, else the largest one of at least half the size (entry_fit grows it), so blocks of
 * varying sizes reuse each other's populated pages instead of faulting in new ones. Cached
 * mappings are never far. Called with large_lock held. */
static hak_large_t *cache_take(size_t map_size) {
  hak_large_t **fit = NULL, **grow = NULL;
  for (hak_large_t **link = &cache; *link != NULL; link = &(*link)->next) {
    size_t size = (*link)->map_size;
    if (size >= map_size && (fit == NULL || size < (*fit)->map_size)) fit = link;
    if (size < map_size && size >= map_size / 2 && (grow == NULL || size > (*grow)->map_size))
      grow = link;
  }
  hak_large_t **link = fit != NULL ? fit : grow;
  if (link == NULL) return NULL;
  hak_large_t *h = *link;
  *link = h->next;
  cache_bytes -= h->map_size;
#if HAKMEM_CHECKED
  large_verify(h);
#endif
  return h;
}

/* A mapping taken off the cache made map_size bytes: cut down when much larger, grown when
 * smaller. NULL when growing failed (the mapping is then unmapped). No lock held. */
static hak_large_t *entry_fit(hak_large_t *h, size_t map_size) {
  if (h->map_size > map_size + map_size / 8 + HAK_PAGE_SIZE) entry_shrink(h, map_size);
  if (h->map_size >= map_size) return h;
  hak_large_t *grown = entry_grow(h, map_size);
  if (grown == NULL) unmap_entry(h);
  return grown;
}

static hak_large_t *map_new(size_t map_size, size_t align) {
  bool far = align >= HAK_SS_SIZE;
  uint8_t *map = far ? hak_os_map_aligned(map_size, align) : hak_os_map_aligned(map_size, HAK_SS_SIZE);
  if (map == NULL) return NULL;
  hak_ring_event("large_map", map, map_size);
  hak_os_thp(map, map_size, hak_opt.thp != HAK_THP_NEVER);
  hak_large_t *h = far ? (hak_large_t *)(map + align - HAK_LARGE_HDR) : (hak_large_t *)map;
  h->magic = HAK_LARGE_MAGIC ^ (uintptr_t)h;
  h->map = map;
  h->map_size = map_size;
  h->far = far;
  h->fresh = 1;
  hak_registry_set(far ? (uintptr_t)(map + align) : (uintptr_t)map,
                   far ? HAK_REGION_LARGE_FAR : HAK_REGION_LARGE);
  return h;
}

void *hak_large_alloc(size_t size, size_t align, bool zero) {
  bool far = align >= HAK_SS_SIZE;
  size_t off = far ? align : (align > HAK_LARGE_HDR ? align : HAK_LARGE_HDR);
  if (size > (size_t)PTRDIFF_MAX - off - HAK_PAGE_SIZE) return NULL;
  size_t map_size = page_up(off + (size ? size : 1)); /* the user pointer lies inside */
  hak_large_t *h = NULL;
  hak_lock(&large_lock);
  if (!far) h = cache_take(map_size);
  hak_unlock(&large_lock);
  if (h != NULL) h = entry_fit(h, map_size);
  bool hit = h != NULL;
  if (h == NULL && (h = map_new(map_size, align)) == NULL) return NULL;
  h->user = far ? (uint8_t *)h + HAK_LARGE_HDR : h->map + off;
  h->usable = (size_t)(h->map + h->map_size - h->user);
  if (zero && !h->fresh) memset(h->user, 0, size);
  h->fresh = 0;
  hak_gstat_add(HAK_G_LARGE_ALLOCS, 1);
  hak_gstat_add(HAK_G_LARGE_LIVE_BYTES, (int64_t)h->usable);
  if (hit) hak_gstat_add(HAK_G_LARGE_CACHE_HITS, 1);
  return h->user;
}

void hak_large_free(void *p, hak_large_t *h) {
  (void)p;
  hak_gstat_add(HAK_G_LARGE_FREES, 1);
  hak_gstat_add(HAK_G_LARGE_LIVE_BYTES, -(int64_t)h->usable);
  h->user = NULL;
  uint64_t now = hak_os_now_ms();
  size_t budget = (size_t)hak_opt.large_cache_mb << 20;
  hak_lock(&large_lock);
  if (h->far || h->map_size > budget) {
    hak_unlock(&large_lock);
    unmap_entry(h);
    return;
  }
  h->freed_ms = now;
#if HAKMEM_CHECKED
  large_fill(h);
#endif
  h->next = cache;
  cache = h;
  cache_bytes += h->map_size;
  decay_locked(now, false, budget);
  hak_unlock(&large_lock);
}

size_t hak_large_trim(bool force) {
  hak_lock(&large_lock);
  size_t n = decay_locked(hak_os_now_ms(), force, (size_t)hak_opt.large_cache_mb << 20);
  hak_unlock(&large_lock);
  return n;
}

bool hak_large_pending(void) { return atomic_load_explicit(&large_pending, hak_relaxed); }

void hak_large_lock_all(void) { hak_lock(&large_lock); }
void hak_large_unlock_all(void) { hak_unlock(&large_lock); }
