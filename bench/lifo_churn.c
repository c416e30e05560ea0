/* lifo_churn ROUNDS [BLOCKS]: single-thread LIFO churn, the fast-path probe.
 *
 * Each round allocates BLOCKS (default 1,000) blocks of 64..120 bytes and frees them in
 * reverse order. A fixed amount of work, no timing: run it under
 * `valgrind --tool=callgrind` at two round counts and divide the difference in instructions
 * by the difference in malloc+free pairs (bench/callgrind-pair does this). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 300;
  long blocks = argc > 2 ? atol(argv[2]) : 1000;
  void **slot = calloc((size_t)blocks, sizeof *slot);
  if (slot == NULL) return 1;
  uint64_t check = 0;
  for (long r = 0; r < rounds; r++) {
    for (long i = 0; i < blocks; i++) {
      size_t n = 64 + (size_t)((i * 7 + r) % 57);
      slot[i] = malloc(n);
      if (slot[i] == NULL) return 1;
      *(volatile char *)slot[i] = (char)i;
    }
    for (long i = blocks - 1; i >= 0; i--) {
      check += (uintptr_t)slot[i] & 0xff;
      free(slot[i]);
    }
  }
  free(slot);
  printf("lifo_churn: %ld pairs, check %llu\n", rounds * blocks, (unsigned long long)(check & 1));
  return 0;
}
