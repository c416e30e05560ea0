/* SuperSlab / slab: 2 MiB regions cut into 64 KiB slabs; runs of slabs bound to a class.
 *
 * Boundary: hak_superslab_take_run() binds a free run to a class (geometry only, no owner);
 * hak_superslab_release_run() takes back a fully free, owner-less run; hak_superslab_trim()
 * returns memory to the OS after the decay (or at once, for malloc_trim); hak_superslab_pending()
 * tells the purge thread whether the decay has anything left to return.
 *
 * Invariants (asserted in debug builds):
 *   - magic == HAK_SS_MAGIC ^ address while the region is registered;
 *   - a bound run has class_idx < HAK_NUM_CLASSES, used <= carved <= capacity;
 *   - generation bumps every time an empty SuperSlab is reused, and so does the release epoch
 *     (hint.h: an unchanged epoch proves an unchanged generation);
 *   - a SuperSlab is unregistered (and the release epoch bumped) before it is unmapped, and only
 *     when every slab is free: no block of it is live or cached anywhere;
 *   - slab states, free_mask, dirty_mask and the lists change only under ss_lock;
 *   - ss_pending is true whenever the decay has something left to return (a dirty slab, an
 *     empty SuperSlab it will unmap): set under ss_lock by every release, recomputed by every
 *     decay pass; it may stay true after a reuse took the work away (one idle pass).
 */
#include <string.h>

#include "../internal.h"
#if HAKMEM_ASAN
#include <sanitizer/asan_interface.h>
#endif
#include "registry.h"
#include "remote_queue.h"

#define SS_ALL_FREE 0xFFFFFFFFu
#define SS_RESERVE_COUNT 4  /* SuperSlabs mapped at once, to keep system calls rare */
#define SS_KEEP_EMPTY 4     /* empty SuperSlabs kept mapped (purged) after the decay */
/* An empty SuperSlab stays mapped at least this long (it may be purged sooner) when more than
 * SS_KEEP_EMPTY are empty: a memory policy (a program that frees and allocates in waves keeps
 * its regions), never what makes an access safe; forced trim ignores it. */
#define SS_UNMAP_GRACE_MS 1000

_Atomic(uint64_t) hak_ss_release_epoch = 1;

static hak_lock_t ss_lock;
static hak_superslab_t *ss_avail;    /* has a free slab */
static hak_superslab_t *ss_empty;    /* every slab free */
static size_t ss_empty_count;
static uint8_t *ss_reserve, *ss_reserve_end; /* mapped, not yet used as SuperSlabs */
static _Atomic(uint64_t) ss_last_decay_ms; /* written under ss_lock, peeked without */
static _Atomic(bool) ss_pending;           /* written under ss_lock, peeked without */
/* Slabs of bound runs, and free slabs whose pages are still populated (dirty); under ss_lock.
 * The dirty ones beyond the budget (ss_dirty_budget) are purged at once, oldest SuperSlab
 * first, without waiting for the decay. */
static size_t ss_bound_slabs, ss_dirty_slabs;
#define SS_DIRTY_FLOOR_SLABS (2 * HAK_SLABS_PER_SS) /* dirty slabs always allowed: 4 MiB */

/* ---- geometry -------------------------------------------------------------------------------- */

/* Offset of block 0 from the run start: slab 0 holds the SuperSlab header; with a header, bases
 * sit at 8 mod 16 so user pointers are 16-aligned. */
static size_t data_offset(unsigned idx) {
  size_t off = idx == 0 ? (sizeof(hak_superslab_t) + HAK_CACHE_LINE - 1) & ~(size_t)63 : 0;
  return off + (16 - HAK_HDR_SIZE) % 16;
}

/* ---- lists (ss_lock) ------------------------------------------------------------------------ */

static void ss_list_push(hak_superslab_t **list, hak_superslab_t *ss, uint8_t id) {
  ss->prev = NULL;
  ss->next = *list;
  if (*list) (*list)->prev = ss;
  *list = ss;
  ss->list = id;
}

static void ss_list_remove(hak_superslab_t *ss) {
  hak_superslab_t **list = ss->list == HAK_SSL_AVAIL ? &ss_avail : &ss_empty;
  if (ss->prev) ss->prev->next = ss->next; else *list = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  if (ss->list == HAK_SSL_EMPTY) ss_empty_count--;
  ss->next = ss->prev = NULL;
  ss->list = HAK_SSL_NONE;
}

