/* HAKMEM_* environment options: one table, read once at process start.
 *
 * The environment is scanned directly (no getenv, which may be interposed, no allocation). A
 * malformed value or an unknown HAKMEM_ name prints a one-line warning and keeps the default. */
#include <stddef.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

extern char **environ;

hak_options_t hak_opt = {
    .tls_hint = 1, .ss_adopt = 1, .rf_force_notify = 0, .must_adopt = 0, .ace_enabled = 1,
    .stats = HAK_STATS_OFF, .verbose = 0, .decay_ms = 1000, .large_cache_mb = 64,
    .large_cache_pct = 20, .large_move = 0, .slab_dirty_pct = 400,
    .thp = HAK_THP_LARGE, .remote_batch = 32, .purge_thread = 1,
};

/* How an option's value is read: a number in [min, max], a path, or HAKMEM_STATS's
 * "0" | "1" | "json:PATH". */
enum option_kind { OPT_LONG, OPT_PATH, OPT_STATS };

typedef struct option_desc_s {
  const char *name;
  enum option_kind kind;
  long *value;
  char *path; /* OPT_PATH and OPT_STATS: HAK_PATH_MAX bytes, "" when unset */
  long min, max;
  const char *what;
} option_desc_t;

#define LONG_OPT(name, field, min, max, what) {name, OPT_LONG, &hak_opt.field, NULL, min, max, what}

static const option_desc_t options[] = {
    LONG_OPT("HAKMEM_TINY_SS_TLS_HINT", tls_hint, 0, 1, "hint box on"),
    LONG_OPT("HAKMEM_TINY_SS_ADOPT", ss_adopt, 0, 1, "adopt orphaned slabs"),
    LONG_OPT("HAKMEM_TINY_RF_FORCE_NOTIFY", rf_force_notify, 0, 1, "every remote free notifies"),
    LONG_OPT("HAKMEM_TINY_MUST_ADOPT", must_adopt, 0, 1, "refill tries adoption first"),
    LONG_OPT("HAKMEM_TINY_REMOTE_BATCH", remote_batch, 1, 4096,
             "remote frees into one run pushed together (1: each at once)"),
    LONG_OPT("HAKMEM_ACE_ENABLED", ace_enabled, 0, 1, "adaptive TLS capacity"),
    {"HAKMEM_STATS", OPT_STATS, &hak_opt.stats, hak_opt.stats_path, 0, 1,
     "counters at exit: 1 table on stderr, json:PATH a JSON file"},
    LONG_OPT("HAKMEM_VERBOSE", verbose, 0, 1, "print configuration at start"),
    LONG_OPT("HAKMEM_DECAY_MS", decay_ms, 0, 3600000, "ms before freed memory is returned"),
    LONG_OPT("HAKMEM_LARGE_CACHE_MB", large_cache_mb, 0, 1 << 20, "MiB of large mappings kept"),
    LONG_OPT("HAKMEM_LARGE_CACHE_PCT", large_cache_pct, 0, 1000,
             "large mappings kept, in percent of the live large bytes, when above the MiB"),
    LONG_OPT("HAKMEM_SLAB_DIRTY_PCT", slab_dirty_pct, 0, 100000,
             "free slab pages kept populated, in percent of the bound slabs (4 MiB at least; 0: no limit)"),
    LONG_OPT("HAKMEM_LARGE_MOVE", large_move, 0, 1,
             "a large request moves cached mappings' pages into its own (mremap)"),
    LONG_OPT("HAKMEM_PURGE_THREAD", purge_thread, 0, 1,
             "a background thread returns freed memory while the program is idle"),
    LONG_OPT("HAKMEM_THP", thp, 0, 2, "transparent huge pages: 0 none, 1 all, 2 large blocks"),
    {"HAKMEM_TRACE", OPT_PATH, NULL, hak_opt.trace_path, 0, 0,
     "record every allocation call to this file"},
    LONG_OPT("HAKMEM_CRASH_REPORT", crash_report, 0, 1, "report fatal signals (crash.c)"),
    {"HAKMEM_CRASH_DIR", OPT_PATH, NULL, hak_opt.crash_dir, 0, 0,
     "a crash moves here before its core dump"},
    LONG_OPT("HAKMEM_CRASH_GCORE", crash_gcore, 0, 1, "a crash has gcore write DIR/core.PID"),
};
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Strict decimal: optional sign, digits, nothing else. */
static bool parse_long(const char *s, long *out) {
  bool neg = false;
  if (*s == '-' || *s == '+') neg = (*s++ == '-');
  if (*s == '\0') return false;
  long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (v > (1L << 50)) return false;
    v = v * 10 + (*s - '0');
  }
  *out = neg ? -v : v;
  return true;
}

