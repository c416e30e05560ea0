/* Counters: per-thread, per-class counts kept by each thread with plain stores, folded into the
 * process totals when the thread exits; process-wide events counted with atomics on slow paths.
 * hak_stats_get() sums the folded totals and the caches of live threads.
 *
 * Output at exit (HAKMEM_STATS): a table per size class on stderr (1) or a JSON document
 * (json:PATH, format below). Both are formatted into stack buffers and written with write(2):
 * nothing here allocates.
 *
 * JSON (every field is an unsigned integer unless said otherwise; README lists them too):
 *   format                  1, bumped when a field changes meaning or goes away
 *   version                 string, "major.minor.patch" of the library
 *   pid                     the process
 *   config                  headerless, tls_hint, debug, checked, debug_hdrless, asan, tsan,
 *                           override, planted_bug (0/1, planted_bug a number)
 *   totals                  allocs, frees, live_blocks, live_bytes, remote_frees, remote_drains,
 *                           drained_blocks, notifies, refills, spills, adopt_tries, adoptions,
 *                           orphaned_slabs, last_free_releases, hint_hits, hint_misses,
 *                           registry_lookups, ace_grows, threads_started, threads_exited
 *   memory                  peak_rss_bytes, mapped_bytes, returned_bytes, slabs_bound,
 *                           superslabs_mapped, superslabs_unmapped, superslabs_reused,
 *                           purge_wakeups, purge_passes, purge_bytes
 *   large                   allocs, frees, cache_hits, live_bytes
 *   classes                 array, one object per size class: class, block_size, allocs,
 *                           frees, remote_frees, remote_drains, drained_blocks, refills, spills,
 *                           adoptions, hint_hits, hint_misses, registry_lookups, live_blocks,
 *                           live_bytes
 *   one_shot_logs           array of {tag (string), count}: the one-shot log sites that fired
 *                           (HAKMEM_DEBUG_HDRLESS builds) and how often each was reached
 * totals.allocs == sum of classes[].allocs + large.allocs; the same for frees. */
#include <string.h>

#include "hakmem.h"
#include "internal.h"

static _Atomic(int64_t) gstat[HAK_G_COUNT];
static hak_tstat_t retired_class;
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
  fold((_Atomic(uint64_t) *)&retired_class, (_Atomic(uint64_t) *)&tc->stat, FIELDS(hak_tstat_t));
  fold((_Atomic(uint64_t) *)&retired_ev, (_Atomic(uint64_t) *)&tc->ev, FIELDS(hak_tevents_t));
}

/* A remote free by a thread that has no cache any more (after its exit): counted straight
 * into the retired totals. */
void hak_stats_remote_free_dead(int cls, bool notified) {
  atomic_fetch_add_explicit(&retired_class.frees[cls], 1, hak_relaxed);
  atomic_fetch_add_explicit(&retired_class.remote_frees[cls], 1, hak_relaxed);
  if (notified) atomic_fetch_add_explicit(&retired_ev.notifies, 1, hak_relaxed);
}

typedef struct sum_s {
  hak_tstat_t cls;
  hak_tevents_t ev;
} sum_t;

static void add_fields(_Atomic(uint64_t) *dst, _Atomic(uint64_t) *src, size_t n) {
  for (size_t i = 0; i < n; i++) atomic_store_explicit(&dst[i], ld(&dst[i]) + ld(&src[i]), hak_relaxed);
}

static void sum_one(hak_tcache_t *tc, void *arg) {
  sum_t *s = arg;
  add_fields((_Atomic(uint64_t) *)&s->cls, (_Atomic(uint64_t) *)&tc->stat, FIELDS(hak_tstat_t));
  add_fields((_Atomic(uint64_t) *)&s->ev, (_Atomic(uint64_t) *)&tc->ev, FIELDS(hak_tevents_t));
}

static void sum_all(sum_t *s) {
  memset(s, 0, sizeof(*s));
  add_fields((_Atomic(uint64_t) *)&s->cls, (_Atomic(uint64_t) *)&retired_class,
             FIELDS(hak_tstat_t));
  add_fields((_Atomic(uint64_t) *)&s->ev, (_Atomic(uint64_t) *)&retired_ev, FIELDS(hak_tevents_t));
  hak_tcaches_foreach(sum_one, s);
}