/* Slab i belongs to the run headed by slab head (its own index for a head or a free slab). */
static void slab_set_head(hak_superslab_t *ss, unsigned i, unsigned head) {
  ss->slabs[i].head = (uint8_t)head;
  ss->slabs[i].head_off = (uint16_t)((uint8_t *)&ss->slabs[head] - (uint8_t *)ss);
}

static void slab_reset(hak_superslab_t *ss, unsigned i) {
  hak_slab_t *m = &ss->slabs[i];
  hak_assert(atomic_load_explicit(&m->owner, hak_relaxed) == NULL);
  hak_assert((atomic_load_explicit(&m->remote, hak_relaxed) & ~HAK_RQ_NOTIFY) == 0);
  m->freelist = NULL;
  m->data = NULL;
  m->recip = m->div_inv = 0;
  m->div_shift = 0;
  m->stride = m->capacity = m->used = 0;
  atomic_store_explicit(&m->carved, 0, hak_relaxed);
  atomic_store_explicit(&m->remote, 0, hak_relaxed);
  m->class_idx = HAK_CLASS_NONE;
  m->class4 = HAK_CLASS4_NONE;
  slab_set_head(ss, i, i);
  m->nslabs = 0;
  m->state = HAK_SLAB_FREE;
  m->list = HAK_LIST_NONE;
  m->next = m->prev = NULL;
}

/* ---- mapping -------------------------------------------------------------------------------- */

#if HAKMEM_CHECKED && HAKMEM_TINY_HEADERLESS
#define SS_FORMS_BYTES (HAK_SS_SIZE / 16) /* one byte per 16 bytes of a SuperSlab */
#endif

static hak_superslab_t *ss_new(void) {
#if HAKMEM_CHECKED && HAKMEM_TINY_HEADERLESS
  uint8_t *forms = hak_os_map(SS_FORMS_BYTES); /* first: nothing to undo when it fails */
  if (forms == NULL) return NULL;
#endif
  if (ss_reserve == NULL || ss_reserve == ss_reserve_end) {
    ss_reserve = hak_os_map_aligned(SS_RESERVE_COUNT * HAK_SS_SIZE, HAK_SS_SIZE);
    if (ss_reserve == NULL) {
      ss_reserve = hak_os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
      if (ss_reserve == NULL) {
#if HAKMEM_CHECKED && HAKMEM_TINY_HEADERLESS
        hak_os_unmap(forms, SS_FORMS_BYTES);
#endif
        return NULL;
      }
      ss_reserve_end = ss_reserve + HAK_SS_SIZE;
    } else {
      ss_reserve_end = ss_reserve + SS_RESERVE_COUNT * HAK_SS_SIZE;
    }
    hak_os_thp(ss_reserve, (size_t)(ss_reserve_end - ss_reserve), hak_opt.thp == HAK_THP_ALL);
  }
  hak_superslab_t *ss = (hak_superslab_t *)ss_reserve;
  ss_reserve += HAK_SS_SIZE;
  ss->magic = HAK_SS_MAGIC ^ (uintptr_t)ss;
  atomic_store_explicit(&ss->generation, 1, hak_relaxed);
  ss->free_mask = SS_ALL_FREE;
  ss->dirty_mask = 0;
#if HAKMEM_CHECKED && HAKMEM_TINY_HEADERLESS
  ss->forms = forms;
#endif
  for (unsigned i = 0; i < HAK_SLABS_PER_SS; i++) slab_reset(ss, i);
  hak_registry_set((uintptr_t)ss, HAK_REGION_SS);
  hak_gstat_add(HAK_G_SS_MAPPED, 1);
  hak_ring_event("ss_map", ss, 0);
  return ss;
}

/* Why nobody can touch ss after this: every slab is free, so every run of it was released, and
 * a run is released only by a thread that knew every block was back (owner.c): no block of ss
 * is in use, in a TLS SLL, in a remote queue or on a notify stack, and no remote free still has
 * an access to make (its CAS was its last). No owner list, published list or hint can lead a
 * thread here either: released runs are on no list, and a hint is checked against the release
 * epoch bumped below before it is followed. Only a free of a pointer that was never valid can
 * still come, and the registry, cleared first, turns it away without touching ss. */
