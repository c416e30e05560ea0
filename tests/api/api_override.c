/* The libc allocator names, overridden by hakmem (DROPIN 2, 10, 13, 18). Built only when
 * HAKMEM_OVERRIDE is on, linked with hakmem_static so hakmem's malloc is the executable's.
 *
 * Every entry point glibc exports must reach hakmem: malloc ... malloc_usable_size, cfree, the
 * __libc_* aliases, and the statistics/tuning calls; blocks that glibc allocates internally
 * (strdup, asprintf, stdio, opendir) must be hakmem blocks that free() accepts. Allocation
 * works before hakmem's constructor (a preinit_array entry) and after main (atexit, a
 * destructor). */
#include <dirent.h>
#include <malloc.h>
#include <stdlib.h>

#include "hak_test.h"

/* glibc no longer declares these, but still exports them; hakmem must override them. */
void cfree(void *ptr);
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);

static void check_owned(const void *p, const char *what) {
  t_check(p != NULL, "%s returned NULL", what);
  t_check(hak_owns(p), "%s = %p is not a hakmem block", what, p);
}

/* ---- before the constructors (DROPIN 2) ----------------------------------------------------- */

static void *preinit_block;
static int preinit_realloc_ok;

static void before_constructors(int argc, char **argv, char **envp) {
  (void)argc, (void)argv, (void)envp;
  free(NULL);
  void *p = realloc(NULL, 48);
  if (p != NULL) {
    t_fill(p, 48, 21);
    preinit_block = p;
  }
  void *q = malloc(300);
  void *r = q ? realloc(q, 5000) : NULL;
  preinit_realloc_ok = r != NULL;
  free(r);
}

__attribute__((section(".preinit_array"),
               used)) static void (*const preinit_entry)(int, char **,
                                                         char **) = before_constructors;

static void check_preinit(void) {
  check_owned(preinit_block, "realloc(NULL, 48) in a preinit_array function");
  t_verify(preinit_block, 48, 21);
  t_check(preinit_realloc_ok, "malloc/realloc in a preinit_array function failed");
  free(preinit_block);
}

/* ---- the malloc family through the libc names ---------------------------------------------- */

static void check_malloc_family(void) {
  static const size_t sizes[] = {0, 1, 16, 100, 1024, 5000, 70000, 300000, 3u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *p = malloc(n);
    check_owned(p, "malloc");
    t_check(malloc_usable_size(p) >= n, "malloc_usable_size(malloc(%zu)) = %zu", n,
            malloc_usable_size(p));
    t_check(malloc_usable_size(p) == hak_usable_size(p), "malloc_usable_size != hak_usable_size");
    t_fill(p, n, 1);
    uint64_t key = t_key(p, 1);
    unsigned char *q = realloc(p, n * 2 + 8);
    check_owned(q, "realloc");
    t_verify_key(q, n, key);
    free(q);

    unsigned char *c = calloc(n + 1, 1);
    check_owned(c, "calloc");
    for (size_t b = 0; b <= n; b++)
      t_check(c[b] == 0, "calloc(%zu, 1) byte %zu not zero", n + 1, b);
    c = reallocarray(c, n + 1, 2);
    check_owned(c, "reallocarray");
    free(c);

    void *m = memalign(256, n);
    check_owned(m, "memalign");
    t_check(t_aligned(m, 256), "memalign(256, %zu) = %p", n, m);
    t_check(malloc_usable_size(m) >= n, "malloc_usable_size(memalign(256, %zu))", n);
    free(m);

    void *pm = NULL;
    t_check(posix_memalign(&pm, 4096, n) == 0, "posix_memalign(4096, %zu) failed", n);
    check_owned(pm, "posix_memalign");
    t_check(t_aligned(pm, 4096), "posix_memalign(4096, %zu) = %p", n, pm);
    pm = realloc(pm, n + 100);
    check_owned(pm, "realloc(posix_memalign block)");
    free(pm);

    void *aa = aligned_alloc(64, n);
    check_owned(aa, "aligned_alloc");
    t_check(t_aligned(aa, 64), "aligned_alloc(64, %zu) = %p", n, aa);
    free(aa);

    void *v = valloc(n);
    check_owned(v, "valloc");
    t_check(t_aligned(v, 4096), "valloc(%zu) = %p", n, v);
    free(v);

    void *pv = pvalloc(n);
    check_owned(pv, "pvalloc");
    t_check(t_aligned(pv, 4096), "pvalloc(%zu) = %p", n, pv);
    t_check(malloc_usable_size(pv) >= ((n + 4095) & ~(size_t)4095),
            "pvalloc(%zu) not rounded up to a page", n);
    free(pv);

    void *cf = malloc(n);
    check_owned(cf, "malloc");
    cfree(cf);
  }
  /* The answers of failing calls are checked through volatile function pointers: a compiler
   * may elide an allocation whose result is only compared with NULL and assume success. */
  void *(*volatile malloc_fn)(size_t) = malloc;
  void *(*volatile realloc_fn)(void *, size_t) = realloc;
  int (*volatile posix_memalign_fn)(void **, size_t, size_t) = posix_memalign;
  errno = 0;
  void *huge_block = malloc_fn(SIZE_MAX);
  t_check(huge_block == NULL && errno == ENOMEM, "malloc(SIZE_MAX) did not fail with ENOMEM");
  void *p = malloc_fn(32);
  check_owned(p, "malloc");
  uint64_t live = t_live_blocks();
  t_check(realloc_fn(p, 0) == NULL, "realloc(p, 0) did not return NULL");
  t_check(t_live_blocks() == live - 1, "realloc(p, 0) did not free the block");
  void *sentinel = (void *)(uintptr_t)0x1230;
  void *out = sentinel;
  t_check(posix_memalign_fn(&out, 24, 16) == EINVAL && out == sentinel,
          "posix_memalign(24) did not return EINVAL leaving *p alone");
}

