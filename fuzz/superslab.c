/* Fuzz harness of the SuperSlab / slab box (src/tiny/superslab.c): carving, class binding, run
 * and region recycling.
 *
 * The input drives the box two ways: directly, by runs the harness takes with
 * hak_superslab_take_run() and gives back with hak_superslab_release_run() (they lock the
 * SuperSlab themselves), and through the allocator, by blocks of every class allocated and
 * freed with hak_malloc / hak_free in threads that end (a thread's end flushes its caches and
 * releases or orphans its runs, so SuperSlabs empty), trims (which unmap empty SuperSlabs), and
 * frees of the blocks that lie beyond the first slab of multi-slab mid runs (blocks of 10 KiB ..
 * 256 KiB). Every SuperSlab the harness has seen is remembered. After every step:
 *   - magic == HAK_SS_MAGIC ^ address and the region is registered as a SuperSlab;
 *   - the slab table is consistent: a HEAD slab has class_idx < HAK_NUM_CLASSES, the class's
 *     slab count and geometry (stride, data inside the run, capacity that fits) and
 *     used <= carved <= capacity; every slab of its run is a CONT slab pointing at it; a FREE
 *     slab is unbound, with no owner and a zero remote word (remote_queue.h); free_mask agrees
 *     with the states (so runs never overlap), dirty slabs are free, and the SuperSlab is on the
 *     list its free_mask implies;
 *   - generation: unchanged, except +1 when a SuperSlab that was empty at the last check is in
 *     use again (superslabs_reused counts at least those); only a trim unmaps, and only empty
 *     SuperSlabs;
 *   - a run the harness holds (and a run just taken) is bound to its class, ownerless, nothing
 *     carved, its remote word zero (no flag, no stack, no count), and the pattern written into
 *     it is intact;
 *   - every live block: hak_owns(), hak_usable_size() == the bytes to its block's end (also for
 *     blocks in the 2nd..nth slab of a run), its run's head has its class and carved it, the
 *     pattern at its start is intact, and no two live blocks overlap;
 *   - at the end (everything freed, runs given back, threads ended) every SuperSlab the input
 *     used is empty: no run leaked.
 * The decay is set to an hour, so that memory goes back to the OS only when the input trims;
 * empty SuperSlabs left by one input are reused by the next (a trim at the end of every input
 * would make each one fault its memory in anew, at a tenth of the speed).
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 cls                take a run of class cls directly (into a free hold slot)
 *   1 hold               release the held run hold
 *   2 slot cls jitter16  allocate a block of class cls (size below the class size by jitter),
 *                        freeing the slot first (a step of its own) when it is in use
 *   3 mid count          allocate count (1..24) blocks of the mid-th multi-slab class
 *   4 slot               free slot
 *   5                    free every live block that lies beyond the first slab of its run
 *   6                    end the thread running the operations, go on in a new one (at most
 *                        MAX_THREADS per input; later ones are ignored)
 *   7                    hak_trim() (at most MAX_TRIMS per input)
 *   8                    free every slot */
#include <sys/mman.h>

#include "fast.h"
#include "hak_block.h"
#include "fuzz.h"

#define SLOTS 64
#define HOLDS 16
#define MAX_SS 256
#define MAX_OPS 256
#define MAX_RUN_ALLOC 24
#define MAX_THREADS 4 /* per input: thread start and exit are slow under the sanitizers */
#define MAX_TRIMS 4   /* per input: a trim makes the next allocations fault memory in again */
#define MARK 16 /* pattern bytes at the start of a block, at both ends of a held run */
#define SS_ALL 0xFFFFFFFFu

typedef struct block_s {
  uint8_t *p;
  size_t size;
  int cls;
  uint64_t key;
} block_t;

typedef struct known_s {
  hak_superslab_t *ss;
  uint64_t gen;
  bool empty; /* free_mask was SS_ALL at the last check */
} known_t;

static block_t slot[SLOTS];
static hak_slab_t *hold[HOLDS];
static int hold_cls[HOLDS];
static known_t known[MAX_SS];
static unsigned nknown;
static int multi[HAK_NUM_CLASSES]; /* classes whose runs span several slabs */
static int nmulti;
static uint64_t next_key;
static uint64_t reused_seen; /* superslabs_reused when last compared */

/* ---- geometry helpers ------------------------------------------------------------------------ */

static unsigned slab_index(const void *p) {
  return (unsigned)(((uintptr_t)p >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_SS - 1));
}