static void ss_unmap(hak_superslab_t *ss) {
  hak_assert(ss->free_mask == SS_ALL_FREE);
  hak_sched_point(HAK_SP_BEFORE_UNMAP, ss);
#if !HAK_PLANTED(registry_late_unregister) /* planted bug: left registered after the unmap */
  hak_registry_clear((uintptr_t)ss);
#endif
  atomic_fetch_add_explicit(&hak_ss_release_epoch, 1, memory_order_acq_rel);
  ss->magic = 0;
  ss_dirty_slabs -= (size_t)__builtin_popcount(ss->dirty_mask);
  ss->dirty_mask = 0;
  hak_ring_event("ss_unmap", ss, 0);
  hak_crash_note_unmap(ss, HAK_SS_SIZE, HAK_REGION_SS);
#if HAKMEM_CHECKED && HAKMEM_TINY_HEADERLESS
  hak_os_unmap(ss->forms, SS_FORMS_BYTES);
#endif
  hak_os_unmap(ss, HAK_SS_SIZE);
  hak_gstat_add(HAK_G_SS_UNMAPPED, 1);
}

/* Gives back the pages of free slabs [i, i + n), keeping the header of slab 0; the bytes. */
static size_t ss_purge_slabs(hak_superslab_t *ss, unsigned i, unsigned n) {
  uint8_t *start = (uint8_t *)ss + (size_t)i * HAK_SLAB_SIZE;
  uint8_t *end = start + (size_t)n * HAK_SLAB_SIZE;
  if (i == 0) start = (uint8_t *)ss + ((sizeof(hak_superslab_t) + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1));
  hak_os_purge(start, (size_t)(end - start));
  return (size_t)(end - start);
}

/* Purges every dirty slab of ss; the bytes given back. */
static size_t ss_purge_dirty(hak_superslab_t *ss) {
  size_t bytes = 0;
  ss_dirty_slabs -= (size_t)__builtin_popcount(ss->dirty_mask);
  uint32_t dirty = ss->dirty_mask;
  while (dirty) {
    unsigned i = (unsigned)__builtin_ctz(dirty);
    unsigned n = 0;
    while (i + n < HAK_SLABS_PER_SS && (dirty >> (i + n) & 1)) n++;
    bytes += ss_purge_slabs(ss, i, n);
    dirty &= ~(n == 32 ? SS_ALL_FREE : ((1u << n) - 1) << i);
  }
  ss->dirty_mask = 0;
  return bytes;
}

/* ---- runs ------------------------------------------------------------------------------------ */

static int find_run(uint32_t free_mask, int k) {
  uint32_t want = k == 32 ? SS_ALL_FREE : (1u << k) - 1;
  for (int i = 0; i + k <= (int)HAK_SLABS_PER_SS; i++)
    if (((free_mask >> i) & want) == want) return i;
  return -1;
}

/* stride = odd << shift: div_inv = odd^-1 mod 2^64 by Newton's iteration (an odd number is
 * its own inverse mod 8, and each step doubles the correct low bits: 3, 6, .. 96). */
static void set_exact_division(hak_slab_t *m, uint32_t stride) {
  unsigned shift = (unsigned)__builtin_ctz(stride);
  uint64_t odd = stride >> shift, inv = odd;
  for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
  hak_assert(odd * inv == 1);
  m->div_inv = inv;
  m->div_shift = (uint8_t)shift;
}

static void bind_run(hak_superslab_t *ss, unsigned idx, int k, hak_class_t cls) {
  hak_slab_t *m = &ss->slabs[idx];
  uint32_t stride = hak_stride_of(cls);
  size_t off = data_offset(idx);
  m->data = (uint8_t *)ss + (size_t)idx * HAK_SLAB_SIZE + off;
#if HAKMEM_ASAN
  /* Blocks of the run's previous class were poisoned when freed; the new geometry differs. */
  ASAN_UNPOISON_MEMORY_REGION(m->data, (size_t)k * HAK_SLAB_SIZE - off);
#endif
  m->stride = stride;
  m->capacity = (uint32_t)(((size_t)k * HAK_SLAB_SIZE - off) / stride);
  m->recip = (((uint64_t)1 << HAK_RECIP_SHIFT) + stride - 1) / stride;
  set_exact_division(m, stride);
  m->used = 0;
  atomic_store_explicit(&m->carved, 0, hak_relaxed);
  m->freelist = NULL;
  m->nslabs = (uint8_t)k;
  m->state = HAK_SLAB_HEAD;
  slab_set_head(ss, idx, idx);
  m->class_idx = (uint8_t)cls;
  _Static_assert((HAK_NUM_CLASSES - 1) * HAK_CLASS_SCALE < HAK_CLASS4_NONE,
                 "a scaled class fits class4 and differs from HAK_CLASS4_NONE");
  m->class4 = (uint8_t)(cls * HAK_CLASS_SCALE);
  for (int j = 1; j < k; j++) {
    ss->slabs[idx + j].state = HAK_SLAB_CONT;
    slab_set_head(ss, idx + (unsigned)j, idx);
  }
  uint32_t bits = (k == 32 ? SS_ALL_FREE : (1u << k) - 1) << idx;
  ss->free_mask &= ~bits;
  ss_dirty_slabs -= (size_t)__builtin_popcount(ss->dirty_mask & bits);
  ss_bound_slabs += (size_t)k;
  ss->dirty_mask &= ~bits;
}

