/* Shared by the fuzz harnesses of fuzz/: input decoding. Invariant checks (T_INVARIANT), fill
 * patterns, threads and counters come from tests/support/hak_test.h, as for the tests.
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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hak_test.h"
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

#endif /* HAKMEM_FUZZ_H */
