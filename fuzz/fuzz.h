/* Shared by the fuzz harnesses of fuzz/: input decoding, invariant checks, fill patterns.
 *
 * A harness is one LLVMFuzzerTestOneInput(data, size). It decodes its input into operations on
 * one box (or, alloc_ops, on the whole allocator), runs them, and checks the box's invariants
 * after every step. A broken invariant prints one line, `fuzz invariant broken: file:line:
 * condition: message`, and aborts: libFuzzer keeps the input as a crash, the replay driver
 * (replay.c, in builds without libFuzzer) fails its CTest.
 *
 * The harnesses link hakmem_core (no malloc override): hakmem sees only their hak_* calls and
 * the internal calls they make, so its counters are theirs. Every input leaves the allocator
 * as it found it (everything freed, every thread joined), since libFuzzer runs millions of
 * inputs in one process. Decoding never fails: past the end of the input every read is 0. */
#ifndef HAKMEM_FUZZ_H
#define HAKMEM_FUZZ_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- input ---------------------------------------------------------------------------------- */

typedef struct f_in_s {
  const uint8_t *p, *end;
} f_in_t;

static inline f_in_t f_in(const uint8_t *data, size_t size) {
  f_in_t in = {data, data + size};
  return in;
}

static inline bool f_more(const f_in_t *in) { return in->p < in->end; }

static inline uint8_t f_u8(f_in_t *in) { return in->p < in->end ? *in->p++ : 0; }

static inline uint16_t f_u16(f_in_t *in) {
  uint16_t lo = f_u8(in);
  return (uint16_t)(lo | (uint16_t)f_u8(in) << 8);
}

static inline uint32_t f_u32(f_in_t *in) {
  uint32_t lo = f_u16(in);
  return lo | (uint32_t)f_u16(in) << 16;
}

/* A value in [0, n), n > 0, from one byte when n <= 256, else two. */
static inline uint32_t f_below(f_in_t *in, uint32_t n) {
  return n <= 256 ? f_u8(in) % n : f_u16(in) % n;
}

/* ---- invariants ----------------------------------------------------------------------------- */

__attribute__((noreturn, format(printf, 4, 5), unused)) static void
f_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *base = strrchr(file, '/');
  fprintf(stderr, "fuzz invariant broken: %s:%d: %s: %s\n", base ? base + 1 : file, line, cond,
          msg);
  fflush(stderr);
  abort();
}

/* F_CHECK(cond, fmt, ...): aborts with a one-line diagnostic unless cond holds. */
#define F_CHECK(cond, ...)                                         \
  do {                                                             \
    if (__builtin_expect(!(cond), 0))                              \
      f_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);              \
  } while (0)

/* ---- fill patterns ---------------------------------------------------------------------------- */

/* Byte i of a block filled under key k; two keys give different bytes almost everywhere. */
static inline uint8_t f_pattern(uint64_t k, size_t i) {
  uint64_t x = (k ^ (uint64_t)(i >> 3)) * 0x9e3779b97f4a7c15ull;
  return (uint8_t)(x >> (8 * (i & 7)));
}

static inline void f_fill(void *p, size_t n, uint64_t k) {
  uint8_t *b = p;
  for (size_t i = 0; i < n; i++) b[i] = f_pattern(k, i);
}

/* Offset of the first byte that differs from the pattern, or n when all match. */
static inline size_t f_verify(const void *p, size_t n, uint64_t k) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != f_pattern(k, i)) return i;
  return n;
}

/* ---- threads -------------------------------------------------------------------------------- */

static inline void f_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  int rc = pthread_create(t, NULL, fn, arg);
  F_CHECK(rc == 0, "pthread_create failed: %d", rc);
}

static inline void f_join(pthread_t t) {
  int rc = pthread_join(t, NULL);
  F_CHECK(rc == 0, "pthread_join failed: %d", rc);
}

/* Live blocks as hakmem counts them (exact while the harness's other threads are quiet). */
static inline uint64_t f_live_blocks(void) {
  hak_stats_t s;
  hak_stats_get(&s);
  return s.live_blocks;
}

#endif /* HAKMEM_FUZZ_H */
