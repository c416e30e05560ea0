/* Sizes and alignment of plain malloc (DROPIN 6, DESIGN §1).
 *
 * 1. Every size 0..65536 and every 2^k - 1, 2^k, 2^k + 1 up to 64 MiB: non-NULL, owned,
 *    aligned (16 above 8 bytes, 8 at least below), usable >= size, the whole usable size
 *    writable and read back intact.
 * 2. A window of ~1000 live blocks of random sizes, replaced at random: no two usable ranges
 *    overlap and every block keeps its contents until it is freed.
 * 3. malloc(0) returns a distinct, freeable pointer each time. */
#include "hak_test.h"

#define SWEEP_MAX 65536
#define POW2_MAX_SHIFT 26 /* 64 MiB */
#define WINDOW 1000
#define WINDOW_STEPS 100000
#define ZERO_COUNT 1000

static size_t min_alignment(size_t size) { return size > 8 ? 16 : 8; }

static void check_one(size_t size, uint64_t seed) {
  unsigned char *p = T_MALLOC(size);
  t_check(p != NULL, "malloc(%zu) returned NULL", size);
  t_check(t_aligned(p, min_alignment(size)), "malloc(%zu) = %p is not %zu-byte aligned", size,
          (void *)p, min_alignment(size));
  t_check(hak_owns(p), "hak_owns(malloc(%zu) = %p) is false", size, (void *)p);
  size_t usable = T_USABLE(p);
  t_check(usable >= size, "usable_size(malloc(%zu)) = %zu is smaller than the request", size,
          usable);
  t_fill(p, usable, seed);
  t_verify(p, usable, seed);
  T_FREE(p);
}

static void sweep(void) {
  for (size_t size = 0; size <= SWEEP_MAX; size++)
    check_one(size, size);
  for (int k = 0; k <= POW2_MAX_SHIFT; k++) {
    size_t pow = (size_t)1 << k;
    check_one(pow - 1, 3 * pow);
    check_one(pow, 3 * pow + 1);
    check_one(pow + 1, 3 * pow + 2);
  }
}

typedef struct block_s {
  unsigned char *p; /* NULL when the slot is empty */
  size_t size;      /* requested bytes, all filled */
  size_t usable;    /* hak_usable_size(p) at allocation */
} block_t;

static block_t window[WINDOW];
static block_t sorted[WINDOW];

static size_t random_size(t_rng_t *rng) {
  uint64_t r = t_rng_below(rng, 100);
  if (r < 60)
    return t_rng_range(rng, 0, 256);
  if (r < 85)
    return t_rng_range(rng, 257, 4096);
  if (r < 99)
    return t_rng_range(rng, 4097, 65536);
  return t_rng_range(rng, 65537, 1u << 20);
}

static int by_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const block_t *)a)->p, y = (uintptr_t)((const block_t *)b)->p;
  return x < y ? -1 : x > y;
}

/* No two live blocks' usable ranges intersect, and every block still holds its pattern. */
static void check_window(void) {
  size_t n = 0;
  for (size_t i = 0; i < WINDOW; i++)
    if (window[i].p != NULL)
      sorted[n++] = window[i];
  qsort(sorted, n, sizeof sorted[0], by_address);
  for (size_t i = 0; i + 1 < n; i++) {
    uintptr_t end = (uintptr_t)sorted[i].p + (sorted[i].usable ? sorted[i].usable : 1);
    t_check(end <= (uintptr_t)sorted[i + 1].p,
            "live blocks overlap: %p (usable %zu) and %p (usable %zu)", (void *)sorted[i].p,
            sorted[i].usable, (void *)sorted[i + 1].p, sorted[i + 1].usable);
  }
  for (size_t i = 0; i < n; i++)
    t_verify(sorted[i].p, sorted[i].size, 7);
}

static void release(block_t *b) {
  t_verify(b->p, b->size, 7);
  t_check(T_USABLE(b->p) == b->usable, "usable_size(%p) changed from %zu to %zu while live",
          (void *)b->p, b->usable, T_USABLE(b->p));
  T_FREE(b->p);
  b->p = NULL;
}

static void random_window(void) {
  t_rng_t rng;
  t_rng_seed(&rng, 42);
  for (size_t step = 0; step < WINDOW_STEPS; step++) {
    block_t *b = &window[t_rng_below(&rng, WINDOW)];
    if (b->p != NULL)
      release(b);
    b->size = random_size(&rng);
    b->p = T_MALLOC(b->size);
    t_check(b->p != NULL, "malloc(%zu) returned NULL", b->size);
    t_check(t_aligned(b->p, min_alignment(b->size)), "malloc(%zu) = %p is misaligned", b->size,
            (void *)b->p);
    b->usable = T_USABLE(b->p);
    t_check(b->usable >= b->size, "usable_size(malloc(%zu)) = %zu", b->size, b->usable);
    t_fill(b->p, b->size, 7);
    if (step % 10000 == 0)
      check_window();
  }
  check_window();
  for (size_t i = 0; i < WINDOW; i++)
    if (window[i].p != NULL)
      release(&window[i]);
}

static int by_pointer(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static void zero_size(void) {
  static void *blocks[ZERO_COUNT], *order[ZERO_COUNT];
  for (size_t i = 0; i < ZERO_COUNT; i++) {
    blocks[i] = T_MALLOC(0);
    t_check(blocks[i] != NULL, "malloc(0) #%zu returned NULL", i);
    t_check(t_aligned(blocks[i], 8), "malloc(0) = %p is not 8-byte aligned", blocks[i]);
    t_check(hak_owns(blocks[i]), "hak_owns(malloc(0) = %p) is false", blocks[i]);
    order[i] = blocks[i];
  }
  qsort(order, ZERO_COUNT, sizeof order[0], by_pointer);
  for (size_t i = 0; i + 1 < ZERO_COUNT; i++)
    t_check(order[i] != order[i + 1], "malloc(0) returned %p twice while both were live", order[i]);
  for (size_t i = 0; i < ZERO_COUNT; i++)
    T_FREE(blocks[i]);
}

int main(void) {
  uint64_t live = t_live_blocks();
  sweep();
  random_window();
  zero_size();
  uint64_t end = t_live_blocks();
  t_check(end == live, "live_blocks went from %llu to %llu although every block was freed",
          (unsigned long long)live, (unsigned long long)end);
  printf("api_sizes: ok\n");
  return 0;
}
