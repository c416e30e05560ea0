/* libedge_early: a shared library whose ELF constructor allocates before hakmem's own
 * constructor has run (DROPIN 2, issue 13 case 1). The test programs load it ahead of
 * libhakmem (DT_NEEDED or LD_PRELOAD, in the order that makes the loader run this constructor
 * first; edge_early.c and CMakeLists.txt say which). The constructor calls free(NULL) and
 * realloc(NULL, n), mallocs, reallocs (grow and shrink), callocs, memaligns and frees, keeps
 * some blocks filled with a pattern, and records every failure it sees; main later asks for the
 * kept blocks through edge_early_kept() and frees them. Links nothing but libc, so its malloc
 * is whatever the global scope binds: hakmem's. */
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EARLY_MAX 32

typedef struct early_block_s {
  void *p;       /* kept block, freed by main */
  size_t n;      /* bytes filled with the pattern */
  unsigned seed; /* pattern seed */
} early_block_t;

static early_block_t kept[EARLY_MAX];
static int kept_n;
static int errors;      /* failures seen inside the constructor */
static int first_error; /* line of the first one */

static unsigned char pattern(unsigned seed, size_t i) {
  return (unsigned char)(seed * 151u + i * 13u + (i >> 9));
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = pattern(seed, i);
}

static int intact(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pattern(seed, i)) return 0;
  return 1;
}

#define EARLY_CHECK(cond)                                                                          \
  do {                                                                                             \
    if (!(cond) && errors++ == 0) first_error = __LINE__;                                          \
  } while (0)

static void keep(void *p, size_t n, unsigned seed) {
  EARLY_CHECK(p != NULL);
  if (p == NULL || kept_n == EARLY_MAX) return;
  kept[kept_n++] = (early_block_t){p, n, seed};
}

__attribute__((constructor)) static void early_constructor(void) {
  static const size_t sizes[] = {1, 24, 100, 1000, 5000, 70000, 300000, 3u << 20};
  /* The calls glibc's own early code makes: free(NULL), realloc(NULL, n). */
  free(NULL);
  void *r = realloc(NULL, 48);
  EARLY_CHECK(r != NULL);
  if (r != NULL) {
    fill(r, 48, 1);
    keep(r, 48, 1);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned seed = (unsigned)(10 + i);
    /* Grown by realloc: the old contents must move along. */
    void *a = malloc(n);
    EARLY_CHECK(a != NULL);
    if (a == NULL) continue;
    EARLY_CHECK(malloc_usable_size(a) >= n);
    fill(a, n, seed);
    void *g = realloc(a, 2 * n + 8);
    EARLY_CHECK(g != NULL && intact(g, n, seed));
    if (g == NULL) continue;
    fill(g, 2 * n + 8, seed);
    keep(g, 2 * n + 8, seed);
    /* Shrunk by realloc, then freed here. */
    void *s = malloc(n + 64);
    EARLY_CHECK(s != NULL);
    if (s != NULL) {
      fill(s, n + 64, seed + 100);
      void *t = realloc(s, n / 2 + 1);
      EARLY_CHECK(t != NULL && intact(t, n / 2 + 1, seed + 100));
      free(t);
    }
    /* calloc is zeroed; freed at once. */
    unsigned char *c = calloc(n, 1);
    EARLY_CHECK(c != NULL);
    if (c != NULL) {
      for (size_t b = 0; b < n; b++) EARLY_CHECK(c[b] == 0);
      free(c);
    }
  }
  /* An aligned block, kept. */
  void *m = memalign(256, 700);
  EARLY_CHECK(m != NULL && ((uintptr_t)m & 255) == 0);
  if (m != NULL) {
    fill(m, 700, 7);
    keep(m, 700, 7);
  }
}

/* For main (found with dlsym): the number of kept blocks, and block i with its size and
 * whether its contents are still the pattern. */
__attribute__((visibility("default"))) int edge_early_count(void) { return kept_n; }

__attribute__((visibility("default"))) void *edge_early_kept(int i, size_t *n, int *ok) {
  if (i < 0 || i >= kept_n) return NULL;
  *n = kept[i].n;
  *ok = intact(kept[i].p, kept[i].n, kept[i].seed);
  return kept[i].p;
}

/* Failures inside the constructor, and the source line of the first. */
__attribute__((visibility("default"))) int edge_early_errors(int *line) {
  *line = first_error;
  return errors;
}
