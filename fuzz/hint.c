/* Fuzz harness of the hint box (src/tiny/hint.h, hint.c): the per-thread cache of recent
 * SuperSlabs that lets a headerless free skip the registry.
 *
 * A harness thread allocates and frees blocks (its local frees miss the hint and insert the
 * block's SuperSlab, or hit it), inserts SuperSlabs it has seen directly with
 * hak_hint_insert(), and starts worker threads that allocate bursts of one class, free them and
 * exit: their runs are released, so SuperSlabs they alone used become empty, and are then
 * reused by later allocations (generation bump) or unmapped by hak_trim(). The harness keeps a
 * shadow of the hint ways: the SuperSlab and its generation at insert time, and whether it
 * has been seen unregistered or unmapped since (mincore). After every operation, for every
 * SuperSlab the harness has seen and every shadow entry:
 *   - hak_hint_hit(tc, ss) true implies a shadow entry for ss that is still valid: never seen
 *     unmapped since the insert, registered as a SuperSlab (hak_registry_kind) and mapped now,
 *     and at the generation recorded at insert time: a recycled or unmapped SuperSlab never
 *     hits;
 *   - the ways hold what the shadow says (SuperSlab and generation, most recent first);
 * and for every free by the harness thread: it either hit or missed (one of the counters moved
 * by one); a hit needs a valid shadow entry for the block's SuperSlab from before the free; a
 * miss inserts it, and it hits right after. Elsewhere (header mode, or the hint not compiled
 * in: HAK_HINT_COMPILED is 0) the same operations run and hak_hint_hit() never returns true,
 * and no free counts a hit. With HAKMEM_TINY_SS_TLS_HINT=0 in the environment nothing is ever
 * inserted, so nothing may hit. Time-based decay is switched off (hak_opt.decay_ms), so
 * SuperSlabs are unmapped only by the harness's trims.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 slot class          the harness thread allocates a block of class into slot
 *   1 slot                it frees slot
 *   2 class k order       a worker allocates k % 32 + 1 blocks of class, frees them (order
 *                         even: newest first, odd: oldest first) and exits (at most
 *                         MAX_WORKERS per input; later ones are skipped)
 *   3                     hak_trim()
 *   4 index               hak_hint_insert() of the index-th SuperSlab seen, if still registered
 *   5                     free every slot
 *   6 slot class k        allocate k % 16 + 1 blocks of class into slot, slot + 1, ... */
#include <sys/mman.h>

#include "fast.h"
#include "fuzz.h"
#include "fuzz_seq.h"

#define SLOTS 32
#define MAX_OPS 256
#define MAX_SEEN 64
#define MAX_WORKERS 4 /* worker threads per input (each start costs) */
#define WORKER_BLOCKS 32

typedef struct shadow_s {
  uintptr_t ss; /* SuperSlab inserted; 0 for an empty way */
  uint64_t gen; /* its generation at insert time */
  bool dead;    /* seen unregistered or unmapped since */
} shadow_t;

static void *slot[SLOTS];
static uintptr_t seen[MAX_SEEN]; /* SuperSlabs seen, in order of first sight */
static unsigned nseen;
static shadow_t sh[HAK_HINT_WAYS];
static int workers;

/* ---- the SuperSlabs -------------------------------------------------------------------------- */

static void remember(const void *p) {
  uintptr_t ss = (uintptr_t)hak_ss_of(p);
  for (unsigned i = 0; i < nseen; i++)
    if (seen[i] == ss) return;
  if (nseen < MAX_SEEN) seen[nseen++] = ss;
}

/* Registered as a SuperSlab and mapped: its header may be read. */
F_NOCOV static bool live_ss(uintptr_t ss) {
  unsigned char v;
  return hak_registry_kind(ss) == HAK_REGION_SS && mincore((void *)ss, HAK_PAGE_SIZE, &v) == 0;
}