static void check_libc_aliases(void) {
  void *a = __libc_malloc(100);
  check_owned(a, "__libc_malloc");
  void *b = __libc_calloc(10, 10);
  check_owned(b, "__libc_calloc");
  for (int i = 0; i < 100; i++)
    t_check(((unsigned char *)b)[i] == 0, "__libc_calloc not zeroed");
  t_fill(a, 100, 2);
  uint64_t key = t_key(a, 2);
  void *c = __libc_realloc(a, 4000);
  check_owned(c, "__libc_realloc");
  t_verify_key(c, 100, key);
  void *d = __libc_memalign(512, 100);
  check_owned(d, "__libc_memalign");
  t_check(t_aligned(d, 512), "__libc_memalign(512) = %p", d);
  /* The aliases and the plain names share one heap. */
  free(c);
  __libc_free(b);
  __libc_free(d);
  void *e = malloc(64);
  __libc_free(e);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void check_stats_and_tuning(void) {
  void *keep = malloc(1000);
  int trimmed = malloc_trim(0);
  t_check(trimmed == 0 || trimmed == 1, "malloc_trim(0) returned %d", trimmed);
  struct mallinfo2 mi2 = mallinfo2();
  struct mallinfo mi = mallinfo();
  (void)mi2, (void)mi;
  malloc_stats();
  int rc = mallopt(M_MMAP_THRESHOLD, 1 << 20);
  (void)rc; /* any answer is allowed; the call must simply not crash */
  t_check(hak_owns(keep), "a live block was lost across malloc_trim/mallinfo/mallopt");
  free(keep);
}
#pragma GCC diagnostic pop

/* Blocks glibc allocates internally come from hakmem and go back through it. */
static void check_libc_internal(void) {
  char *s = strdup("hakmem override");
  check_owned(s, "strdup");
  free(s);
  s = strndup("hakmem override", 6);
  check_owned(s, "strndup");
  free(s);
  char *f = NULL;
  t_check(asprintf(&f, "%s-%d-%0200d", "asprintf", 42, 7) > 0, "asprintf failed");
  check_owned(f, "asprintf");
  free(f);
  char *rp = realpath("/", NULL);
  check_owned(rp, "realpath(\"/\", NULL)");
  free(rp);
  for (int i = 0; i < 50; i++) {
    FILE *fp = fopen("/proc/self/maps", "r");
    t_check(fp != NULL, "fopen(/proc/self/maps) failed");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0) {
    }
    check_owned(line, "getline");
    free(line);
    fclose(fp);
    DIR *d = opendir("/");
    t_check(d != NULL, "opendir(/) failed");
    while (readdir(d) != NULL) {
    }
    closedir(d);
  }
}

/* ---- after main (DROPIN 18) ------------------------------------------------------------------ */

static void allocate_late(const char *when) {
  for (size_t n = 8; n <= (1u << 20); n *= 4) {
    unsigned char *p = malloc(n);
    t_check(p != NULL && hak_owns(p), "malloc(%zu) %s is not a hakmem block", n, when);
    t_fill(p, n, 3);
    t_verify(p, n, 3);
    free(p);
  }
}

static void late_atexit(void) { allocate_late("in an atexit handler"); }

__attribute__((destructor)) static void late_destructor(void) { allocate_late("in a destructor"); }

int main(void) {
  char *probe = malloc(16);
  t_check(probe != NULL, "malloc(16) returned NULL");
  probe[0] = 1;
  t_check(hak_owns(probe), "malloc(16) is not a hakmem block: the override is not linked in");
  free(probe);
  t_check(atexit(late_atexit) == 0, "atexit failed");
  check_preinit();
  check_malloc_family();
  check_libc_aliases();
  check_stats_and_tuning();
  check_libc_internal();
  printf("api_override: ok\n");
  return 0;
}
