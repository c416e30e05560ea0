/* edge_deepbind MODE ACTION [SIZE]: a dlopen(RTLD_DEEPBIND) plugin and the host freeing each
 * other's blocks (DROPIN 5, issue 13 case 3).
 *
 * The host either links libhakmem.so or runs under LD_PRELOAD=libhakmem.so (hakmem's API is
 * found with dlsym, so one source serves both). It loads libedge_deepbind_plugin.so, which
 * links libc only, with RTLD_NOW | RTLD_LOCAL, plus RTLD_DEEPBIND when MODE is "deep" ("plain"
 * without it).
 *
 *   probe              MODE plain: the plugin's malloc must be hakmem's (hak_owns), and the
 *                      host and the plugin free and realloc each other's blocks of every size
 *                      class range; prints "plugin allocator: hakmem".
 *                      MODE deep: the plugin's malloc is libc's (its blocks are not hakmem's),
 *                      which the test asserts, as it is what RTLD_DEEPBIND does; each side frees
 *                      its own blocks; prints "plugin allocator: libc".
 *   host_frees_plugin  the host free()s a block the plugin malloc'd (MODE deep): hakmem must
 *                      stop with its one-line "hakmem: invalid free" diagnostic (run under
 *                      expect_abort).
 *   plugin_frees_host  the plugin free()s a block of SIZE bytes the host malloc'd: that is
 *                      glibc's free receiving a hakmem block; what happens is glibc's choice.
 *                      The program then reuses the allocators so that a silent acceptance
 *                      shows up: prints "plugin_frees_host survived" if nothing stopped it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    fprintf(stderr, "FAIL: edge_deepbind: " __VA_ARGS__);                                          \
    fputc('\n', stderr);                                                                           \
    exit(1);                                                                                       \
  } while (0)

static void *(*p_malloc)(size_t);
static void *(*p_realloc)(void *, size_t);
static void (*p_free)(void *);
static int (*owns)(const void *);

static void *sym(void *h, const char *name) {
  void *f = dlsym(h, name);
  if (f == NULL) FAIL("%s not found: %s", name, dlerror());
  return f;
}

static void fill(void *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = (unsigned char)(seed + i * 7u);
}

static void check(const void *p, size_t n, unsigned seed, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != (unsigned char)(seed + i * 7u))
      FAIL("%s: byte %zu of %p changed", what, i, p);
}

static const size_t sizes[] = {16, 64, 1000, 5000, 60000, 300000, 2u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Each side frees and reallocs the other side's blocks: hakmem's on both sides. */
static void cross_frees(void) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = sizes[i];
    void *a = p_malloc(n);
    if (a == NULL || !owns(a)) FAIL("plain: plugin malloc(%zu) = %p is not hakmem's", n, a);
    fill(a, n, 1);
    void *b = realloc(a, n + n / 2);
    if (b == NULL) FAIL("host realloc of a plugin block failed");
    check(b, n, 1, "host realloc of a plugin block");
    free(b);
    void *c = malloc(n);
    if (c == NULL || !owns(c)) FAIL("host malloc(%zu) is not hakmem's", n);
    fill(c, n, 2);
    void *d = p_realloc(c, n * 2);
    if (d == NULL || !owns(d)) FAIL("plugin realloc of a host block is not hakmem's");
    check(d, n, 2, "plugin realloc of a host block");
    p_free(d);
  }
}

/* Each side frees its own blocks: works whatever the plugin bound to. */
static void own_frees(void) {
  for (size_t i = 0; i < NSIZES; i++) {
    void *a = p_malloc(sizes[i]);
    void *c = malloc(sizes[i]);
    if (a == NULL || c == NULL) FAIL("malloc(%zu) failed", sizes[i]);
    fill(a, sizes[i], 3);
    fill(c, sizes[i], 4);
    check(a, sizes[i], 3, "plugin block");
    check(c, sizes[i], 4, "host block");
    p_free(a);
    free(c);
  }
}

/* Allocates and checks on both sides after a cross free, so that a block glibc took into its
 * lists (and hands out again over a live hakmem block) shows up as changed contents. */
static void reuse_after(void *host_kept[], size_t n_kept, size_t size) {
  void *mine[64];
  for (int i = 0; i < 64; i++) {
    mine[i] = p_malloc(size);
    if (mine[i] == NULL) FAIL("plugin malloc(%zu) failed after the cross free", size);
    fill(mine[i], size, 9);
  }
  for (size_t i = 0; i < n_kept; i++) check(host_kept[i], size, 5, "live hakmem block");
  for (int i = 0; i < 64; i++) {
    if (owns(mine[i]))
      printf("plugin malloc returned %p, inside hakmem's heap (a hakmem block reused)\n", mine[i]);
    p_free(mine[i]);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) FAIL("usage: edge_deepbind deep|plain probe|host_frees_plugin|plugin_frees_host [SIZE]");
  int deep = strcmp(argv[1], "deep") == 0;
  const char *action = argv[2];
  owns = (int (*)(const void *))dlsym(RTLD_DEFAULT, "hak_owns");
  if (owns == NULL) FAIL("hakmem is not loaded (no hak_owns)");
  void *h = dlopen(EDGE_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
  if (h == NULL) FAIL("dlopen: %s", dlerror());
  p_malloc = (void *(*)(size_t))sym(h, "plugin_malloc");
  p_realloc = (void *(*)(void *, size_t))sym(h, "plugin_realloc");
  p_free = (void (*)(void *))sym(h, "plugin_free");

  if (strcmp(action, "probe") == 0) {
    void *p = p_malloc(64);
    if (p == NULL) FAIL("plugin malloc failed");
    int hak = owns(p);
    p_free(p);
    if (!deep && !hak) FAIL("plain dlopen: the plugin's malloc is not hakmem's");
    if (deep && hak) FAIL("RTLD_DEEPBIND: the plugin's malloc is hakmem's (expected libc's)");
    if (deep) own_frees();
    else cross_frees();
    printf("plugin allocator: %s\n", hak ? "hakmem" : "libc");
    return 0;
  }
  if (strcmp(action, "host_frees_plugin") == 0) {
    void *p = p_malloc(argc > 3 ? strtoul(argv[3], NULL, 0) : 64);
    if (p == NULL) FAIL("plugin malloc failed");
    free(p); /* hakmem's free, a libc block */
    printf("host_frees_plugin survived\n");
    return 0;
  }
  if (strcmp(action, "plugin_frees_host") == 0) {
    size_t size = argc > 3 ? strtoul(argv[3], NULL, 0) : 64;
    /* The plugin has used its (libc's) malloc before, as a real plugin has. */
    p_free(p_malloc(size));
    void *kept[16];
    for (int i = 0; i < 16; i++) {
      kept[i] = malloc(size);
      if (kept[i] == NULL || !owns(kept[i])) FAIL("host malloc(%zu) is not hakmem's", size);
      fill(kept[i], size, 5);
    }
    void *victim = kept[8];
    kept[8] = kept[15];
    p_free(victim); /* libc's free, a hakmem block */
    printf("plugin_frees_host: libc's free returned for a hakmem block of %zu bytes\n", size);
    fflush(stdout);
    reuse_after(kept, 15, size);
    for (int i = 0; i < 15; i++) free(kept[i]);
    printf("plugin_frees_host survived\n");
    return 0;
  }
  FAIL("unknown action %s", action);
}