static uint8_t *run_start(const hak_slab_t *m) {
  hak_superslab_t *ss = hak_ss_of(m);
  return (uint8_t *)ss + (size_t)(m - ss->slabs) * HAK_SLAB_SIZE;
}

static uint8_t *run_end(const hak_slab_t *m) {
  return run_start(m) + (size_t)m->nslabs * HAK_SLAB_SIZE;
}

/* A request size of class c: jitter bytes below its usable size, within the class. */
static size_t size_in_class(int c, unsigned jitter) {
  size_t hi = hak_class_size(c), lo = c == 0 ? 0 : hak_class_size(c - 1) + 1;
  size_t n = hi - jitter % (hi - lo + 1);
  T_INVARIANT((int)hak_size_class(n) == c, "request %zu lands in class %u, not %d", n,
              hak_size_class(n), c);
  return n;
}

/* ---- the SuperSlabs -------------------------------------------------------------------------- */

static known_t *find_known(const hak_superslab_t *ss) {
  for (unsigned i = 0; i < nknown; i++)
    if (known[i].ss == ss) return &known[i];
  return NULL;
}

static void learn(const void *p) {
  hak_superslab_t *ss = hak_ss_of(p);
  if (find_known(ss) != NULL) return;
  T_INVARIANT(nknown < MAX_SS, "more than %d SuperSlabs", MAX_SS);
  known[nknown++] = (known_t){ss, atomic_load(&ss->generation), ss->free_mask == SS_ALL};
}

static void check_head(const hak_superslab_t *ss, unsigned i) {
  const hak_slab_t *m = &ss->slabs[i];
  int c = m->class_idx;
  T_INVARIANT(c < HAK_NUM_CLASSES, "ss %p slab %u: bound with class %d", (void *)ss, i, c);
  T_INVARIANT(
      m->head == i && m->nslabs == hak_run_slabs_for(c) && i + m->nslabs <= HAK_SLABS_PER_SS,
      "ss %p slab %u: head %u, %u slabs for class %d", (void *)ss, i, m->head, m->nslabs, c);
  T_INVARIANT(m->stride == hak_stride_of(c) && m->stride % 16 == 0, "ss %p slab %u: stride %u",
              (void *)ss, i, m->stride);
  T_INVARIANT(m->data >= run_start(m) && m->data + (size_t)m->capacity * m->stride <= run_end(m) &&
                  ((uintptr_t)m->data + HAK_HDR_SIZE) % 16 == 0,
              "ss %p slab %u: data %p, %u blocks of %u overflow the run", (void *)ss, i,
              (void *)m->data, m->capacity, m->stride);
  T_INVARIANT(m->capacity >= 1 && m->used <= m->carved && m->carved <= m->capacity,
              "ss %p slab %u: used %u carved %u capacity %u", (void *)ss, i, m->used,
              (unsigned)m->carved, m->capacity);
  for (unsigned j = 1; j < m->nslabs; j++)
    T_INVARIANT(ss->slabs[i + j].state == HAK_SLAB_CONT && ss->slabs[i + j].head == i,
                "ss %p slab %u: not a continuation of its run's head %u", (void *)ss, i + j, i);
}

static void check_table(const hak_superslab_t *ss) {
  T_INVARIANT(ss->magic == (HAK_SS_MAGIC ^ (uintptr_t)ss), "ss %p: magic %#llx", (void *)ss,
              (unsigned long long)ss->magic);
  T_INVARIANT(hak_registry_ss_peek((uintptr_t)ss) == ss, "ss %p not registered", (void *)ss);
  uint32_t bound = 0;
  for (unsigned i = 0; i < HAK_SLABS_PER_SS; i++) {
    const hak_slab_t *m = &ss->slabs[i];
    if (m->state == HAK_SLAB_HEAD) {
      check_head(ss, i);
      bound |= (m->nslabs == 32 ? SS_ALL : (1u << m->nslabs) - 1) << i;
      i += m->nslabs - 1u;
    } else {
      T_INVARIANT(m->state == HAK_SLAB_FREE, "ss %p slab %u: state %d outside any run", (void *)ss,
                  i, m->state);
      T_INVARIANT(m->class_idx == HAK_CLASS_NONE && m->head == i && hak_owner_of(m) == NULL &&
                      atomic_load(&m->remote) == 0,
                  "ss %p slab %u: free slab with class %d head %u remote word %#lx", (void *)ss, i,
                  m->class_idx, m->head, (unsigned long)atomic_load(&m->remote));
    }
  }
  T_INVARIANT(ss->free_mask == ~bound, "ss %p: free_mask %#x, runs cover %#x", (void *)ss,
              ss->free_mask, bound);
  T_INVARIANT((ss->dirty_mask & ~ss->free_mask) == 0, "ss %p: dirty %#x not free %#x", (void *)ss,
              ss->dirty_mask, ss->free_mask);
  int list = ss->free_mask == SS_ALL ? HAK_SSL_EMPTY : ss->free_mask ? HAK_SSL_AVAIL : HAK_SSL_NONE;
  T_INVARIANT(ss->list == list, "ss %p: free_mask %#x on list %d", (void *)ss, ss->free_mask,
              ss->list);
}

