/* Large blocks (above HAK_MID_MAX): each in its own mapping, aligned to a registry region, with
 * a cache of freed mappings for reuse and a decay before they go back to the OS.
 *
 * Layout: the mapping starts on a region boundary with the header (hak_large_t); the user
 * pointer follows at max(HAK_LARGE_HDR, alignment). For alignments of a region or more the
 * user pointer starts a region of its own and the header sits just below it (LARGE_FAR).
 * Exactly one region per mapping is registered: the one holding the user pointer.
 *
 * Reuse: a request takes the smallest cached mapping large enough, split at a region boundary
 * when much larger (the tail stays cached as a mapping of its own), and freed neighbours in the
 * cache join again: blocks of varying sizes reuse each other's populated pages where they are.
 * When no cached mapping is large enough the request maps a new one; with HAKMEM_LARGE_MOVE=1
 * it takes the largest ones until they add up to the request instead and moves their pages by
 * mremap, one after another, into its new mapping (no page fault for them, but on some
 * virtual machines the first touch of each moved page costs more than a fault: off by default).
 *
 * Budget: the cache holds HAKMEM_LARGE_CACHE_MB, or HAKMEM_LARGE_CACHE_PCT percent of the
 * live large bytes when that is more (a program that keeps 1 GiB of large blocks and replaces
 * them keeps a proportional reserve, as a small one keeps a fixed one).
 *
 * Invariants: the cache is sorted by address and no two of its mappings touch (a free joins
 * them); a cached mapping stays registered with user == NULL, so a second free of it is a
 * diagnosed double free; it is unregistered before it is unmapped, moved or joined into its
 * lower neighbour (a lookup of its old place then never reads a header that is gone); the cache holds at most the budget; entries older than the decay are
 * unmapped on the next large call (or by the purge thread); large_pending is true whenever the
 * cache holds a mapping (set by the free that caches it, recomputed by every decay pass; a
 * reuse may leave it stale-true).
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

/* The cache's budget now: the fixed floor, or the share of the live large bytes above it. */
static size_t cache_budget(void) {
  size_t floor = (size_t)hak_opt.large_cache_mb << 20;
  int64_t live = hak_gstat_read(HAK_G_LARGE_LIVE_BYTES);
  size_t share = live > 0 ? (size_t)live / 100 * (size_t)hak_opt.large_cache_pct : 0;
  return share > floor ? share : floor;
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

/* Joins h's upper neighbour nb (h->map + h->map_size == nb->map) into h: nb's header becomes
 * part of h's pages. Called with large_lock held, nb off the cache or being taken off it. */
static void entry_join(hak_large_t *h, hak_large_t *nb) {
  hak_registry_clear(entry_region(nb));
  nb->magic = 0;
  h->map_size += nb->map_size;
  if (nb->freed_ms > h->freed_ms) h->freed_ms = nb->freed_ms;
}

/* Puts h on the cache at its address, joined with the cached mappings it touches. Called
 * with large_lock held. */
static void cache_insert(hak_large_t *h) {
  hak_large_t **link = &cache, *prev = NULL;
  while (*link != NULL && (*link)->map < h->map) {
    prev = *link;
    link = &(*link)->next;
  }
  hak_large_t *next = *link;
  cache_bytes += h->map_size;
  h->next = next;
  if (next != NULL && h->map + h->map_size == next->map) {
    h->next = next->next;
    entry_join(h, next);
  }
  if (prev != NULL && prev->map + prev->map_size == h->map) {
    prev->next = h->next;
    entry_join(prev, h);
  } else {
    *link = h;
  }
}

#if HAKMEM_CHECKED
static void large_fill(hak_large_t *h);
#endif

/* h, just taken off the cache for map_size bytes and larger, keeps the first regions that
 * hold map_size; the rest, from the next region boundary, goes back on the cache as a mapping
 * of its own with its pages (they stay populated for the next request). Called with large_lock
 * held. When less than a region would remain, h stays whole. */
static void entry_split(hak_large_t *h, size_t map_size) {
  uintptr_t at = ((uintptr_t)h->map + map_size + HAK_SS_SIZE - 1) & ~(uintptr_t)HAK_SS_MASK;
  uintptr_t end = (uintptr_t)h->map + h->map_size;
  if (end < at || end - at < HAK_SS_SIZE) return;
  hak_large_t *t = (hak_large_t *)at;
  t->magic = HAK_LARGE_MAGIC ^ (uintptr_t)t;
  t->map = (uint8_t *)at;
  t->map_size = end - at;
  t->far = 0;
  t->fresh = 0;
  t->user = NULL;
  t->freed_ms = h->freed_ms;
#if HAKMEM_CHECKED
  large_fill(t);
#endif
  h->map_size = at - (uintptr_t)h->map;
  hak_registry_set(at, HAK_REGION_LARGE);
  cache_insert(t);
}

/* The header of a mapping made of moved pages (not fresh: calloc zeroes it), registered. */
static hak_large_t *entry_new_header(uint8_t *map, size_t map_size) {
  hak_large_t *h = (hak_large_t *)map;
  h->magic = HAK_LARGE_MAGIC ^ (uintptr_t)h;
  h->map = map;
  h->map_size = map_size;
  h->far = 0;
  h->fresh = 0;
  hak_registry_set((uintptr_t)map, HAK_REGION_LARGE);
  return h;
}

/* Moves the pages of the mappings in chain (taken off the cache, linked through next) one
 * after another into a new region-aligned mapping of map_size bytes: they move without a
 * fault, and what they do not cover reads as zero. Pages of a mapping beyond map_size go back
 * to the OS. The new header, or NULL when no mapping could be made (the chain is unmapped).
 * No lock held. */
static hak_large_t *entry_gather(hak_large_t *chain, size_t map_size) {
  uint8_t *map = hak_os_map_aligned(map_size, HAK_SS_SIZE);
  if (map != NULL) hak_os_thp(map, map_size, hak_opt.thp != HAK_THP_NEVER);
  size_t off = 0;
  while (chain != NULL) {
    hak_large_t *h = chain;
    chain = h->next;
    uint8_t *old = h->map;
    size_t old_size = h->map_size;
    size_t n = map == NULL ? 0 : (old_size < map_size - off ? old_size : map_size - off);
    /* Unregistered before the move frees the old range: another thread may map it at once and
     * register it as its own, and a lookup of the old address (a stale free, hak_owns) must
     * not read the header there meanwhile. */
#if !HAK_PLANTED(large_grow_late_unregister) /* planted bug: cleared below, after the move */
    hak_registry_clear((uintptr_t)old);
#endif
    h->magic = 0;
    if (n > 0 && hak_os_move(old, n, map + off)) {
      hak_sched_point(HAK_SP_LARGE_GROW, old);
      off += n;
    } else {
      n = 0;
    }
#if HAK_PLANTED(large_grow_late_unregister) /* planted bug: the late clear */
    hak_registry_clear((uintptr_t)old);
#endif
    hak_crash_note_unmap(old, old_size, HAK_REGION_LARGE);
    if (n < old_size) hak_os_unmap(old + n, old_size - n);
  }
  if (map == NULL) return NULL;
  hak_ring_event("large_gather", map, map_size);
  return entry_new_header(map, map_size);
}

/* Takes the entry at link off the cache (checked builds: its fill verified). */
static hak_large_t *cache_remove(hak_large_t **link) {
  hak_large_t *h = *link;
  *link = h->next;
  h->next = NULL;
  cache_bytes -= h->map_size;
#if HAKMEM_CHECKED
  large_verify(h);
#endif
  return h;
}

/* Cached mappings for map_size bytes, taken off the cache, or NULL. *whole: one mapping large
 * enough, the smallest (split when much larger; entry_purge_slack). Else, with HAKMEM_LARGE_MOVE=1, a
 * chain, linked through next, of the largest ones until they add up to map_size, the last one
 * split when much larger (entry_gather moves them into one mapping); at most HAK_LARGE_GATHER
 * of them. Cached mappings are never far. Called with large_lock held. */
#define HAK_LARGE_GATHER 16
static hak_large_t *cache_take(size_t map_size, bool *whole) {
  hak_large_t **fit = NULL;
  for (hak_large_t **link = &cache; *link != NULL; link = &(*link)->next)
    if ((*link)->map_size >= map_size && (fit == NULL || (*link)->map_size < (*fit)->map_size))
      fit = link;
  *whole = fit != NULL;
  if (fit != NULL) {
    hak_large_t *h = cache_remove(fit);
    entry_split(h, map_size);
    return h;
  }
  hak_large_t *chain = NULL, **tail = &chain;
  size_t sum = 0;
  int most = hak_opt.large_move ? HAK_LARGE_GATHER : 0;
  for (int k = 0; k < most && sum < map_size && cache != NULL; k++) {
    hak_large_t **largest = &cache;
    for (hak_large_t **link = &cache; *link != NULL; link = &(*link)->next)
      if ((*link)->map_size > (*largest)->map_size) largest = link;
    hak_large_t *h = cache_remove(largest);
    entry_split(h, map_size - sum);
    sum += h->map_size;
    *tail = h;
    tail = &h->next;
  }
  return chain;
}

/* A cached mapping large enough for map_size bytes, taken off the cache (and split there): its
 * pages past the request go back to the OS when they are more than a quarter of it (the
 * addresses stay, so the mapping still joins its cached neighbours when it is freed). No lock
 * held. */
static hak_large_t *entry_purge_slack(hak_large_t *h, size_t map_size) {
  size_t slack = h->map_size - map_size;
  if (slack > map_size / 4 + HAK_PAGE_SIZE) hak_os_purge(h->map + map_size, slack);
  return h;
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
  bool whole = false;
  hak_lock(&large_lock);
  if (!far) h = cache_take(map_size, &whole);
  hak_unlock(&large_lock);
  if (h != NULL) h = whole ? entry_purge_slack(h, map_size) : entry_gather(h, map_size);
  bool hit = h != NULL;
  if (h == NULL && (h = map_new(map_size, align)) == NULL) return NULL;
  h->user = far ? (uint8_t *)h + HAK_LARGE_HDR : h->map + off;
  h->usable = (size_t)(h->map + h->map_size - h->user);
  if (zero && !h->fresh) memset(h->user, 0, size);
  h->fresh = 0;
  h->form = 0; /* operator new records its own (api.c) */
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
  size_t budget = cache_budget();
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
  cache_insert(h);
  decay_locked(now, false, budget);
  hak_unlock(&large_lock);
}

size_t hak_large_trim(bool force) {
  size_t budget = cache_budget();
  hak_lock(&large_lock);
  size_t n = decay_locked(hak_os_now_ms(), force, budget);
  hak_unlock(&large_lock);
  return n;
}

bool hak_large_pending(void) { return atomic_load_explicit(&large_pending, hak_relaxed); }

void hak_large_lock_all(void) { hak_lock(&large_lock); }
void hak_large_unlock_all(void) { hak_unlock(&large_lock); }
