/* dlopen() of a library linked against hakmem, after start-up (the program itself does not
 * link hakmem): the library loads, and allocation through it works in old and new threads. */
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
  void *h = dlopen(HAK_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "FAIL: dlopen: %s\n", dlerror());
    return 1;
  }
  int (*run)(void) = (int (*)(void))dlsym(h, "plugin_run");
  if (run == NULL) {
    fprintf(stderr, "FAIL: plugin_run not found\n");
    return 1;
  }
  int rc = run();
  if (rc != 0) {
    fprintf(stderr, "FAIL: plugin_run returned %d\n", rc);
    return 1;
  }
  printf("api_dlopen ok\n");
  return 0;
}
