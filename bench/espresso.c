/* espresso THREADS [SCALE]: espresso-shaped mix of long- and short-lived small objects.
 *
 * THREADS independent copies of the same single-threaded work. Each keeps a table of 4,096
 * long-lived blocks and does STEPS (20,000,000 at SCALE 1) steps. A step allocates 1..4
 * short-lived temporaries (8..512 B, most below 128 B), frees them (newest first, or oldest
 * first one step in four) and replaces one random table entry, so table entries live about
 * 4,096 steps; one step in sixteen reallocs a table entry to a new size (grown or shrunk)
 * instead. Sizes are espresso's: mixed small, 8..512 B.
 *
 * Checks: every block is stamped when allocated and checked before it is freed; a realloc
 * must keep the bytes below the old size (the head stamp, or all of a block under 16 B).
 * ops = mallocs + reallocs + frees. */
#include "bench.h"

#define TABLE 4096
#define TEMPS 4
#define STEPS 20000000.0

typedef struct ctx_s {
  BENCH_OWN_LINES pthread_t thread;
  int index;
  long steps;
  unsigned long long ops; /* allocator calls made */
  bench_blk_t table[TABLE];
} ctx_t;

static size_t espresso_size(bench_rng_t *r) {
  size_t pick = bench_below(r, 8);
  if (pick < 5) return bench_range(r, 8, 128);
  if (pick < 7) return bench_range(r, 129, 256);
  return bench_range(r, 257, 512);
}

static void temporaries(ctx_t *c, bench_rng_t *r) {
  bench_blk_t tmp[TEMPS];
  int n = 1 + (int)bench_below(r, TEMPS);
  for (int i = 0; i < n; i++) {
    tmp[i].n = espresso_size(r);
    tmp[i].p = bench_malloc(tmp[i].n);
    bench_stamp(tmp[i].p, tmp[i].n);
  }
  int fifo = bench_below(r, 4) == 0;
  for (int i = 0; i < n; i++) {
    bench_blk_t *b = &tmp[fifo ? i : n - 1 - i];
    bench_free(b->p, b->n);
  }
  c->ops += 2 * (unsigned long long)n;
}

/* After realloc of OLDP (OLDN bytes) to Q (N bytes): the old stamp's bytes below
 * min(N, OLDN) must still be there. */
static void check_kept(const unsigned char *q, size_t n, const void *oldp, size_t oldn) {
  uint64_t t = bench_tag(oldp, oldn);
  size_t k = n < oldn ? n : oldn;
  for (size_t i = 0; i < k && i < 8; i++) {
    unsigned char want = oldn < 16 ? (unsigned char)((t & 0xff) | 1) : (unsigned char)(t >> 8 * i);
    if (q[i] != want) bench_fail("realloc %p (%zu B) -> %p (%zu B) lost byte %zu", oldp, oldn,
                                 (const void *)q, n, i);
  }
}

static void resize(ctx_t *c, bench_rng_t *r) {
  bench_blk_t *b = &c->table[bench_below(r, TABLE)];
  bench_check(b->p, b->n);
  size_t n = espresso_size(r);
  void *q = bench_realloc(b->p, n);
  check_kept(q, n, b->p, b->n);
  bench_stamp(q, n);
  *b = (bench_blk_t){q, n};
  c->ops++;
}

static void replace(ctx_t *c, bench_rng_t *r) {
  bench_blk_t *b = &c->table[bench_below(r, TABLE)];
  bench_free(b->p, b->n);
  b->n = espresso_size(r);
  b->p = bench_malloc(b->n);
  bench_stamp(b->p, b->n);
  c->ops += 2;
}

static void *work(void *arg) {
  ctx_t *c = arg;
  bench_rng_t r = bench_rng((uint64_t)c->index);
  for (int k = 0; k < TABLE; k++) {
    bench_blk_t *b = &c->table[k];
    b->n = espresso_size(&r);
    b->p = bench_malloc(b->n);
    bench_stamp(b->p, b->n);
  }
  for (long s = 0; s < c->steps; s++) {
    temporaries(c, &r);
    if (bench_below(&r, 16) == 0)
      resize(c, &r);
    else
      replace(c, &r);
  }
  for (int k = 0; k < TABLE; k++) bench_free(c->table[k].p, c->table[k].n);
  c->ops += 2 * TABLE;
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "espresso");
  int n = bench_cfg.threads;
  ctx_t *c = bench_zalloc_lines((size_t)n, sizeof *c);
  if (c == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) {
    c[t].index = t;
    c[t].steps = bench_scaled(STEPS);
  }
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