static uint64_t reused_count(void) {
  hak_stats_t s;
  hak_stats_get(&s);
  return s.superslabs_reused;
}

/* Generation and mapping of each remembered SuperSlab since the last check; trimmed: the steps
 * since then included a trim. */
static void check_known(bool trimmed) {
  unsigned k = 0, reuses = 0;
  for (unsigned i = 0; i < nknown; i++) {
    known_t *s = &known[i];
    if (hak_registry_ss_peek((uintptr_t)s->ss) != s->ss) {
      T_INVARIANT(trimmed && s->empty, "ss %p (%s) unmapped by a step that %s", (void *)s->ss,
                  s->empty ? "empty" : "in use", trimmed ? "trims" : "does not trim");
      continue;
    }
    check_table(s->ss);
    uint64_t gen = atomic_load(&s->ss->generation);
    bool empty = s->ss->free_mask == SS_ALL;
    bool reused = s->empty && !empty;
    T_INVARIANT(gen == s->gen + reused, "ss %p: generation %llu -> %llu (%s)", (void *)s->ss,
                (unsigned long long)s->gen, (unsigned long long)gen,
                reused ? "reused" : "not reused");
    reuses += reused;
    known[k++] = (known_t){s->ss, gen, empty};
  }
  nknown = k;
  if (reuses == 0) return; /* the counter is read only when there is something to compare */
  uint64_t now = reused_count();
  T_INVARIANT(now - reused_seen >= reuses, "superslabs_reused grew by %llu, %u reuses seen",
              (unsigned long long)(now - reused_seen), reuses);
  reused_seen = now;
}

/* ---- held runs and live blocks --------------------------------------------------------------- */

/* Marks the first MARK bytes of [p, p + n) (all of it when shorter) under key, and with tail
 * also its last MARK bytes. Written and compared as words where possible: the checks run after
 * every step, and a block's first page is the only one the allocator touches already. */
static uint64_t mark_word(uint64_t key, unsigned i) { return (key + i) * 0x9e3779b97f4a7c15ull; }

static void mark_fill(uint8_t *p, size_t n, uint64_t key, bool tail) {
  if (n < 2 * MARK) {
    t_fill_key(p, n, key);
    return;
  }
  for (unsigned i = 0; i < MARK / 8; i++) {
    uint64_t w = mark_word(key, i), t = mark_word(key, i + MARK / 8);
    memcpy(p + 8 * i, &w, 8);
    if (tail) memcpy(p + n - MARK + 8 * i, &t, 8);
  }
}

static bool mark_ok(const uint8_t *p, size_t n, uint64_t key, bool tail) {
  if (n < 2 * MARK)
    return t_find_bad_key(p, n, key) == SIZE_MAX;
  bool ok = true;
  for (unsigned i = 0; i < MARK / 8; i++) {
    uint64_t w, t;
    memcpy(&w, p + 8 * i, 8);
    ok &= w == mark_word(key, i);
    if (!tail) continue;
    memcpy(&t, p + n - MARK + 8 * i, 8);
    ok &= t == mark_word(key, i + MARK / 8);
  }
  return ok;
}

static void check_hold(int h) {
  hak_slab_t *m = hold[h];
  T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == hold_cls[h] && hak_owner_of(m) == NULL &&
                  m->used == 0 && m->carved == 0 && m->freelist == NULL &&
                  atomic_load(&m->remote) == 0,
              "held run %p of class %d: state %d class %d used %u carved %u remote word %#lx",
              (void *)m, hold_cls[h], m->state, m->class_idx, m->used, (unsigned)m->carved,
              (unsigned long)atomic_load(&m->remote));
  T_INVARIANT(mark_ok(m->data, (size_t)m->capacity * m->stride, (uint64_t)h << 32, true),
              "held run %p of class %d overwritten", (void *)m, hold_cls[h]);
}

