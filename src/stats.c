/* Counters: per-thread, per-class counts kept by each thread with plain stores, folded into the
 * process totals when the thread exits; process-wide events counted with atomics on slow paths.
 * hak_stats_get() sums the folded totals and the caches of live threads. */
#include <string.h>

#include "hakmem.h"
#include "internal.h"

static _Atomic(int64_t) gstat[HAK_G_COUNT];
static hak_tstat_t retired_class[HAK_NUM_CLASSES];
static hak_tevents_t retired_ev;

void hak_gstat_add(hak_gstat_t which, int64_t n) {
  atomic_fetch_add_explicit(&gstat[which], n, hak_relaxed);
}

static uint64_t ld(_Atomic(uint64_t) *v) { return atomic_load_explicit(v, hak_relaxed); }

/* Adds src into dst (atomically: several threads retire at once) and zeroes src. */
static void fold(_Atomic(uint64_t) *dst, _Atomic(uint64_t) *src, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t v = ld(&src[i]);
    if (v) atomic_fetch_add_explicit(&dst[i], v, hak_relaxed);
    atomic_store_explicit(&src[i], 0, hak_relaxed);
  }
}

#define FIELDS(s) (sizeof(s) / sizeof(_Atomic(uint64_t)))

void hak_stats_retire(hak_tcache_t *tc) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    fold((_Atomic(uint64_t) *)&retired_class[c], (_Atomic(uint64_t) *)&tc->stat[c],
         FIELDS(hak_tstat_t));
  fold((_Atomic(uint64_t) *)&retired_ev, (_Atomic(uint64_t) *)&tc->ev, FIELDS(hak_tevents_t));
}

typedef struct sum_s {
  hak_tstat_t cls[HAK_NUM_CLASSES];
  hak_tevents_t ev;
} sum_t;

static void add_fields(_Atomic(uint64_t) *dst, _Atomic(uint64_t) *src, size_t n) {
  for (size_t i = 0; i < n; i++) atomic_store_explicit(&dst[i], ld(&dst[i]) + ld(&src[i]), hak_relaxed);
}

static void sum_one(hak_tcache_t *tc, void *arg) {
  sum_t *s = arg;
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    add_fields((_Atomic(uint64_t) *)&s->cls[c], (_Atomic(uint64_t) *)&tc->stat[c],
               FIELDS(hak_tstat_t));
  add_fields((_Atomic(uint64_t) *)&s->ev, (_Atomic(uint64_t) *)&tc->ev, FIELDS(hak_tevents_t));
}

static void sum_all(sum_t *s) {
  memset(s, 0, sizeof(*s));
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    add_fields((_Atomic(uint64_t) *)&s->cls[c], (_Atomic(uint64_t) *)&retired_class[c],
               FIELDS(hak_tstat_t));
  add_fields((_Atomic(uint64_t) *)&s->ev, (_Atomic(uint64_t) *)&retired_ev, FIELDS(hak_tevents_t));
  hak_tcaches_foreach(sum_one, s);
}

static uint64_t g(hak_gstat_t which) {
  int64_t v = atomic_load_explicit(&gstat[which], hak_relaxed);
  return v < 0 ? 0 : (uint64_t)v;
}

hak_api void hak_stats_get(hak_stats_t *out) {
  sum_t s;
  sum_all(&s);
  memset(out, 0, sizeof(*out));
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    out->allocs += ld(&s.cls[c].allocs);
    out->frees += ld(&s.cls[c].frees);
    out->remote_frees += ld(&s.cls[c].remote_frees);
    out->refills += ld(&s.cls[c].refills);
    out->spills += ld(&s.cls[c].spills);
  }
  out->frees += g(HAK_G_REMOTE_FREES_NO_TC);
  out->remote_frees += g(HAK_G_REMOTE_FREES_NO_TC);
  out->allocs += g(HAK_G_LARGE_ALLOCS);
  out->frees += g(HAK_G_LARGE_FREES);
  out->remote_drains = ld(&s.ev.remote_drains);
  out->drained_blocks = ld(&s.ev.drained_blocks);
  out->notifies = ld(&s.ev.notifies) + g(HAK_G_NOTIFIES_NO_TC);
  out->adopt_tries = ld(&s.ev.adopt_tries);
  out->adoptions = ld(&s.ev.adoptions);
  out->hint_hits = ld(&s.ev.hint_hits);
  out->hint_misses = ld(&s.ev.hint_misses);
  /* Every slab free not resolved by the hint went through the registry. */
  uint64_t slab_frees = out->frees - g(HAK_G_LARGE_FREES);
  out->registry_lookups = slab_frees - out->hint_hits;
  out->ace_grows = ld(&s.ev.ace_grows);
  out->orphaned_slabs = g(HAK_G_ORPHANED);
  out->last_free_releases = g(HAK_G_LAST_FREE_RELEASES);
  out->slabs_bound = g(HAK_G_SLABS_BOUND);
  out->superslabs_mapped = g(HAK_G_SS_MAPPED);
  out->superslabs_unmapped = g(HAK_G_SS_UNMAPPED);
  out->superslabs_reused = g(HAK_G_SS_REUSED);
  out->large_allocs = g(HAK_G_LARGE_ALLOCS);
  out->large_cache_hits = g(HAK_G_LARGE_CACHE_HITS);
  out->bytes_mapped = g(HAK_G_BYTES_MAPPED);
  out->bytes_purged = g(HAK_G_BYTES_PURGED);
  out->live_blocks = out->allocs >= out->frees ? out->allocs - out->frees : 0;
  out->threads_started = g(HAK_G_THREADS_STARTED);
  out->threads_exited = g(HAK_G_THREADS_EXITED);
}