/* Copies a path value; false when it is empty or does not fit. */
static bool set_path(char *dst, const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= HAK_PATH_MAX) return false;
  memcpy(dst, s, n + 1);
  return true;
}

static void apply_long(const option_desc_t *o, const char *entry, const char *val) {
  long v;
  if (!parse_long(val, &v)) {
    hak_warn("malformed value, default kept", entry);
  } else if (v < o->min || v > o->max) {
    hak_warn("value out of range, default kept", entry);
  } else {
    *o->value = v;
  }
}

static void apply_one(const option_desc_t *o, const char *entry, const char *val) {
  switch (o->kind) {
  case OPT_LONG:
    apply_long(o, entry, val);
    return;
  case OPT_PATH:
    if (!set_path(o->path, val)) hak_warn("empty or too long path, ignored", entry);
    return;
  case OPT_STATS:
    if (strncmp(val, "json:", 5) != 0) {
      apply_long(o, entry, val);
    } else if (set_path(o->path, val + 5)) {
      *o->value = HAK_STATS_JSON;
    } else {
      hak_warn("empty or too long path, default kept", entry);
    }
    return;
  }
}

static void apply(const char *entry) {
  const char *eq = strchr(entry, '=');
  if (eq == NULL) return;
  size_t len = (size_t)(eq - entry);
  for (size_t i = 0; i < NUM_OPTIONS; i++) {
    const option_desc_t *o = &options[i];
    if (strlen(o->name) != len || memcmp(o->name, entry, len) != 0) continue;
    apply_one(o, entry, eq + 1);
    return;
  }
  hak_warn("unknown variable ignored", entry);
}

void hak_options_init(void) {
  if (environ == NULL) return;
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, "HAKMEM_", 7) == 0) apply(*e);
  }
}

long hak_options_lookup(const char *name) {
  for (size_t i = 0; i < NUM_OPTIONS; i++) {
    const option_desc_t *o = &options[i];
    if (strcmp(o->name, name) != 0) continue;
    if (o->kind == OPT_PATH) return o->path[0] != '\0';
    return *o->value;
  }
  return -1;
}

static void print_value(hak_buf_t *b, const option_desc_t *o) {
  if (o->kind == OPT_LONG || (o->kind == OPT_STATS && *o->value != HAK_STATS_JSON)) {
    hak_buf_u64(b, (uint64_t)*o->value);
  } else if (o->path[0] == '\0') {
    hak_buf_str(b, "(unset)");
  } else {
    hak_buf_str(b, o->kind == OPT_STATS ? "json:" : "");
    hak_buf_str(b, o->path);
  }
}

void hak_options_print(void) {
  char buf[2048 + 2 * HAK_PATH_MAX];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: version ");
  hak_buf_u64(&b, HAKMEM_VERSION_MAJOR);
  hak_buf_str(&b, ".");
  hak_buf_u64(&b, HAKMEM_VERSION_MINOR);
  hak_buf_str(&b, ".");
  hak_buf_u64(&b, HAKMEM_VERSION_PATCH);
  hak_buf_str(&b, HAKMEM_TINY_HEADERLESS ? " headerless" : " header");
  hak_buf_str(&b, HAK_HINT_COMPILED ? " hint" : " nohint");
  hak_buf_str(&b, HAKMEM_DEBUG ? " debug" : "");
  hak_buf_str(&b, HAKMEM_CHECKED ? " checked" : "");
  hak_buf_str(&b, HAKMEM_DEBUG_HDRLESS ? " debug-hdrless" : "");
  hak_buf_str(&b, HAKMEM_ASAN ? " asan" : "");
  hak_buf_str(&b, HAKMEM_TSAN ? " tsan" : "");
  if (HAKMEM_PLANT_BUG != 0) {
    hak_buf_str(&b, " planted-bug=");
    hak_buf_u64(&b, HAKMEM_PLANT_BUG);
  }
  hak_buf_str(&b, HAKMEM_OVERRIDE ? " override\n" : " prefixed-api\n");
  for (size_t i = 0; i < NUM_OPTIONS; i++) {
    hak_buf_str(&b, "hakmem:   ");
    const char *start = b.p;
    hak_buf_str(&b, options[i].name);
    hak_buf_pad(&b, start, 30);
    print_value(&b, &options[i]);
    hak_buf_str(&b, "  (");
    hak_buf_str(&b, options[i].what);
    hak_buf_str(&b, ")\n");
  }
  hak_write_err(buf, (size_t)(b.p - buf));
}