static bool is_held(const hak_slab_t *m) {
  for (int h = 0; h < HOLDS; h++)
    if (hold[h] == m) return true;
  return false;
}

static void check_block(const block_t *b) {
  T_INVARIANT(hak_owns(b->p), "hak_owns(%p) is 0 for a live block of class %d", (void *)b->p,
              b->cls);
  hak_slab_t *m = t_run_of(b->p);
  T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == b->cls && !is_held(m),
              "block %p of class %d: run %p state %d class %d", (void *)b->p, b->cls, (void *)m,
              m->state, m->class_idx);
  uint64_t off = (uint64_t)(b->p - HAK_HDR_SIZE - m->data);
  T_INVARIANT(off % m->stride == 0 && off / m->stride < m->carved,
              "block %p: offset %llu in a run of stride %u, %u carved", (void *)b->p,
              (unsigned long long)off, m->stride, (unsigned)m->carved);
  size_t usable = hak_usable_size(b->p);
  T_INVARIANT(usable >= b->size && b->p + usable == m->data + off + m->stride,
              "block %p of %zu bytes (slab %u of its run): usable %zu", (void *)b->p, b->size,
              slab_index(b->p) - slab_index(m), usable);
  T_INVARIANT(mark_ok(b->p, b->size, b->key, false), "block %p of class %d changed while live",
              (void *)b->p, b->cls);
}

static int by_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const block_t *)a)->p, y = (uintptr_t)((const block_t *)b)->p;
  return x < y ? -1 : x > y;
}

static void check_no_overlap(void) {
  block_t live[SLOTS];
  int n = 0;
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) live[n++] = slot[i];
  qsort(live, (size_t)n, sizeof live[0], by_address);
  for (int i = 1; i < n; i++)
    T_INVARIANT(live[i - 1].p + live[i - 1].size <= live[i].p,
                "blocks %p (%zu bytes) and %p overlap", (void *)live[i - 1].p, live[i - 1].size,
                (void *)live[i].p);
}

static void check_all(bool trimmed) {
  for (int h = 0; h < HOLDS; h++)
    if (hold[h] != NULL) learn(hold[h]);
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) learn(slot[i].p);
  check_known(trimmed);
  for (int h = 0; h < HOLDS; h++)
    if (hold[h] != NULL) check_hold(h);
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) check_block(&slot[i]);
  check_no_overlap();
}

/* ---- operations ------------------------------------------------------------------------------ */

static void take(int c) {
  int h = 0;
  while (h < HOLDS && hold[h] != NULL) h++;
  if (h == HOLDS) return;
  hak_slab_t *m = hak_superslab_take_run(c);
  T_INVARIANT(m != NULL, "take_run(%d) failed", c);
  T_INVARIANT(m->state == HAK_SLAB_HEAD && m->class_idx == c && hak_owner_of(m) == NULL &&
                  m->used == 0 && m->carved == 0 && m->freelist == NULL &&
                  atomic_load(&m->remote) == 0,
              "fresh run of class %d: state %d class %d carved %u remote word %#lx", c, m->state,
              m->class_idx, (unsigned)m->carved, (unsigned long)atomic_load(&m->remote));
  T_INVARIANT(!is_held(m), "run %p taken twice", (void *)m);
  hold[h] = m;
  hold_cls[h] = c;
  mark_fill(m->data, (size_t)m->capacity * m->stride, (uint64_t)h << 32, true);
}

static void release(int h) {
  hak_slab_t *m = hold[h];
  if (m == NULL) return;
  hak_superslab_t *ss = hak_ss_of(m);
  unsigned idx = (unsigned)(m - ss->slabs), k = m->nslabs;
  hak_superslab_release_run(m);
  hold[h] = NULL;
  for (unsigned j = idx; j < idx + k; j++)
    T_INVARIANT(ss->slabs[j].state == HAK_SLAB_FREE && (ss->free_mask >> j & 1) &&
                    (ss->dirty_mask >> j & 1),
                "slab %u of a released run: state %d, free %u, dirty %u", j, ss->slabs[j].state,
                ss->free_mask >> j & 1, ss->dirty_mask >> j & 1);
}

