/* edge_tunables hakmem|glibc: a program under GLIBC_TUNABLES that change glibc's allocator
 * (tcache off, mmap threshold 4 KiB, one arena, malloc checking 3), with hakmem linked or
 * preloaded (DROPIN 1, issue 13 case 5).
 *
 * "hakmem": every block the program gets (malloc, calloc, realloc, memalign, posix_memalign,
 * aligned_alloc, valloc, and libc's own: strdup, asprintf, getline, open_memstream, stdio
 * buffers, opendir) must be a hakmem block (hak_owns, found with dlsym so the preloaded form
 * needs no link to hakmem), contents must survive realloc, calloc must be zeroed, four threads
 * (one arena for glibc) allocate and cross-free; stderr must stay free of glibc diagnostics
 * (CMakeLists.txt fails on them).
 * "glibc": the same program with no hakmem, as a control that the tunables are in force: with
 * mmap_threshold=4096 glibc must mmap some of eight 100 KiB blocks (mallinfo2().hblks grows),
 * which it does not by default (128 KiB). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef EDGE_LINKED
int hak_owns(const void *ptr);
#endif

static int hakmem_mode;
static int (*owns)(const void *);

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    fprintf(stderr, "FAIL: edge_tunables: " __VA_ARGS__);                                          \
    fputc('\n', stderr);                                                                           \
    exit(1);                                                                                       \
  } while (0)

/* In hakmem mode p must be hakmem's; in the control, not. */
static void mine(const void *p, const char *what) {
  if (p == NULL) FAIL("%s returned NULL", what);
  int h = owns != NULL && owns(p);
  if (hakmem_mode && !h) FAIL("%s = %p is not a hakmem block", what, p);
  if (!hakmem_mode && h) FAIL("%s = %p is a hakmem block without hakmem", what, p);
}

static void fill(void *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = (unsigned char)(seed * 29u + i * 11u);
}

static void check(const void *p, size_t n, unsigned seed, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != (unsigned char)(seed * 29u + i * 11u))
      FAIL("%s: byte %zu of %p changed", what, i, p);
}

static void family(void) {
  static const size_t sizes[] = {0, 8, 100, 1024, 4095, 4097, 70000, 1u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *p = malloc(n);
    mine(p, "malloc");
    if (malloc_usable_size(p) < n) FAIL("malloc_usable_size(malloc(%zu)) too small", n);
    fill(p, n, (unsigned)i);
    p = realloc(p, 3 * n + 5);
    mine(p, "realloc");
    check(p, n, (unsigned)i, "realloc");
    free(p);
    unsigned char *c = calloc(n + 1, 3);
    mine(c, "calloc");
    for (size_t b = 0; b < 3 * (n + 1); b++)
      if (c[b] != 0) FAIL("calloc(%zu, 3) byte %zu is not zero", n + 1, b);
    free(c);
    void *m = memalign(4096, n);
    mine(m, "memalign");
    if ((uintptr_t)m & 4095) FAIL("memalign(4096) = %p", m);
    free(m);
    void *pm = NULL;
    if (posix_memalign(&pm, 64, n) != 0) FAIL("posix_memalign(64, %zu) failed", n);
    mine(pm, "posix_memalign");
    free(pm);
    void *aa = aligned_alloc(128, n);
    mine(aa, "aligned_alloc");
    free(aa);
    void *v = valloc(n);
    mine(v, "valloc");
    free(v);
  }
}

/* Blocks that libc allocates for the program. */
static void libc_blocks(void) {
  char *s = strdup("tunables");
  mine(s, "strdup");
  free(s);
  char *a = NULL;
  if (asprintf(&a, "%d %s %0500d", 42, "asprintf", 7) < 0) FAIL("asprintf failed");
  mine(a, "asprintf");
  free(a);
  char *buf = NULL;
  size_t len = 0;
  FILE *ms = open_memstream(&buf, &len);
  if (ms == NULL) FAIL("open_memstream failed");
  for (int i = 0; i < 2000; i++) fprintf(ms, "line %d\n", i);
  fclose(ms);
  mine(buf, "open_memstream buffer");
  FILE *in = fmemopen(buf, len, "r");
  if (in == NULL) FAIL("fmemopen failed");
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  while (getline(&line, &cap, in) > 0) lines++;
  fclose(in);
  if (lines != 2000) FAIL("read %d lines back, wrote 2000", lines);
  mine(line, "getline");
  free(line);
  free(buf);
  DIR *d = opendir("/");
  if (d == NULL) FAIL("opendir failed");
  mine(d, "opendir");
  closedir(d);
}

#define THREADS 4
#define XS 256
static _Atomic(void *) exchange[XS];

static void *thread_main(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < 20000; i++) {
    size_t n = 16 + (i * 2654435761u + seed) % 6000;
    unsigned char *p = malloc(n);
    if (p == NULL) FAIL("thread malloc failed");
    memcpy(p, &n, sizeof n);
    fill(p + 8, n - 8, (unsigned)n);
    void *old = atomic_exchange(&exchange[(i * 7 + seed) % XS], p);
    if (old != NULL) {
      size_t m;
      memcpy(&m, old, sizeof m);
      check((unsigned char *)old + 8, m - 8, (unsigned)m, "block freed by another thread");
      free(old);
    }
  }
  return NULL;
}

static void threads(void) {
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(i + 1)) != 0)
      FAIL("pthread_create failed");
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < XS; i++) {
    void *p = atomic_exchange(&exchange[i], NULL);
    if (p != NULL) {
      mine(p, "a thread's block");
      free(p);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) FAIL("usage: edge_tunables hakmem|glibc");
  hakmem_mode = strcmp(argv[1], "hakmem") == 0;
  const char *t = getenv("GLIBC_TUNABLES");
  if (t == NULL || strstr(t, "mmap_threshold") == NULL) FAIL("GLIBC_TUNABLES is not set");
#ifdef EDGE_LINKED /* linked with hakmem_static: its symbols are not in the dynamic table */
  owns = hak_owns;
#else
  owns = (int (*)(const void *))dlsym(RTLD_DEFAULT, "hak_owns");
#endif
  if (hakmem_mode && owns == NULL) FAIL("hakmem is not loaded (no hak_owns)");
  if (!hakmem_mode && owns != NULL) FAIL("hakmem is loaded in the control run");

  /* glibc serves a request from its top chunk while that fits and maps one only when the top
   * must grow (sysmalloc), so eight blocks of 100 KiB (under the default 128 KiB threshold)
   * are needed: with the default they grow the heap by brk, with 4 KiB some are mmapped. */
  size_t hblks0 = mallinfo2().hblks;
  void *big[8];
  for (int i = 0; i < 8; i++) {
    big[i] = malloc(100 * 1024);
    mine(big[i], "malloc(100 KiB)");
  }
  size_t hblks1 = mallinfo2().hblks;
  for (int i = 0; i < 8; i++) free(big[i]);
  if (!hakmem_mode && hblks1 <= hblks0)
    FAIL("glibc mmapped none of eight 100 KiB blocks: the tunables are not in force");

  family();
  libc_blocks();
  threads();
  printf("edge_tunables %s ok (GLIBC_TUNABLES=%s)\n", argv[1], t);
  return 0;
}