static uint64_t g(hak_gstat_t which) {
  int64_t v = atomic_load_explicit(&gstat[which], hak_relaxed);
  return v < 0 ? 0 : (uint64_t)v;
}

static uint64_t sub0(uint64_t a, uint64_t b) { return a >= b ? a - b : 0; }

/* One class's row from the sums; tls_cap is the calling thread's. */
static void class_row(sum_t *s, int c, hak_class_stats_t *out) {
  hak_tstat_t *t = &s->cls;
  memset(out, 0, sizeof(*out));
  out->block_size = hak_class_size(c);
  out->allocs = ld(&t->allocs[c]);
  out->frees = ld(&t->frees[c]);
  out->remote_frees = ld(&t->remote_frees[c]);
  out->refills = ld(&t->refills[c]);
  out->spills = ld(&t->spills[c]);
  out->tls_cap = hak_tc->sll[c].cap;
  out->remote_drains = ld(&t->remote_drains[c]);
  out->drained_blocks = ld(&t->drained_blocks[c]);
  out->adoptions = ld(&t->adoptions[c]);
  out->hint_hits = ld(&t->hint_hits[c]);
  out->hint_misses = ld(&t->hint_misses[c]);
  /* Every free the hint box did not resolve looked its SuperSlab up in the registry. */
  out->registry_lookups = sub0(out->frees, out->hint_hits);
  out->live_blocks = sub0(out->allocs, out->frees);
  out->live_bytes = out->live_blocks * out->block_size;
}

static void totals_of(sum_t *s, hak_stats_t *out) {
  memset(out, 0, sizeof(*out));
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_class_stats_t r;
    class_row(s, c, &r);
    out->allocs += r.allocs;
    out->frees += r.frees;
    out->remote_frees += r.remote_frees;
    out->refills += r.refills;
    out->spills += r.spills;
    out->remote_drains += r.remote_drains;
    out->drained_blocks += r.drained_blocks;
    out->adoptions += r.adoptions;
    out->hint_hits += r.hint_hits;
    out->hint_misses += r.hint_misses;
    out->registry_lookups += r.registry_lookups;
    out->live_bytes += r.live_bytes;
  }
  out->large_allocs = g(HAK_G_LARGE_ALLOCS);
  out->large_frees = g(HAK_G_LARGE_FREES);
  out->large_live_bytes = g(HAK_G_LARGE_LIVE_BYTES);
  out->allocs += out->large_allocs;
  out->frees += out->large_frees;
  out->live_bytes += out->large_live_bytes;
  out->live_blocks = sub0(out->allocs, out->frees);
  out->notifies = ld(&s->ev.notifies);
  out->adopt_tries = ld(&s->ev.adopt_tries);
  out->ace_grows = ld(&s->ev.ace_grows);
  out->orphaned_slabs = g(HAK_G_ORPHANED);
  out->last_free_releases = g(HAK_G_LAST_FREE_RELEASES);
  out->slabs_bound = g(HAK_G_SLABS_BOUND);
  out->superslabs_mapped = g(HAK_G_SS_MAPPED);
  out->superslabs_unmapped = g(HAK_G_SS_UNMAPPED);
  out->superslabs_reused = g(HAK_G_SS_REUSED);
  out->large_cache_hits = g(HAK_G_LARGE_CACHE_HITS);
  out->bytes_mapped = g(HAK_G_BYTES_MAPPED);
  out->bytes_purged = g(HAK_G_BYTES_PURGED);
  out->threads_started = g(HAK_G_THREADS_STARTED);
  out->threads_exited = g(HAK_G_THREADS_EXITED);
  out->purge_wakeups = g(HAK_G_PURGE_WAKEUPS);
  out->purge_passes = g(HAK_G_PURGE_PASSES);
  out->purge_bytes = g(HAK_G_PURGE_BYTES);
  out->peak_rss_bytes = hak_os_peak_rss_kb() * 1024;
}

hak_api void hak_stats_get(hak_stats_t *out) {
  sum_t s;
  sum_all(&s);
  totals_of(&s, out);
}

hak_api int hak_class_count(void) { return HAK_NUM_CLASSES; }

hak_api void hak_class_stats_get(int cls, hak_class_stats_t *out) {
  memset(out, 0, sizeof(*out));
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return;
  sum_t s;
  sum_all(&s);
  class_row(&s, cls, out);
}

/* ---- output: a stack buffer flushed with write(2) when it fills -------------------------- */