hak_slab_t *hak_superslab_take_run(hak_class_t cls) {
  int k = (int)hak_run_slabs_for(cls);
  hak_lock(&ss_lock);
  hak_superslab_t *ss;
  int idx = -1;
  for (ss = ss_avail; ss != NULL; ss = ss->next)
    if ((idx = find_run(ss->free_mask, k)) >= 0) break;
  if (ss == NULL) {
    ss = ss_empty;
    if (ss != NULL) {
      ss_list_remove(ss);
      atomic_fetch_add_explicit(&ss->generation, 1, memory_order_release);
      atomic_fetch_add_explicit(&hak_ss_release_epoch, 1, memory_order_acq_rel); /* hints */
      hak_gstat_add(HAK_G_SS_REUSED, 1);
      hak_ring_event("ss_reuse", ss, atomic_load_explicit(&ss->generation, hak_relaxed));
    } else if ((ss = ss_new()) == NULL) {
      hak_unlock(&ss_lock);
      return NULL;
    }
    ss_list_push(&ss_avail, ss, HAK_SSL_AVAIL);
    idx = find_run(ss->free_mask, k);
    hak_assert(idx >= 0);
  }
  bind_run(ss, (unsigned)idx, k, cls);
  if (ss->free_mask == 0) ss_list_remove(ss);
  hak_unlock(&ss_lock);
  hak_gstat_add(HAK_G_SLABS_BOUND, 1);
  return &ss->slabs[idx];
}

/* Returns what the decay allows (everything when forced); the bytes given back. Records in
 * ss_pending whether anything is left for a later pass: a slab not dirty for long enough, an
 * empty SuperSlab above SS_KEEP_EMPTY still in its grace time. */
static size_t ss_decay_locked(uint64_t now, bool force) {
  size_t released = 0;
  bool waiting = false;
  uint64_t decay = (uint64_t)hak_opt.decay_ms;
  for (hak_superslab_t *ss = ss_empty, *next; ss != NULL; ss = next) {
    next = ss->next;
    if (!force && now - ss->free_since_ms < decay) {
      waiting = true;
      continue;
    }
    bool graced = now - ss->free_since_ms >= SS_UNMAP_GRACE_MS;
    if (force || (graced && ss_empty_count > SS_KEEP_EMPTY)) {
      ss_list_remove(ss);
      ss_unmap(ss);
      released += HAK_SS_SIZE;
    } else if (ss->dirty_mask) {
      released += ss_purge_dirty(ss);
    }
  }
  for (hak_superslab_t *ss = ss_avail; ss != NULL; ss = ss->next) {
    if (ss->dirty_mask && (force || now - ss->dirty_since_ms >= decay))
      released += ss_purge_dirty(ss);
    waiting |= ss->dirty_mask != 0;
  }
  waiting |= ss_empty_count > SS_KEEP_EMPTY;
  atomic_store_explicit(&ss_pending, waiting, hak_relaxed);
  atomic_store_explicit(&ss_last_decay_ms, now, hak_relaxed);
  return released;
}

/* Dirty slabs allowed: HAKMEM_SLAB_DIRTY_PCT percent of the bound ones, at least the floor;
 * no limit with HAKMEM_SLAB_DIRTY_PCT=0 (the decay alone decides). */
static size_t ss_dirty_budget(void) {
  if (hak_opt.slab_dirty_pct == 0) return SIZE_MAX;
  size_t share = ss_bound_slabs * (size_t)hak_opt.slab_dirty_pct / 100;
  return share > SS_DIRTY_FLOOR_SLABS ? share : SS_DIRTY_FLOOR_SLABS;
}

