/* Fail-fast diagnostics, the debug ring and one-shot logs.
 *
 * Nothing here allocates or uses stdio: messages are formatted into stack buffers and written
 * with one write(2). A failure prints one line,
 *   hakmem: <what>: ptr=0x... ss=0x... class=N
 * then the last events of the debug ring, then aborts. Nothing recovers silently. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- formatting ------------------------------------------------------------------------- */

void hak_buf_str(hak_buf_t *b, const char *s) {
  while (*s && b->p < b->end) *b->p++ = *s++;
}

void hak_buf_u64(hak_buf_t *b, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n > 0 && b->p < b->end) *b->p++ = tmp[--n];
}

void hak_buf_hex(hak_buf_t *b, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v);
  hak_buf_str(b, "0x");
  while (n > 0 && b->p < b->end) *b->p++ = tmp[--n];
}

void hak_buf_pad(hak_buf_t *b, const char *start, size_t width) {
  while ((size_t)(b->p - start) < width && b->p < b->end) *b->p++ = ' ';
}

void hak_write_err(const char *s, size_t n) { hak_os_write(2, s, n); }

void hak_warn(const char *why, const char *what) {
  char buf[HAK_PATH_MAX + 256];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: warning: ");
  hak_buf_str(&b, why);
  hak_buf_str(&b, ": ");
  hak_buf_str(&b, what);
  hak_buf_str(&b, "\n");
  hak_write_err(buf, (size_t)(b.p - buf));
}

/* ---- debug ring ----------------------------------------------------------------------------- */

#define RING_SIZE 256 /* power of two */

typedef struct ring_event_s {
  const char *what;
  const void *a;
  uintptr_t b;
} ring_event_t;

static ring_event_t ring[RING_SIZE];
static _Atomic(uint64_t) ring_next;

/* Slow paths only: one atomic increment per event. A racing writer may tear a slot, which only
 * makes the dump show a mixed event; the ring is for humans. */
void hak_ring_event(const char *what, const void *a, uintptr_t b) {
  uint64_t i = atomic_fetch_add_explicit(&ring_next, 1, hak_relaxed) & (RING_SIZE - 1);
  ring_event_t *e = &ring[i];
  __atomic_store_n(&e->what, what, __ATOMIC_RELAXED);
  __atomic_store_n(&e->a, a, __ATOMIC_RELAXED);
  __atomic_store_n(&e->b, b, __ATOMIC_RELAXED);
}

void hak_ring_dump(void) {
  uint64_t end = atomic_load_explicit(&ring_next, hak_relaxed);
  uint64_t start = end > 16 ? end - 16 : 0;
  for (uint64_t i = start; i < end; i++) {
    ring_event_t *e = &ring[i & (RING_SIZE - 1)];
    const char *what = __atomic_load_n(&e->what, __ATOMIC_RELAXED);
    if (what == NULL) continue;
    char buf[160];
    hak_buf_t b = {buf, buf + sizeof(buf) - 1};
    hak_buf_str(&b, "hakmem:   ring[");
    hak_buf_u64(&b, i);
    hak_buf_str(&b, "] ");
    hak_buf_str(&b, what);
    hak_buf_str(&b, " ");
    hak_buf_hex(&b, (uintptr_t)__atomic_load_n(&e->a, __ATOMIC_RELAXED));
    hak_buf_str(&b, " ");
    hak_buf_hex(&b, __atomic_load_n(&e->b, __ATOMIC_RELAXED));
    hak_buf_str(&b, "\n");
    hak_write_err(buf, (size_t)(b.p - buf));
  }
}

/* ---- fail-fast ------------------------------------------------------------------------------ */

static _Atomic(int) failing;

void hak_fail(const char *what, const void *ptr, const void *ss, int cls) {
  char buf[256];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: ");
  hak_buf_str(&b, what);
  hak_buf_str(&b, ": ptr=");
  hak_buf_hex(&b, (uintptr_t)ptr);
  hak_buf_str(&b, " ss=");
  hak_buf_hex(&b, (uintptr_t)ss);
  hak_buf_str(&b, " class=");
  if (cls < 0) {
    hak_buf_str(&b, "-1");
  } else {
    hak_buf_u64(&b, (uint64_t)cls);
  }
  hak_buf_str(&b, "\n");
  hak_write_err(buf, (size_t)(b.p - buf));
  if (!atomic_exchange(&failing, 1)) hak_ring_dump();
  abort();
}

void hak_fail_assert(const char *expr, const char *file, int line) {
  char buf[256];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: assertion failed: ");
  hak_buf_str(&b, expr);
  hak_buf_str(&b, " at ");
  hak_buf_str(&b, file);
  hak_buf_str(&b, ":");
  hak_buf_u64(&b, (uint64_t)line);
  hak_buf_str(&b, "\n");
  hak_write_err(buf, (size_t)(b.p - buf));
  if (!atomic_exchange(&failing, 1)) hak_ring_dump();
  abort();
}

/* ---- one-shot logs ---------------------------------------------------------------------------- */

/* Sites that fired, for the counts in the statistics: appended once each, never removed. */
static struct {
  const char *_Atomic tag;
  _Atomic(int) *site;
} log_sites[HAK_LOG_SITES_MAX];
static _Atomic(int) log_nsites;

static void log_site_add(_Atomic(int) *site, const char *tag) {
  int i = atomic_fetch_add_explicit(&log_nsites, 1, hak_relaxed);
  if (i >= HAK_LOG_SITES_MAX) return;
  log_sites[i].site = site;
  atomic_store_explicit(&log_sites[i].tag, tag, memory_order_release);
}

int hak_log_sites(const char **tags, uint64_t *counts, int max) {
  int n = atomic_load_explicit(&log_nsites, hak_relaxed), out = 0;
  for (int i = 0; i < n && i < HAK_LOG_SITES_MAX && out < max; i++) {
    const char *tag = atomic_load_explicit(&log_sites[i].tag, memory_order_acquire);
    if (tag == NULL) continue; /* being added */
    tags[out] = tag;
    counts[out++] = (uint64_t)atomic_load_explicit(log_sites[i].site, hak_relaxed);
  }
  return out;
}

void hak_log_once(_Atomic(int) *site, const char *tag, const void *ptr, const void *ss,
                  uint64_t a, uint64_t b2) {
  if (atomic_fetch_add_explicit(site, 1, hak_relaxed) != 0) return;
  log_site_add(site, tag);
  char buf[200];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: ");
  hak_buf_str(&b, tag);
  hak_buf_str(&b, " ptr=");
  hak_buf_hex(&b, (uintptr_t)ptr);
  hak_buf_str(&b, " ss=");
  hak_buf_hex(&b, (uintptr_t)ss);
  hak_buf_str(&b, " a=");
  hak_buf_u64(&b, a);
  hak_buf_str(&b, " b=");
  hak_buf_u64(&b, b2);
  hak_buf_str(&b, "\n");
  hak_write_err(buf, (size_t)(b.p - buf));
}

/* ---- schedule points ------------------------------------------------------------------------ */

#if HAKMEM_SCHED_POINTS
_Atomic(hak_sched_hook_t) hak_sched_hook; /* set by tests (tests/support/hak_sched.h) */
__thread int hak_sched_locks;
#endif