typedef struct out_s {
  int fd;
  bool first; /* JSON: no comma before the next member */
  hak_buf_t b;
  char buf[1024];
} out_t;

static void out_init(out_t *o, int fd) {
  o->fd = fd;
  o->first = true;
  o->b.p = o->buf;
  o->b.end = o->buf + sizeof(o->buf);
}

static void out_flush(out_t *o) {
  hak_os_write(o->fd, o->buf, (size_t)(o->b.p - o->buf));
  o->b.p = o->buf;
}

/* Makes room for n bytes (every single item written is shorter than the buffer). */
static void out_room(out_t *o, size_t n) {
  if ((size_t)(o->b.end - o->b.p) < n) out_flush(o);
}

static void out_str(out_t *o, const char *s) {
  out_room(o, strlen(s) + 1);
  hak_buf_str(&o->b, s);
}

/* Right-aligned number in a column of width w. */
static void out_col(out_t *o, uint64_t v, size_t w) {
  char tmp[24];
  hak_buf_t t = {tmp, tmp + sizeof(tmp)};
  hak_buf_u64(&t, v);
  size_t n = (size_t)(t.p - tmp);
  out_room(o, w + n);
  for (size_t i = n; i < w; i++) *o->b.p++ = ' ';
  for (size_t i = 0; i < n; i++) *o->b.p++ = tmp[i];
}

static void out_kv(out_t *o, const char *key, uint64_t v) {
  out_str(o, " ");
  out_str(o, key);
  out_str(o, "=");
  out_col(o, v, 0);
}

/* ---- the table (HAKMEM_STATS=1) ----------------------------------------------------------- */

static int stats_fd = 2;

void hak_stats_init(void) {
  if (hak_opt.stats == HAK_STATS_TABLE) stats_fd = hak_os_dup_stderr();
}

static const char table_head[] =
    "hakmem: class    size     allocs      frees     remote  drains  refills   spills  adopt"
    "   hint_hit  hint_miss   registry   live_bytes\n";

static void table_row(out_t *o, int c, const hak_class_stats_t *r) {
  out_str(o, "hakmem: ");
  out_col(o, (uint64_t)c, 5);
  out_col(o, r->block_size, 8);
  out_col(o, r->allocs, 11);
  out_col(o, r->frees, 11);
  out_col(o, r->remote_frees, 11);
  out_col(o, r->remote_drains, 8);
  out_col(o, r->refills, 9);
  out_col(o, r->spills, 9);
  out_col(o, r->adoptions, 7);
  out_col(o, r->hint_hits, 11);
  out_col(o, r->hint_misses, 11);
  out_col(o, r->registry_lookups, 11);
  out_col(o, r->live_bytes, 13);
  out_str(o, "\n");
}

static void table_totals(out_t *o, const hak_stats_t *st) {
  out_str(o, "hakmem: large allocs=");
  out_col(o, st->large_allocs, 0);
  out_kv(o, "frees", st->large_frees);
  out_kv(o, "cache_hits", st->large_cache_hits);
  out_kv(o, "live_bytes", st->large_live_bytes);
  out_str(o, "\nhakmem: total");
  out_kv(o, "allocs", st->allocs);
  out_kv(o, "frees", st->frees);
  out_kv(o, "live", st->live_blocks);
  out_kv(o, "live_bytes", st->live_bytes);
  out_kv(o, "remote_frees", st->remote_frees);
  out_kv(o, "drains", st->remote_drains);
  out_kv(o, "notifies", st->notifies);
  out_kv(o, "refills", st->refills);
  out_kv(o, "spills", st->spills);
  out_str(o, "\nhakmem: boxes");
  out_kv(o, "adopt_tries", st->adopt_tries);
  out_kv(o, "adoptions", st->adoptions);
  out_kv(o, "orphaned", st->orphaned_slabs);
  out_kv(o, "last_free_releases", st->last_free_releases);
  out_kv(o, "hint_hits", st->hint_hits);
  out_kv(o, "hint_misses", st->hint_misses);
  out_kv(o, "registry_lookups", st->registry_lookups);
  out_kv(o, "ace_grows", st->ace_grows);
  out_str(o, "\nhakmem: memory");
  out_kv(o, "peak_rss_kb", st->peak_rss_bytes / 1024);
  out_kv(o, "mapped_bytes", st->bytes_mapped);
  out_kv(o, "returned_bytes", st->bytes_purged);
  out_kv(o, "superslabs", st->superslabs_mapped);
  out_kv(o, "superslabs_unmapped", st->superslabs_unmapped);
  out_kv(o, "superslabs_reused", st->superslabs_reused);
  out_kv(o, "threads", st->threads_started);
  out_kv(o, "purge_wakeups", st->purge_wakeups);
  out_kv(o, "purge_passes", st->purge_passes);
  out_kv(o, "purge_bytes", st->purge_bytes);
  out_str(o, "\n");
}

