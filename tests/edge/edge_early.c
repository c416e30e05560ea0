/* edge_early: allocation from an earlier library's ELF constructor, before hakmem's own
 * constructor (DROPIN 2, issue 13 case 1).
 *
 * libedge_early's constructor (edge_early_lib.c) mallocs, reallocs, callocs, memaligns, frees
 * and keeps blocks. This program is run with that library ahead of libhakmem: as DT_NEEDED
 * entries of an executable linked with both (the two link orders), and with
 * LD_PRELOAD="libedge_early.so libhakmem.so" (and the other order) on an executable linked with
 * neither. CMakeLists.txt runs each under LD_DEBUG=files and checks in the loader's own log that
 * libedge_early's constructor ran first where the order promises it. Here main checks that
 * the constructor saw no failure, then that every kept block still holds its pattern, is a
 * hakmem block (hak_owns, found with dlsym: the preloaded form is not linked with hakmem),
 * has a usable size of at least its length, and frees without a diagnostic. It prints
 * "edge_early ok" at the end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static int failed;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL: edge_early: " __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                                         \
      failed = 1;                                                                                  \
    }                                                                                              \
  } while (0)

static void *need(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  if (f == NULL) {
    fprintf(stderr, "FAIL: edge_early: %s not found (is the library loaded?)\n", name);
    exit(1);
  }
  return f;
}

int main(void) {
  int (*count)(void) = (int (*)(void))need("edge_early_count");
  void *(*kept)(int, size_t *, int *) = (void *(*)(int, size_t *, int *))need("edge_early_kept");
  int (*errors)(int *) = (int (*)(int *))need("edge_early_errors");
  int (*owns)(const void *) = (int (*)(const void *))need("hak_owns");

  int line = 0;
  int e = errors(&line);
  CHECK(e == 0, "%d failures in the early constructor, the first at edge_early_lib.c:%d", e, line);
  int n = count();
  CHECK(n >= 10, "the early constructor kept only %d blocks", n);
  for (int i = 0; i < n; i++) {
    size_t len = 0;
    int ok = 0;
    void *p = kept(i, &len, &ok);
    CHECK(p != NULL, "kept block %d is NULL", i);
    if (p == NULL) continue;
    CHECK(ok, "kept block %d (%p, %zu bytes) lost its contents", i, p, len);
    CHECK(owns(p), "kept block %d (%p, %zu bytes) is not a hakmem block", i, p, len);
    CHECK(malloc_usable_size(p) >= len, "malloc_usable_size(%p) = %zu < %zu", p,
          malloc_usable_size(p), len);
    free(p);
  }
  /* The allocator still works after those frees. */
  void *q = malloc(100);
  CHECK(q != NULL && owns(q), "malloc after the frees is not a hakmem block");
  free(q);
  if (failed) return 1;
  printf("edge_early ok: %d blocks from the early constructor\n", n);
  return 0;
}
