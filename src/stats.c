/* Counters: per-thread, per-class counts kept by each thread with plain stores, folded into the
 * process totals when the thread exits; per-thread events the same way; process-wide events
 * counted with atomics on slow paths. hak_stats_get() sums the folded totals and the caches of
 * live threads. Which counters there are, and how each field is made, is the lists in
 * hakmem.h (HAKMEM_STATS_FIELDS, HAKMEM_CLASS_STATS_FIELDS): this file expands them, and holds
 * the functions of their DERIVED and CALLER entries.
 *
 * Output at exit (HAKMEM_STATS): a table on stderr (1) or a JSON document (json:PATH). Both
 * are formatted into stack buffers and written with write(2): nothing here allocates.
 *
 * JSON (README's "Statistics" lists every field):
 *   format         2, bumped when a field changes meaning or goes away, or the members of an
 *                  object change order (2: they follow the lists)
 *   version, pid   the library's "major.minor.patch", the process
 *   config         the build (json_config below)
 *   totals, memory, large   hak_stats_t's fields, object.key as the list says, in list order
 *   classes        one object per size class: class, then hak_class_stats_t's fields but the
 *                  CALLER ones, in list order
 *   one_shot_logs  {tag, count} per one-shot log site that fired (HAKMEM_DEBUG_HDRLESS)
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

int64_t hak_gstat_read(hak_gstat_t which) {
  return atomic_load_explicit(&gstat[which], hak_relaxed);
}

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
void hak_stats_remote_free_dead(hak_class_t cls, bool notified) {
  atomic_fetch_add_explicit(&retired_class.frees[cls], 1, hak_relaxed);
  atomic_fetch_add_explicit(&retired_class.remote_frees[cls], 1, hak_relaxed);
  if (notified) atomic_fetch_add_explicit(&retired_ev.notifies, 1, hak_relaxed);
}

/* A hint miss by a thread without a cache of its own (none yet, or after its exit: those
 * caches are shared), counted the same way. */
void hak_stats_hint_miss_shared(hak_class_t cls) {
  atomic_fetch_add_explicit(&retired_class.hint_misses[cls], 1, hak_relaxed);
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

/* ---- the fields, from the lists ------------------------------------------------------- */

/* The DERIVED and CALLER entries of HAKMEM_CLASS_STATS_FIELDS: class c's value, from its row
 * (every counter, and the computed entries listed above this one). */
static uint64_t class_block_size(int c, const hak_class_stats_t *r) { return hak_class_size(c); }
static uint64_t class_tls_cap(int c, const hak_class_stats_t *r) { return hak_tc->sll[c].cap; }
/* Only misses are counted (a hit costs no counter on the fast path); every free of a hint
 * build either hit or missed. */
static uint64_t class_hint_hits(int c, const hak_class_stats_t *r) {
  return HAK_HINT_COMPILED ? sub0(r->frees, r->hint_misses) : 0;
}
/* Every free the hint box did not resolve looked its SuperSlab up in the registry. */
static uint64_t class_registry_lookups(int c, const hak_class_stats_t *r) {
  return sub0(r->frees, r->hint_hits);
}
static uint64_t class_live_blocks(int c, const hak_class_stats_t *r) {
  return sub0(r->allocs, r->frees);
}
static uint64_t class_live_bytes(int c, const hak_class_stats_t *r) {
  return r->live_blocks * r->block_size;
}

/* One class's row from the sums: the counters, then the computed fields in list order. */
static void class_row(sum_t *s, int c, hak_class_stats_t *out) {
  memset(out, 0, sizeof(*out));
#define LOAD(name, doc) out->name = ld(&s->cls.name[c]);
#define CALC(type, name, doc) out->name = (type)class_##name(c, out);
  HAKMEM_CLASS_STATS_FIELDS(LOAD, HAKMEM_STATS_SKIP, HAKMEM_STATS_SKIP)
  HAKMEM_CLASS_STATS_FIELDS(HAKMEM_STATS_SKIP, CALC, CALC)
#undef LOAD
#undef CALC
}

/* Every class's row summed (block_size too, which no total reads). */
static void classes_summed(sum_t *s, hak_class_stats_t *all) {
  memset(all, 0, sizeof(*all));
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_class_stats_t r;
    class_row(s, c, &r);
#define ADD(name, doc) all->name += r.name;
#define ADD_TYPED(type, name, doc) all->name += r.name;
    HAKMEM_CLASS_STATS_FIELDS(ADD, ADD_TYPED, HAKMEM_STATS_SKIP)
#undef ADD
#undef ADD_TYPED
  }
}

/* The DERIVED entries of HAKMEM_STATS_FIELDS: from the other fields (and the derived ones
 * above) and the classes summed. */
