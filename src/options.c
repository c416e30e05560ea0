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
    .stats = 0,    .verbose = 0,  .decay_ms = 1000,     .large_cache_mb = 64, .thp = 0,
};

typedef struct option_desc_s {
  const char *name;
  long *value;
  long min, max;
  const char *what;
} option_desc_t;

static const option_desc_t options[] = {
    {"HAKMEM_TINY_SS_TLS_HINT", &hak_opt.tls_hint, 0, 1, "hint box on"},
    {"HAKMEM_TINY_SS_ADOPT", &hak_opt.ss_adopt, 0, 1, "adopt orphaned slabs"},
    {"HAKMEM_TINY_RF_FORCE_NOTIFY", &hak_opt.rf_force_notify, 0, 1, "every remote free notifies"},
    {"HAKMEM_TINY_MUST_ADOPT", &hak_opt.must_adopt, 0, 1, "refill tries adoption first"},
    {"HAKMEM_ACE_ENABLED", &hak_opt.ace_enabled, 0, 1, "adaptive TLS capacity"},
    {"HAKMEM_STATS", &hak_opt.stats, 0, 1, "print counters at exit"},
    {"HAKMEM_VERBOSE", &hak_opt.verbose, 0, 1, "print configuration at start"},
    {"HAKMEM_DECAY_MS", &hak_opt.decay_ms, 0, 3600000, "ms before freed memory is returned"},
    {"HAKMEM_LARGE_CACHE_MB", &hak_opt.large_cache_mb, 0, 1 << 20, "MiB of large mappings kept"},
    {"HAKMEM_THP", &hak_opt.thp, 0, 1, "transparent huge pages for hakmem's mappings"},
};
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

static void warn(const char *entry, const char *why) {
  char buf[256];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: warning: ");
  hak_buf_str(&b, why);
  hak_buf_str(&b, ": ");
  hak_buf_str(&b, entry);
  hak_buf_str(&b, "\n");
  hak_write_err(buf, (size_t)(b.p - buf));
}

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

static void apply(const char *entry) {
  const char *eq = strchr(entry, '=');
  if (eq == NULL) return;
  size_t len = (size_t)(eq - entry);
  for (size_t i = 0; i < NUM_OPTIONS; i++) {
    const option_desc_t *o = &options[i];
    if (strlen(o->name) != len || memcmp(o->name, entry, len) != 0) continue;
    long v;
    if (!parse_long(eq + 1, &v)) {
      warn(entry, "malformed value, default kept");
    } else if (v < o->min || v > o->max) {
      warn(entry, "value out of range, default kept");
    } else {
      *o->value = v;
    }
    return;
  }
  warn(entry, "unknown variable ignored");
}

void hak_options_init(void) {
  if (environ == NULL) return;
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, "HAKMEM_", 7) == 0) apply(*e);
  }
}

long hak_options_lookup(const char *name) {
  for (size_t i = 0; i < NUM_OPTIONS; i++)
    if (strcmp(options[i].name, name) == 0) return *options[i].value;
  return -1;
}

void hak_options_print(void) {
  char buf[2048];
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
  hak_buf_str(&b, HAKMEM_ASAN ? " asan" : "");
  hak_buf_str(&b, HAKMEM_OVERRIDE ? " override\n" : " prefixed-api\n");
  for (size_t i = 0; i < NUM_OPTIONS; i++) {
    hak_buf_str(&b, "hakmem:   ");
    const char *start = b.p;
    hak_buf_str(&b, options[i].name);
    hak_buf_pad(&b, start, 30);
    hak_buf_u64(&b, (uint64_t)*options[i].value);
    hak_buf_str(&b, "  (");
    hak_buf_str(&b, options[i].what);
    hak_buf_str(&b, ")\n");
  }
  hak_write_err(buf, (size_t)(b.p - buf));
}
