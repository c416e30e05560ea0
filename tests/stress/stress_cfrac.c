/* stress_cfrac SECONDS: single-thread small-object churn shaped like cfrac (DESIGN §7).
 *
 * A bignum library allocates a short-lived temporary for almost every operation and keeps a
 * few long-lived values. Here: 8-200 B blocks, most freed within a few operations in roughly
 * LIFO order, a pool of long-lived values replaced now and then. Every block is patterned
 * when allocated and checked when freed. Prints "allocations: N" for the CI check that
 * divides system calls by allocations. */
#include "hak_test.h"

#define LONG_LIVED 64
#define SCRATCH 16

typedef struct num_s {
  unsigned char *p;
  size_t size;
} num_t;

static num_t make(t_rng_t *rng, uint64_t *allocs) {
  num_t n;
  n.size = t_rng_range(rng, 8, 200);
  n.p = T_MALLOC(n.size);
  t_check(n.p != NULL, "malloc(%zu) returned NULL", n.size);
  t_check(t_aligned(n.p, n.size > 8 ? 16 : 8), "malloc(%zu) = %p is misaligned", n.size,
          (void *)n.p);
  t_fill(n.p, n.size, n.size);
  (*allocs)++;
  return n;
}

static void drop(num_t n) {
  t_verify(n.p, n.size, n.size);
  T_FREE(n.p);
}

int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  hak_stats_t before;
  hak_stats_get(&before);
  t_rng_t rng;
  t_rng_seed(&rng, 77);
  uint64_t allocs = 0;

  num_t pool[LONG_LIVED];
  for (int i = 0; i < LONG_LIVED; i++)
    pool[i] = make(&rng, &allocs);

  double deadline = t_now() + seconds;
  num_t scratch[SCRATCH];
  for (uint64_t op = 0;; op++) {
    if ((op & 1023) == 0 && t_now() >= deadline)
      break;
    /* One "operation": a few temporaries, freed in reverse order (mostly). */
    int depth = 2 + (int)t_rng_below(&rng, 5);
    for (int i = 0; i < depth; i++)
      scratch[i] = make(&rng, &allocs);
    if (t_rng_below(&rng, 8) == 0) {
      /* The result replaces a long-lived value. */
      int slot = (int)t_rng_below(&rng, LONG_LIVED);
      drop(pool[slot]);
      pool[slot] = scratch[--depth];
    }
    if (depth > 1 && t_rng_below(&rng, 4) == 0) {
      num_t t = scratch[0];
      scratch[0] = scratch[depth - 1];
      scratch[depth - 1] = t;
    }
    while (depth > 0)
      drop(scratch[--depth]);
  }
  for (int i = 0; i < LONG_LIVED; i++)
    drop(pool[i]);

  t_check_stats_moved(&before, allocs);
  t_check_live(before.live_blocks, 0);
  printf("allocations: %llu\n", (unsigned long long)allocs);
  return 0;
}