static uint64_t total_allocs(const hak_stats_t *t, const hak_class_stats_t *all) {
  return all->allocs + t->large_allocs;
}
static uint64_t total_frees(const hak_stats_t *t, const hak_class_stats_t *all) {
  return all->frees + t->large_frees;
}
static uint64_t total_live_blocks(const hak_stats_t *t, const hak_class_stats_t *all) {
  return sub0(t->allocs, t->frees);
}
static uint64_t total_live_bytes(const hak_stats_t *t, const hak_class_stats_t *all) {
  return all->live_bytes + t->large_live_bytes;
}
static uint64_t total_peak_rss_bytes(const hak_stats_t *t, const hak_class_stats_t *all) {
  return hak_os_peak_rss_kb() * 1024;
}

static void totals_of(sum_t *s, hak_stats_t *out) {
  hak_class_stats_t all;
  classes_summed(s, &all);
  memset(out, 0, sizeof(*out));
#define SUM(name, doc) out->name = all.name;
#define EVENT(name, doc) out->name = ld(&s->ev.name);
#define GLOBAL(name, slot, object, key, doc) out->name = g(HAK_G_##slot);
#define DERIVED(name, object, key, doc) out->name = total_##name(out, &all);
  HAKMEM_STATS_FIELDS(SUM, EVENT, GLOBAL, HAKMEM_STATS_SKIP)
  HAKMEM_STATS_FIELDS(HAKMEM_STATS_SKIP, HAKMEM_STATS_SKIP, HAKMEM_STATS_SKIP, DERIVED)
#undef SUM
#undef EVENT
#undef GLOBAL
#undef DERIVED
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

/* ---- the fields as items, in list order: what the table and the JSON show --------------- */

enum stats_object {
#define OBJECT_ENUM(object) OBJ_##object,
  HAKMEM_STATS_OBJECTS(OBJECT_ENUM) OBJ_COUNT,
#undef OBJECT_ENUM
  OBJ_CLASS = OBJ_COUNT /* an object of classes[] */
};

static const char *const object_names[OBJ_COUNT] = {
#define OBJECT_NAME(object) #object,
    HAKMEM_STATS_OBJECTS(OBJECT_NAME)
#undef OBJECT_NAME
};

typedef struct item_s {
  int object;      /* enum stats_object: where the item goes */
  const char *key; /* JSON key, table label */
  uint64_t v;
} item_t;

#define ONE(...) +1
enum {
  STATS_ITEMS = 0 HAKMEM_STATS_FIELDS(ONE, ONE, ONE, ONE),
  CLASS_ITEMS = 0 HAKMEM_CLASS_STATS_FIELDS(ONE, ONE, HAKMEM_STATS_SKIP)
};
#undef ONE

static void stats_items(const hak_stats_t *st, item_t *it) {
#define TOTAL(name, doc) *it++ = (item_t){OBJ_totals, #name, st->name};
#define GLOBAL(name, slot, object, key, doc) *it++ = (item_t){OBJ_##object, #key, st->name};
#define DERIVED(name, object, key, doc) *it++ = (item_t){OBJ_##object, #key, st->name};
  HAKMEM_STATS_FIELDS(TOTAL, TOTAL, GLOBAL, DERIVED)
#undef TOTAL
#undef GLOBAL
#undef DERIVED
}

/* A class's fields but the calling thread's own (CALLER). */
static void class_items(const hak_class_stats_t *r, item_t *it) {
#define COUNTER(name, doc) *it++ = (item_t){OBJ_CLASS, #name, r->name};
#define DERIVED(type, name, doc) *it++ = (item_t){OBJ_CLASS, #name, r->name};
  HAKMEM_CLASS_STATS_FIELDS(COUNTER, DERIVED, HAKMEM_STATS_SKIP)
#undef COUNTER
#undef DERIVED
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

/* s right-aligned in a column of width w. */
static void out_right(out_t *o, const char *s, size_t w) {
  size_t n = strlen(s);
  out_room(o, w + n);
  for (size_t i = n; i < w; i++) *o->b.p++ = ' ';
  for (size_t i = 0; i < n; i++) *o->b.p++ = s[i];
}

/* Decimal digits of v into tmp (24 bytes), NUL-terminated; their count. */
static size_t u64_str(char *tmp, uint64_t v) {
  hak_buf_t t = {tmp, tmp + 23};
  hak_buf_u64(&t, v);
  *t.p = '\0';
  return (size_t)(t.p - tmp);
}

/* Right-aligned number in a column of width w. */
static void out_col(out_t *o, uint64_t v, size_t w) {
  char tmp[24];
  u64_str(tmp, v);
  out_right(o, tmp, w);
}

static void out_kv(out_t *o, const char *key, uint64_t v) {
  out_str(o, " ");
  out_str(o, key);
  out_str(o, "=");
  out_col(o, v, 0);
}

/* ---- the table (HAKMEM_STATS=1) ----------------------------------------------------------- */

/* Class rows: a column per class field, as wide as its name and at least TABLE_COL. Object
 * lines (`hakmem: OBJECT key=value ...`) wrap before TABLE_WIDTH characters. */
#define TABLE_COL 8
#define TABLE_WIDTH 120
#define TABLE_PREFIX "hakmem: "

static int stats_fd = 2;

void hak_stats_init(void) {
  if (hak_opt.stats == HAK_STATS_TABLE) stats_fd = hak_os_dup_stderr();
}

static size_t table_col(const char *key) {
  size_t n = strlen(key);
  return n > TABLE_COL ? n : TABLE_COL;
}

static void table_head(out_t *o) {
  hak_class_stats_t zero = {0};
  item_t it[CLASS_ITEMS];
  class_items(&zero, it);
  out_str(o, TABLE_PREFIX "class");
  for (int i = 0; i < CLASS_ITEMS; i++) {
    out_str(o, " ");
    out_right(o, it[i].key, table_col(it[i].key));
  }
  out_str(o, "\n");
}

static void table_row(out_t *o, int c, const hak_class_stats_t *r) {
  item_t it[CLASS_ITEMS];
  class_items(r, it);
  out_str(o, TABLE_PREFIX);
  out_col(o, (uint64_t)c, 5);
  for (int i = 0; i < CLASS_ITEMS; i++) {
    out_str(o, " ");
    out_col(o, it[i].v, table_col(it[i].key));
  }
  out_str(o, "\n");
}

static void table_object(out_t *o, int object, const item_t *it, int n) {
  size_t width = 0; /* of the line so far; 0: no line begun */
  for (int i = 0; i < n; i++) {
    if (it[i].object != object) continue;
    char tmp[24];
    size_t w = 1 + strlen(it[i].key) + 1 + u64_str(tmp, it[i].v);
    if (width > 0 && width + w > TABLE_WIDTH) {
      out_str(o, "\n");
      width = 0;
    }
    if (width == 0) {
      out_str(o, TABLE_PREFIX);
      out_str(o, object_names[object]);
      width = strlen(TABLE_PREFIX) + strlen(object_names[object]);
    }
    out_kv(o, it[i].key, it[i].v);
    width += w;
  }
  if (width > 0) out_str(o, "\n");
}

static void table_logs(out_t *o) {
  const char *tags[HAK_LOG_SITES_MAX];
  uint64_t counts[HAK_LOG_SITES_MAX];
  int n = hak_log_sites(tags, counts, HAK_LOG_SITES_MAX);
  for (int i = 0; i < n; i++) {
    out_str(o, TABLE_PREFIX "one-shot log ");
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
  table_head(&o);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_class_stats_t r;
    class_row(&s, c, &r);
    if (r.allocs != 0 || r.frees != 0) table_row(&o, c, &r);
  }
  hak_stats_t st;
  totals_of(&s, &st);
  item_t it[STATS_ITEMS];
  stats_items(&st, it);
  for (int k = 0; k < OBJ_COUNT; k++) table_object(&o, k, it, STATS_ITEMS);
  table_logs(&o);
  out_flush(&o);
}

/* ---- JSON (HAKMEM_STATS=json:PATH) ---------------------------------------------------------- */

#define JSON_FORMAT 2

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

/* The members of the items that belong to object. */
static void j_items(out_t *o, const item_t *it, int n, int object) {
  for (int i = 0; i < n; i++)
    if (it[i].object == object) j_u64(o, it[i].key, it[i].v);
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

static void json_objects(out_t *o, const hak_stats_t *st) {
  item_t it[STATS_ITEMS];
  stats_items(st, it);
  for (int k = 0; k < OBJ_COUNT; k++) {
    j_open(o, object_names[k], "{");
    j_items(o, it, STATS_ITEMS, k);
    j_close(o, "}");
  }
}

static void json_classes(out_t *o, sum_t *s) {
  j_open(o, "classes", "[");
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    hak_class_stats_t r;
    class_row(s, c, &r);
    item_t it[CLASS_ITEMS];
    class_items(&r, it);
    j_open(o, NULL, "{");
    j_u64(o, "class", (uint64_t)c);
    j_items(o, it, CLASS_ITEMS, OBJ_CLASS);
    j_close(o, "}");
  }
  j_close(o, "]");
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
  j_u64(&o, "format", JSON_FORMAT);
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
  json_objects(&o, &st);
  json_classes(&o, &s);
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
