/* Compiled by the preload test "preload_cc" (cc under LD_PRELOAD); prints deterministic
 * output that the test compares between a plain and a preloaded run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b) {
  unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  enum { N = 10000 };
  unsigned *v = malloc(N * sizeof *v);
  if (v == NULL)
    return 1;
  unsigned x = 12345;
  for (int i = 0; i < N; i++)
    v[i] = x = x * 1103515245u + 12345u;
  qsort(v, N, sizeof *v, compare);
  unsigned long long sum = 0;
  for (int i = 0; i < N; i += 100)
    sum = sum * 31 + v[i];
  char *s = strdup("hello from a program built under LD_PRELOAD");
  printf("%s\nchecksum %llu min %u max %u\n", s, sum, v[0], v[N - 1]);
  free(s);
  free(v);
  return 0;
}