static uint64_t generation(uintptr_t ss) {
  return atomic_load_explicit(&((hak_superslab_t *)ss)->generation, memory_order_relaxed);
}

/* The hint is filled only where it is compiled in and switched on. */
static bool model_on(void) { return HAK_HINT_COMPILED && hak_opt.tls_hint; }

static void shadow_insert(uintptr_t ss, uint64_t gen) {
  for (int i = HAK_HINT_WAYS - 1; i > 0; i--) sh[i] = sh[i - 1];
  sh[0] = (shadow_t){ss, gen, false};
}

F_NOCOV static bool shadow_valid(uintptr_t ss) {
  for (int i = 0; i < HAK_HINT_WAYS; i++)
    if (sh[i].ss == ss && !sh[i].dead && live_ss(ss) && generation(ss) == sh[i].gen) return true;
  return false;
}

/* ---- checks --------------------------------------------------------------------------------- */

F_NOCOV static void check_hit(uintptr_t ss) {
  if (!hak_hint_hit(hak_tc, ss)) return;
  T_INVARIANT(model_on(), "hint hit for %#lx in a build or run without the hint box",
              (unsigned long)ss);
  T_INVARIANT(shadow_valid(ss), "stale hint hit for SuperSlab %#lx (%s, generation %llu)",
              (unsigned long)ss, live_ss(ss) ? "registered" : "not registered",
              live_ss(ss) ? (unsigned long long)generation(ss) : 0ull);
}

F_NOCOV static void check_hints(void) {
  for (int i = 0; i < HAK_HINT_WAYS; i++)
    if (sh[i].ss != 0 && !live_ss(sh[i].ss)) sh[i].dead = true;
  for (unsigned i = 0; i < nseen; i++) check_hit(seen[i]);
  for (int i = 0; i < HAK_HINT_WAYS; i++) {
    if (sh[i].ss != 0) check_hit(sh[i].ss);
    if (!model_on()) continue;
    const hak_hint_t *h = &hak_tc->hint[i];
    T_INVARIANT(h->ss == sh[i].ss && (h->ss == 0 || h->gen == sh[i].gen),
                "hint way %d holds %#lx generation %llu, the shadow %#lx generation %llu", i,
                (unsigned long)h->ss, (unsigned long long)h->gen, (unsigned long)sh[i].ss,
                (unsigned long long)sh[i].gen);
  }
}

/* ---- the harness thread's blocks ------------------------------------------------------------ */

static size_t size_of_class(unsigned c) { return hak_class_size((int)c); }

static void alloc_slot(unsigned i, unsigned c) {
  void *p = hak_malloc(size_of_class(c));
  T_INVARIANT(p != NULL, "hak_malloc of class %u failed", c);
  memset(p, 0x5A, 16);
  remember(p);
  slot[i] = p;
}


/* A local free: hit (through a valid entry) or miss (which inserts). */
static void free_slot(unsigned i) {
  void *p = slot[i];
  slot[i] = NULL;
  uintptr_t ss = (uintptr_t)hak_ss_of(p);
  uint64_t gen = generation(ss);
  bool valid = shadow_valid(ss);
  uint64_t hits = t_tc_hint_hits(hak_tc), misses = t_tc_sum(hak_tc, hint_misses);
  hak_free(p);
  uint64_t dh = t_tc_hint_hits(hak_tc) - hits;
  uint64_t dm = t_tc_sum(hak_tc, hint_misses) - misses;
  if (!HAK_HINT_COMPILED) {
    T_INVARIANT(dh == 0 && dm == 0,
                "free(%p): hint counters moved (%llu hits, %llu misses) without "
                "the hint box",
                p, (unsigned long long)dh, (unsigned long long)dm);
    return;
  }
  T_INVARIANT(dh + dm == 1, "free(%p): %llu hits and %llu misses", p, (unsigned long long)dh,
              (unsigned long long)dm);
  T_INVARIANT(dh == 0 || valid, "free(%p) hit a stale hint for SuperSlab %#lx", p,
              (unsigned long)ss);
  if (dm == 1 && model_on()) {
    shadow_insert(ss, gen);
    T_INVARIANT(hak_hint_hit(hak_tc, ss), "no hint hit for %#lx right after the miss inserted it",
                (unsigned long)ss);
  }
}

