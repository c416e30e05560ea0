/* malloc_large THREADS [SCALE]: malloc-large-shaped big blocks, allocated, touched, reused.
 *
 * Each of THREADS threads keeps 20 slots and does REPLACE (800 at SCALE 1) replacements:
 * free a random slot's block and allocate one of 5..25 MiB (uniform) into it. Each new block
 * is touched by writing one 8-byte word into every 4 KiB page (so an allocator that hands out
 * fresh memory pays a page fault per page; one that reuses freed memory does not). At most
 * 20 blocks, about 300 MiB, live per thread.
 *
 * Checks: before a block is freed, the word in each of its pages still holds the value written
 * there (derived from the block's address and the page's index). ops = mallocs + frees;
 * bytes= counts the bytes allocated. */
#include "bench.h"

#define SLOTS 20
#define REPLACE 800.0
#define MIB ((size_t)1 << 20)
#define PAGE 4096

typedef struct worker_s {
  BENCH_OWN_LINES pthread_t thread;
  int index;
  long replace;
  unsigned long long bytes; /* bytes allocated */
} worker_t;

static uint64_t page_word(const char *p, size_t page) {
  return bench_tag(p, page) | 1;
}

static void touch(char *p, size_t n) {
  for (size_t off = 0; off + 8 <= n; off += PAGE) {
    uint64_t v = page_word(p, off / PAGE);
    memcpy(p + off, &v, 8);
  }
}

static void check_free(char *p, size_t n) {
  for (size_t off = 0; off + 8 <= n; off += PAGE) {
    uint64_t v;
    memcpy(&v, p + off, 8);
    if (v != page_word(p, off / PAGE))
      bench_fail("block %p of %zu bytes: page at offset %zu changed", (void *)p, n, off);
  }
  free(p);
}

static void *work(void *arg) {
  worker_t *w = arg;
  bench_rng_t r = bench_rng((uint64_t)w->index);
  bench_blk_t slot[SLOTS] = {{NULL, 0}};
  for (long i = 0; i < w->replace; i++) {
    bench_blk_t *b = &slot[bench_below(&r, SLOTS)];
    if (b->p != NULL) check_free(b->p, b->n);
    b->n = bench_range(&r, 5 * MIB, 25 * MIB);
    b->p = bench_malloc(b->n);
    touch(b->p, b->n);
    w->bytes += b->n;
  }
  for (int k = 0; k < SLOTS; k++)
    if (slot[k].p != NULL) check_free(slot[k].p, slot[k].n);
  return NULL;
}

int main(int argc, char **argv) {
  bench_init(argc, argv, "malloc_large");
  int n = bench_cfg.threads;
  worker_t *w = bench_zalloc_lines((size_t)n, sizeof *w);
  if (w == NULL) bench_fail("setup allocation failed");
  for (int t = 0; t < n; t++) w[t] = (worker_t){.index = t, .replace = bench_scaled(REPLACE)};
  for (int t = 0; t < n; t++) bench_spawn(&w[t].thread, work, &w[t]);
  unsigned long long bytes = 0;
  for (int t = 0; t < n; t++) {
    bench_join(w[t].thread);
    bytes += w[t].bytes;
  }
  free(w);
  char extra[64];
  snprintf(extra, sizeof extra, "bytes=%llu", bytes);
  bench_report(2ull * (unsigned long long)n * (unsigned long long)bench_scaled(REPLACE), extra);
  return 0;
}
