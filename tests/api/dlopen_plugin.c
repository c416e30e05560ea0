/* A plugin linked against libhakmem.so, loaded with dlopen() after the program started: its
 * thread-local state must work in the thread that loaded it and in threads started later. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "hakmem.h"

static int churn(void) {
  void *blocks[500];
  for (int i = 0; i < 500; i++) {
    size_t n = 8 + (size_t)(i * 53) % 6000;
    blocks[i] = hak_malloc(n);
    if (blocks[i] == NULL || !hak_owns(blocks[i])) return 1;
    memset(blocks[i], i & 0xff, n);
  }
  for (int i = 0; i < 500; i++) {
    if (((unsigned char *)blocks[i])[0] != (i & 0xff)) return 2;
    hak_free(blocks[i]);
  }
  return 0;
}

static void *thread_main(void *arg) {
  (void)arg;
  return (void *)(intptr_t)churn();
}

__attribute__((visibility("default"))) int plugin_run(void) {
  int rc = churn();
  if (rc) return rc;
  pthread_t threads[4];
  for (int t = 0; t < 4; t++)
    if (pthread_create(&threads[t], NULL, thread_main, NULL) != 0) return 3;
  for (int t = 0; t < 4; t++) {
    void *r;
    pthread_join(threads[t], &r);
    if (r != NULL) rc = (int)(intptr_t)r;
  }
  return rc;
}