/* Into a free slot: a step that frees and allocates could empty a SuperSlab and reuse it. */
static void alloc_into(int i, int c, size_t n) {
  uint8_t *p = hak_malloc(n);
  T_INVARIANT(p != NULL, "hak_malloc(%zu) failed", n);
  T_INVARIANT(((uintptr_t)p & 15) == 0, "hak_malloc(%zu) = %p misaligned", n, (void *)p);
  uint64_t key = next_key += 2;
  mark_fill(p, n, key, false);
  slot[i] = (block_t){p, n, c, key};
}

/* count blocks of one multi-slab class, into the first free slots: they fill the run's later
 * slabs. */
static void alloc_run(int c, unsigned count) {
  for (int i = 0; i < SLOTS && count > 0; i++)
    if (slot[i].p == NULL) {
      alloc_into(i, c, size_in_class(c, count));
      count--;
    }
}

static void free_slot(int i) {
  hak_free(slot[i].p);
  slot[i].p = NULL;
}

static void free_tails(void) {
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL && slab_index(slot[i].p) != slab_index(t_run_of(slot[i].p)))
      free_slot(i);
}

static void free_all_slots(void) {
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) free_slot(i);
}

typedef struct run_s {
  f_in_t in;
  int ops, threads, trims;
} run_t;

/* One operation; returns false when the input asks for a new thread. *trimmed: it trimmed. */
static bool step(run_t *r, bool *trimmed) {
  f_in_t *in = &r->in;
  *trimmed = false;
  switch (f_u8(in) % 9) {
  case 0: take((int)f_below(in, HAK_NUM_CLASSES)); break;
  case 1: release((int)f_below(in, HOLDS)); break;
  case 2: {
    int i = (int)f_below(in, SLOTS), c = (int)f_below(in, HAK_NUM_CLASSES);
    size_t n = size_in_class(c, f_u16(in));
    if (slot[i].p != NULL) {
      free_slot(i);
      check_all(false);
    }
    alloc_into(i, c, n);
    break;
  }
  case 3: {
    int c = multi[f_below(in, (uint32_t)nmulti)];
    alloc_run(c, 1 + f_below(in, MAX_RUN_ALLOC));
    break;
  }
  case 4: {
    int i = (int)f_below(in, SLOTS);
    if (slot[i].p != NULL) free_slot(i);
    break;
  }
  case 5: free_tails(); break;
  case 6: return r->threads++ >= MAX_THREADS; /* false: go on in a new thread */
  case 7:
    if (r->trims++ < MAX_TRIMS) {
      *trimmed = true;
      hak_trim();
    }
    break;
  default: free_all_slots(); break;
  }
  return true;
}

static void *run_ops(void *arg) {
  run_t *r = arg;
  while (r->ops < MAX_OPS && f_more(&r->in)) {
    r->ops++;
    bool trimmed;
    bool go_on = step(r, &trimmed);
    check_all(trimmed);
    if (!go_on) break;
  }
  return NULL;
}

/* Run by the fuzzer's own thread, which never allocates (so it never gets a thread cache): its
 * frees are remote frees into the runs the ended threads orphaned. */
static void finish(void) {
  free_all_slots();
  for (int h = 0; h < HOLDS; h++) release(h);
}

static void setup(void) {
  static bool done;
  if (done) return;
  done = true;
  hak_option_get("HAKMEM_DECAY_MS"); /* initialises the process without allocating */
  hak_opt.decay_ms = 3600000;       /* memory goes back only when the harness trims */
  hak_opt.slab_dirty_pct = 0;       /* ... not by the dirty budget either: a released run's
                                       slabs stay dirty (api_memory tests the budget) */
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    if (hak_run_slabs_for(c) > 1) multi[nmulti++] = c;
  T_INVARIANT(nmulti > 0, "no class has multi-slab runs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hak_opt.remote_batch = 1; /* the model follows each remote free to its run at once */
  setup();
  nknown = 0;
  reused_seen = reused_count();
  run_t r = {f_in(data, size), 0, 0, 0};
  pthread_t t;
  do {
    t_start(&t, run_ops, &r);
    t_join(t);
    check_all(false);
  } while (r.ops < MAX_OPS && f_more(&r.in));
  finish();
  check_all(false);
  for (unsigned i = 0; i < nknown; i++)
    T_INVARIANT(known[i].empty,
                "SuperSlab %p still in use after everything was freed (free_mask %#x)",
                (void *)known[i].ss, known[i].ss->free_mask);
  return 0;
}