/* Purges the dirty slabs of the SuperSlabs dirty longest until a quarter of the budget is
 * free again, so that the next pass is a quarter of the budget away rather than the next
 * release. One scan of the lists finds the SS_PURGE_BATCH dirty longest (kept sorted, oldest
 * first); another scan only when they were not enough. Called with ss_lock held. */
#define SS_PURGE_BATCH 8
static void ss_purge_over_budget(void) {
  size_t budget = ss_dirty_budget();
  size_t goal = budget - budget / 4;
  while (ss_dirty_slabs > goal) {
    hak_superslab_t *oldest[SS_PURGE_BATCH];
    int n = 0;
    for (int l = 0; l < 2; l++)
      for (hak_superslab_t *ss = l == 0 ? ss_empty : ss_avail; ss != NULL; ss = ss->next) {
        if (ss->dirty_mask == 0) continue;
        if (n == SS_PURGE_BATCH && ss->dirty_since_ms >= oldest[n - 1]->dirty_since_ms) continue;
        int i = n < SS_PURGE_BATCH ? n++ : n - 1;
        for (; i > 0 && oldest[i - 1]->dirty_since_ms > ss->dirty_since_ms; i--)
          oldest[i] = oldest[i - 1];
        oldest[i] = ss;
      }
    if (n == 0) return;
    for (int i = 0; i < n && ss_dirty_slabs > goal; i++) ss_purge_dirty(oldest[i]);
  }
}

/* The decay clock runs at a quarter of the decay time. */
static bool decay_due(uint64_t now) {
  uint64_t last = atomic_load_explicit(&ss_last_decay_ms, hak_relaxed);
  return now - last >= (uint64_t)hak_opt.decay_ms / 4;
}

void hak_superslab_release_run(hak_slab_t *head) {
  hak_superslab_t *ss = hak_ss_of(head);
  unsigned idx = (unsigned)(head - ss->slabs);
  int k = head->nslabs;
  hak_assert(head->state == HAK_SLAB_HEAD && head->used == 0);
  /* Every block is back: the freelist holds all carved blocks and the queue is drained. */
  hak_assert_expensive(hak_checked_run_ok(head));
  uint64_t now = hak_os_now_ms();
  hak_lock(&ss_lock);
  for (int j = 0; j < k; j++) slab_reset(ss, idx + (unsigned)j);
  uint32_t bits = (k == 32 ? SS_ALL_FREE : (1u << k) - 1) << idx;
  ss->free_mask |= bits;
  ss_dirty_slabs += (size_t)__builtin_popcount(bits & ~ss->dirty_mask);
  ss_bound_slabs -= (size_t)k;
  if (ss->dirty_mask == 0) ss->dirty_since_ms = now;
  ss->dirty_mask |= bits;
  atomic_store_explicit(&ss_pending, true, hak_relaxed);
  if (ss->free_mask == SS_ALL_FREE) {
    ss->free_since_ms = now;
    if (ss->list == HAK_SSL_AVAIL) ss_list_remove(ss);
    ss_list_push(&ss_empty, ss, HAK_SSL_EMPTY);
    ss_empty_count++;
  } else if (ss->list == HAK_SSL_NONE) {
    ss_list_push(&ss_avail, ss, HAK_SSL_AVAIL);
  }
  if (decay_due(now)) ss_decay_locked(now, false);
  if (ss_dirty_slabs > ss_dirty_budget()) ss_purge_over_budget();
  hak_unlock(&ss_lock);
}

void hak_superslab_tick(void) {
  uint64_t now = hak_os_now_ms();
  if (!decay_due(now)) return;
  hak_lock(&ss_lock);
  ss_decay_locked(now, false);
  hak_unlock(&ss_lock);
  hak_large_trim(false);
}

bool hak_superslab_pending(void) { return atomic_load_explicit(&ss_pending, hak_relaxed); }

size_t hak_superslab_trim(bool force) {
  hak_lock(&ss_lock);
  size_t n = ss_decay_locked(hak_os_now_ms(), force);
  hak_unlock(&ss_lock);
  return n;
}

void hak_superslab_lock_all(void) { hak_lock(&ss_lock); }
void hak_superslab_unlock_all(void) { hak_unlock(&ss_lock); }