static void table_logs(out_t *o) {
  const char *tags[HAK_LOG_SITES_MAX];
  uint64_t counts[HAK_LOG_SITES_MAX];
  int n = hak_log_sites(tags, counts, HAK_LOG_SITES_MAX);
  for (int i = 0; i < n; i++) {
    out_str(o, "hakmem: one-shot log ");
    out_str(o, tags[i]);
    out_kv(o, "reached", counts[i]);
    out_str(o, "\n");
  }
}

hak_api void hak_stats_print(void) {
  sum_t s;
  sum_all(&s);
  out_t o;
  out_init(&o, stats_fd);
  out_str(&o, table_head);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_class_stats_t r;
    class_row(&s, c, &r);
    if (r.allocs != 0 || r.frees != 0) table_row(&o, c, &r);
  }
  hak_stats_t st;
  totals_of(&s, &st);
  table_totals(&o, &st);
  table_logs(&o);
  out_flush(&o);
}

/* ---- JSON (HAKMEM_STATS=json:PATH) ---------------------------------------------------------- */

static void j_key(out_t *o, const char *key) {
  out_str(o, o->first ? "" : ", ");
  o->first = false;
  if (key == NULL) return;
  out_str(o, "\"");
  out_str(o, key);
  out_str(o, "\": ");
}

static void j_u64(out_t *o, const char *key, uint64_t v) {
  j_key(o, key);
  out_col(o, v, 0);
}

/* Strings hakmem writes are its own (tags, version): no character needs escaping. */
static void j_str(out_t *o, const char *key, const char *v) {
  j_key(o, key);
  out_str(o, "\"");
  out_str(o, v);
  out_str(o, "\"");
}

static void j_open(out_t *o, const char *key, const char *bracket) {
  j_key(o, key);
  out_str(o, bracket);
  o->first = true;
}

static void j_close(out_t *o, const char *bracket) {
  out_str(o, bracket);
  o->first = false;
}

static void json_config(out_t *o) {
  j_open(o, "config", "{");
  j_u64(o, "headerless", HAKMEM_TINY_HEADERLESS);
  j_u64(o, "tls_hint", HAK_HINT_COMPILED);
  j_u64(o, "debug", HAKMEM_DEBUG);
  j_u64(o, "checked", HAKMEM_CHECKED);
  j_u64(o, "debug_hdrless", HAKMEM_DEBUG_HDRLESS);
  j_u64(o, "asan", HAKMEM_ASAN);
  j_u64(o, "tsan", HAKMEM_TSAN);
  j_u64(o, "override", HAKMEM_OVERRIDE);
  j_u64(o, "planted_bug", HAKMEM_PLANT_BUG);
  j_close(o, "}");
}

