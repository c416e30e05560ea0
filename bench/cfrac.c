/* cfrac THREADS [SCALE]: cfrac-shaped bignum small-object churn.
 *
 * THREADS independent copies of the same single-threaded work. Each keeps a pool of 64
 * bignums (a 16-byte header plus a digit array of 8..64 bytes: 2..16 32-bit limbs, arithmetic
 * modulo 2^512) and does STEPS (15,000,000 at SCALE 1) steps: x = pool[i] * m + pool[j] for a
 * random pool entry i, j and a fresh 1..2-limb number m; the product's digits come from
 * calloc, the sum's digit array grows by realloc when a carry needs another limb; x replaces
 * pool[k] and the temporaries are freed. One step in eight also replaces an entry with a
 * fresh small number, so lengths vary. Short-lived 8..64 B objects, as cfrac's.
 *
 * Checks: each number carries a 64-bit shadow computed with plain integers; the low 64 bits
 * of every result must equal it (a wrongly zeroed calloc, a realloc that lost digits or two
 * numbers sharing memory break it). ops = mallocs + callocs + reallocs + frees. */
#include "bench.h"

#define POOL 64
#define MAXL 16 /* limbs */
#define STEPS 15000000.0

typedef struct bn_s {
  uint32_t len, cap; /* limbs used, limbs allocated (len <= cap <= MAXL) */
  uint32_t *d;       /* little-endian limbs */
} bn_t;

typedef struct ctx_s {
  BENCH_OWN_LINES pthread_t thread;
  int index;
  long steps;
  unsigned long long ops; /* allocator calls made */
} ctx_t;

static bn_t *bn_new(ctx_t *c, uint32_t cap, int zeroed) {
  bn_t *b = bench_malloc(sizeof *b);
  b->d = zeroed ? calloc(cap, sizeof *b->d) : malloc(cap * sizeof *b->d);
  if (b->d == NULL) bench_fail("digit array of %u limbs: NULL", cap);
  b->len = 0;
  b->cap = cap;
  c->ops += 2;
  return b;
}

static void bn_free(ctx_t *c, bn_t *b) {
  free(b->d);
  free(b);
  c->ops += 2;
}

static void bn_grow(ctx_t *c, bn_t *b, uint32_t cap) {
  b->d = bench_realloc(b->d, cap * sizeof *b->d);
  b->cap = cap;
  c->ops++;
}

static bn_t *bn_from(ctx_t *c, uint64_t v, uint32_t limbs) {
  bn_t *b = bn_new(c, limbs, 0);
  b->d[0] = (uint32_t)v;
  if (limbs > 1) b->d[1] = (uint32_t)(v >> 32);
  b->len = limbs;
  return b;
}

static uint64_t bn_low64(const bn_t *b) {
  uint64_t lo = b->len > 0 ? b->d[0] : 0;
  return b->len > 1 ? lo | (uint64_t)b->d[1] << 32 : lo;
}

/* a * b modulo 2^(32 * MAXL); the accumulator starts zeroed by calloc. */
static bn_t *bn_mul(ctx_t *c, const bn_t *a, const bn_t *b) {
  uint32_t n = a->len + b->len < MAXL ? a->len + b->len : MAXL;
  bn_t *r = bn_new(c, n, 1);
  for (uint32_t i = 0; i < a->len && i < n; i++) {
    uint64_t carry = 0;
    for (uint32_t j = 0; j < b->len && i + j < n; j++) {
      uint64_t t = (uint64_t)a->d[i] * b->d[j] + r->d[i + j] + carry;
      r->d[i + j] = (uint32_t)t;
      carry = t >> 32;
    }
    if (i + b->len < n) r->d[i + b->len] = (uint32_t)carry;
  }
  r->len = n;
  return r;
}

/* a + b modulo 2^(32 * MAXL); a carry out of the top limb grows the array by realloc. */
static bn_t *bn_add(ctx_t *c, const bn_t *a, const bn_t *b) {
  const bn_t *big = a->len >= b->len ? a : b, *small = big == a ? b : a;
  bn_t *r = bn_new(c, big->len, 0);
  uint64_t carry = 0;
  for (uint32_t i = 0; i < big->len; i++) {
    uint64_t t = (uint64_t)big->d[i] + (i < small->len ? small->d[i] : 0) + carry;
    r->d[i] = (uint32_t)t;
    carry = t >> 32;
  }
  r->len = big->len;
  if (carry && r->len < MAXL) {
    bn_grow(c, r, r->len + 1);
    r->d[r->len++] = (uint32_t)carry;
  }
  return r;
}

static void step(ctx_t *c, bench_rng_t *r, bn_t **pool, uint64_t *shadow) {
  size_t i = bench_below(r, POOL), j = bench_below(r, POOL), k = bench_below(r, POOL);
  uint64_t mv = bench_next(r) | 1;
  bn_t *m = bn_from(c, mv, 1 + (uint32_t)bench_below(r, 2));
  uint64_t ms = m->len == 1 ? (uint32_t)mv : mv;
  bn_t *p = bn_mul(c, pool[i], m);
  bn_t *x = bn_add(c, p, pool[j]);
  uint64_t xs = shadow[i] * ms + shadow[j];
  if (bn_low64(x) != xs) bench_fail("bignum result %016llx, expected %016llx",
                                    (unsigned long long)bn_low64(x), (unsigned long long)xs);
  bn_free(c, m);
  bn_free(c, p);
  bn_free(c, pool[k]);
  pool[k] = x;
  shadow[k] = xs;
}

static void refresh(ctx_t *c, bench_rng_t *r, bn_t **pool, uint64_t *shadow) {
  size_t k = bench_below(r, POOL);
  uint64_t v = bench_next(r);
  bn_free(c, pool[k]);
  pool[k] = bn_from(c, v, 2);
  shadow[k] = v;
}

static void *work(void *arg) {
  ctx_t *c = arg;
  bench_rng_t r = bench_rng((uint64_t)c->index);
  bn_t *pool[POOL];
  uint64_t shadow[POOL];
  for (int k = 0; k < POOL; k++) {
    shadow[k] = bench_next(&r);
    pool[k] = bn_from(c, shadow[k], 2);
  }
  for (long s = 0; s < c->steps; s++) {
    step(c, &r, pool, shadow);
    if (bench_below(&r, 8) == 0) refresh(c, &r, pool, shadow);
  }
  for (int k = 0; k < POOL; k++) bn_free(c, pool[k]);
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "cfrac");
  int n = bench_cfg.threads;
  ctx_t *c = bench_zalloc_lines((size_t)n, sizeof *c);
  if (c == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) c[t] = (ctx_t){.index = t, .steps = bench_scaled(STEPS)};
  for (int t = 0; t < n; t++) bench_spawn(&c[t].thread, work, &c[t]);
  unsigned long long ops = 0;
  for (int t = 0; t < n; t++) {
    bench_join(c[t].thread);
    ops += c[t].ops;
  }
  free(c);
  bench_report(ops, NULL);
  return 0;
}