hak_api int hak_class_count(void) { return HAK_NUM_CLASSES; }

hak_api void hak_class_stats_get(int cls, hak_class_stats_t *out) {
  memset(out, 0, sizeof(*out));
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return;
  sum_t s;
  sum_all(&s);
  out->block_size = hak_class_size(cls);
  out->allocs = ld(&s.cls[cls].allocs);
  out->frees = ld(&s.cls[cls].frees);
  out->remote_frees = ld(&s.cls[cls].remote_frees);
  out->refills = ld(&s.cls[cls].refills);
  out->spills = ld(&s.cls[cls].spills);
  out->tls_cap = hak_tc->sll[cls].cap;
}

/* ---- printing (stack buffers, one write per line; no allocation) ----------------------------- */

static void col(hak_buf_t *b, uint64_t v, size_t width) {
  char tmp[24];
  hak_buf_t t = {tmp, tmp + sizeof(tmp)};
  hak_buf_u64(&t, v);
  size_t n = (size_t)(t.p - tmp);
  for (size_t i = n; i < width && b->p < b->end; i++) *b->p++ = ' ';
  for (size_t i = 0; i < n && b->p < b->end; i++) *b->p++ = tmp[i];
}

static void kv(hak_buf_t *b, const char *key, uint64_t v) {
  hak_buf_str(b, " ");
  hak_buf_str(b, key);
  hak_buf_str(b, "=");
  hak_buf_u64(b, v);
}

static int stats_fd = 2;

void hak_stats_init(void) {
  if (hak_opt.stats == HAK_STATS_TABLE) stats_fd = hak_os_dup_stderr();
}

static void line_out(char *buf, hak_buf_t *b) {
  hak_buf_str(b, "\n");
  hak_os_write(stats_fd, buf, (size_t)(b->p - buf));
}

hak_api void hak_stats_print(void) {
  sum_t s;
  sum_all(&s);
  char buf[512];
  hak_buf_t b = {buf, buf + sizeof(buf) - 2};
  hak_buf_str(&b, "hakmem: class   size      allocs       frees      remote   refills    spills");
  line_out(buf, &b);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_tstat_t *t = &s.cls[c];
    if (ld(&t->allocs) == 0 && ld(&t->frees) == 0) continue;
    b.p = buf;
    hak_buf_str(&b, "hakmem: ");
    col(&b, (uint64_t)c, 5);
    col(&b, hak_class_size(c), 7);
    col(&b, ld(&t->allocs), 12);
    col(&b, ld(&t->frees), 12);
    col(&b, ld(&t->remote_frees), 12);
    col(&b, ld(&t->refills), 10);
    col(&b, ld(&t->spills), 10);
    line_out(buf, &b);
  }
  hak_stats_t st;
  hak_stats_get(&st);
  b.p = buf;
  hak_buf_str(&b, "hakmem: total");
  kv(&b, "allocs", st.allocs);
  kv(&b, "frees", st.frees);
  kv(&b, "live", st.live_blocks);
  kv(&b, "remote_frees", st.remote_frees);
  kv(&b, "drains", st.remote_drains);
  kv(&b, "notifies", st.notifies);
  kv(&b, "refills", st.refills);
  kv(&b, "spills", st.spills);
  line_out(buf, &b);
  b.p = buf;
  hak_buf_str(&b, "hakmem: boxes");
  kv(&b, "adopt_tries", st.adopt_tries);
  kv(&b, "adoptions", st.adoptions);
  kv(&b, "orphaned", st.orphaned_slabs);
  kv(&b, "last_free_releases", st.last_free_releases);
  kv(&b, "hint_hits", st.hint_hits);
  kv(&b, "hint_misses", st.hint_misses);
  kv(&b, "registry_lookups", st.registry_lookups);
  kv(&b, "ace_grows", st.ace_grows);
  line_out(buf, &b);
  b.p = buf;
  hak_buf_str(&b, "hakmem: memory");
  kv(&b, "peak_rss_kb", hak_os_peak_rss_kb());
  kv(&b, "mapped_bytes", st.bytes_mapped);
  kv(&b, "purged_bytes", st.bytes_purged);
  kv(&b, "superslabs", st.superslabs_mapped);
  kv(&b, "superslabs_unmapped", st.superslabs_unmapped);
  kv(&b, "superslabs_reused", st.superslabs_reused);
  kv(&b, "large", st.large_allocs);
  kv(&b, "large_cache_hits", st.large_cache_hits);
  kv(&b, "threads", st.threads_started);
  line_out(buf, &b);
}

void hak_stats_at_exit(void) {
  if (hak_opt.stats == HAK_STATS_TABLE) hak_stats_print();
}