static void json_totals(out_t *o, const hak_stats_t *st) {
  j_open(o, "totals", "{");
  j_u64(o, "allocs", st->allocs);
  j_u64(o, "frees", st->frees);
  j_u64(o, "live_blocks", st->live_blocks);
  j_u64(o, "live_bytes", st->live_bytes);
  j_u64(o, "remote_frees", st->remote_frees);
  j_u64(o, "remote_drains", st->remote_drains);
  j_u64(o, "drained_blocks", st->drained_blocks);
  j_u64(o, "notifies", st->notifies);
  j_u64(o, "refills", st->refills);
  j_u64(o, "spills", st->spills);
  j_u64(o, "adopt_tries", st->adopt_tries);
  j_u64(o, "adoptions", st->adoptions);
  j_u64(o, "orphaned_slabs", st->orphaned_slabs);
  j_u64(o, "last_free_releases", st->last_free_releases);
  j_u64(o, "hint_hits", st->hint_hits);
  j_u64(o, "hint_misses", st->hint_misses);
  j_u64(o, "registry_lookups", st->registry_lookups);
  j_u64(o, "ace_grows", st->ace_grows);
  j_u64(o, "threads_started", st->threads_started);
  j_u64(o, "threads_exited", st->threads_exited);
  j_close(o, "}");
  j_open(o, "memory", "{");
  j_u64(o, "peak_rss_bytes", st->peak_rss_bytes);
  j_u64(o, "mapped_bytes", st->bytes_mapped);
  j_u64(o, "returned_bytes", st->bytes_purged);
  j_u64(o, "slabs_bound", st->slabs_bound);
  j_u64(o, "superslabs_mapped", st->superslabs_mapped);
  j_u64(o, "superslabs_unmapped", st->superslabs_unmapped);
  j_u64(o, "superslabs_reused", st->superslabs_reused);
  j_u64(o, "purge_wakeups", st->purge_wakeups);
  j_u64(o, "purge_passes", st->purge_passes);
  j_u64(o, "purge_bytes", st->purge_bytes);
  j_close(o, "}");
  j_open(o, "large", "{");
  j_u64(o, "allocs", st->large_allocs);
  j_u64(o, "frees", st->large_frees);
  j_u64(o, "cache_hits", st->large_cache_hits);
  j_u64(o, "live_bytes", st->large_live_bytes);
  j_close(o, "}");
}

static void json_class(out_t *o, int c, const hak_class_stats_t *r) {
  j_open(o, NULL, "{");
  j_u64(o, "class", (uint64_t)c);
  j_u64(o, "block_size", r->block_size);
  j_u64(o, "allocs", r->allocs);
  j_u64(o, "frees", r->frees);
  j_u64(o, "remote_frees", r->remote_frees);
  j_u64(o, "remote_drains", r->remote_drains);
  j_u64(o, "drained_blocks", r->drained_blocks);
  j_u64(o, "refills", r->refills);
  j_u64(o, "spills", r->spills);
  j_u64(o, "adoptions", r->adoptions);
  j_u64(o, "hint_hits", r->hint_hits);
  j_u64(o, "hint_misses", r->hint_misses);
  j_u64(o, "registry_lookups", r->registry_lookups);
  j_u64(o, "live_blocks", r->live_blocks);
  j_u64(o, "live_bytes", r->live_bytes);
  j_close(o, "}");
}

static void json_logs(out_t *o) {
  const char *tags[HAK_LOG_SITES_MAX];
  uint64_t counts[HAK_LOG_SITES_MAX];
  int n = hak_log_sites(tags, counts, HAK_LOG_SITES_MAX);
  j_open(o, "one_shot_logs", "[");
  for (int i = 0; i < n; i++) {
    j_open(o, NULL, "{");
    j_str(o, "tag", tags[i]);
    j_u64(o, "count", counts[i]);
    j_close(o, "}");
  }
  j_close(o, "]");
}

static void json_write(int fd) {
  sum_t s;
  sum_all(&s);
  hak_stats_t st;
  totals_of(&s, &st);
  out_t o;
  out_init(&o, fd);
  j_open(&o, NULL, "{");
  j_u64(&o, "format", 1);
  char ver[32];
  hak_buf_t v = {ver, ver + sizeof(ver) - 1};
  hak_buf_u64(&v, HAKMEM_VERSION_MAJOR);
  hak_buf_str(&v, ".");
  hak_buf_u64(&v, HAKMEM_VERSION_MINOR);
  hak_buf_str(&v, ".");
  hak_buf_u64(&v, HAKMEM_VERSION_PATCH);
  *v.p = '\0';
  j_str(&o, "version", ver);
  j_u64(&o, "pid", (uint64_t)hak_os_getpid());
  json_config(&o);
  json_totals(&o, &st);
  j_open(&o, "classes", "[");
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_class_stats_t r;
    class_row(&s, c, &r);
    json_class(&o, c, &r);
  }
  j_close(&o, "]");
  json_logs(&o);
  j_close(&o, "}\n");
  out_flush(&o);
}

void hak_stats_at_exit(void) {
  if (hak_opt.stats == HAK_STATS_TABLE) {
    hak_stats_print();
  } else if (hak_opt.stats == HAK_STATS_JSON) {
    int fd = hak_os_open(hak_opt.stats_path, true);
    if (fd < 0) {
      hak_warn("cannot write the statistics file", hak_opt.stats_path);
      return;
    }
    json_write(fd);
    hak_os_close(fd);
  }
}
