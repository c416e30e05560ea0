/* Links hakmem and checks that malloc is hakmem's and the version macros match the library. */
#include <stdio.h>
#include <stdlib.h>

#include "hakmem.h"

int main(void) {
  if (hak_version() != HAKMEM_VERSION) {
    fprintf(stderr, "FAIL: header version %d, library %d\n", HAKMEM_VERSION, hak_version());
    return 1;
  }
  void *p = malloc(100);
  if (!hak_owns(p)) {
    fprintf(stderr, "FAIL: malloc is not hakmem's\n");
    return 1;
  }
  free(p);
  printf("consumer ok %d.%d.%d\n", HAKMEM_VERSION_MAJOR, HAKMEM_VERSION_MINOR,
         HAKMEM_VERSION_PATCH);
  return 0;
}
