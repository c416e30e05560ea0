/* libedge_deepbind_plugin: a plugin linked against libc only, not against hakmem. Loaded by
 * edge_deepbind.c with dlopen(RTLD_DEEPBIND), its own scope (itself, then libc) comes before
 * the global one when its references are bound, so its malloc and free are libc's even when
 * the program links or preloads hakmem; loaded without the flag, they are hakmem's. */
#include <stdlib.h>

__attribute__((visibility("default"))) void *plugin_malloc(size_t n) { return malloc(n); }

__attribute__((visibility("default"))) void *plugin_realloc(void *p, size_t n) {
  return realloc(p, n);
}

__attribute__((visibility("default"))) void plugin_free(void *p) { free(p); }