static void free_all(void) {
  for (unsigned i = 0; i < SLOTS; i++)
    if (slot[i] != NULL) free_slot(i);
}

/* ---- workers -------------------------------------------------------------------------------- */

typedef struct work_s {
  unsigned cls, k;
  bool newest_first;
} work_t;

static void *worker(void *arg) {
  const work_t *w = arg;
  void *b[WORKER_BLOCKS];
  for (unsigned i = 0; i < w->k; i++) {
    b[i] = hak_malloc(size_of_class(w->cls));
    T_INVARIANT(b[i] != NULL, "worker: hak_malloc of class %u failed", w->cls);
    memset(b[i], 0xA5, 16);
    remember(b[i]); /* the harness thread is waiting in pthread_join */
  }
  for (unsigned i = 0; i < w->k; i++) hak_free(b[w->newest_first ? w->k - 1 - i : i]);
  return NULL;
}

static void run_worker(f_in_t *in) {
  work_t w = {f_below(in, HAK_NUM_CLASSES), f_u8(in) % WORKER_BLOCKS + 1, (f_u8(in) & 1) == 0};
  if (workers >= MAX_WORKERS) return;
  workers++;
  pthread_t t;
  t_start(&t, worker, &w);
  t_join(t);
}

/* ---- operations ----------------------------------------------------------------------------- */

static void insert_seen(unsigned idx) {
  if (nseen == 0) return;
  uintptr_t ss = seen[idx % nseen];
  if (!live_ss(ss)) return;
  uint64_t gen = generation(ss);
  hak_hint_insert(hak_tc, ss);
  if (model_on()) shadow_insert(ss, gen);
}

/* Runs one operation and checks the hints; the input runs in one thread, which never ends
 * early. */
static bool run_op(f_in_t *in, bool may_end) {
  (void)may_end;
  switch (f_u8(in) % 7) {
  case 0: {
    unsigned i = f_below(in, SLOTS), c = f_below(in, HAK_NUM_CLASSES);
    if (slot[i] != NULL) free_slot(i);
    alloc_slot(i, c);
    break;
  }
  case 1: {
    unsigned i = f_below(in, SLOTS);
    if (slot[i] != NULL) free_slot(i);
    break;
  }
  case 2: run_worker(in); break;
  case 3: hak_trim(); break;
  case 4: insert_seen(f_u8(in)); break;
  case 5: free_all(); break;
  default: {
    unsigned i = f_below(in, SLOTS), c = f_below(in, HAK_NUM_CLASSES), k = f_u8(in) % 16 + 1;
    for (unsigned j = 0; j < k; j++, i = (i + 1) % SLOTS) {
      if (slot[i] != NULL) free_slot(i);
      alloc_slot(i, c);
    }
    break;
  }
  }
  check_hints();
  return true;
}

static void thread_start(void) {
  memset(sh, 0, sizeof sh); /* a new thread's cache starts with empty ways */
  alloc_slot(0, 0);        /* a live cache: hak_hint_insert() writes into it */
  free_slot(0);
  check_hints();
}

static void finish(void) {
  free_all();
  check_hints();
}

static const f_seq_t seq = {.op = run_op, .thread_start = thread_start, .finish = finish,
                            .max_ops = MAX_OPS, .max_threads = 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool once;
  if (!once) {
    /* No SuperSlab is unmapped but by the trims. Set once, before the first free: the purge
     * thread reads it. */
    hak_opt.decay_ms = 3600000;
    once = true;
  }
  nseen = 0;
  workers = 0;
  f_seq_run(&seq, data, size);
  hak_trim();
  return 0;
}
