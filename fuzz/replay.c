/* Corpus replay driver for builds without libFuzzer (the gcc presets): runs a harness's
 * LLVMFuzzerTestOneInput once on every file named on the command line or found in a directory
 * named there (in name order), as `harness -runs=0 DIR` does under libFuzzer. Arguments that
 * start with '-' are libFuzzer flags and are ignored, so CTest uses one command line for both.
 * Exits 0 after the last input; a broken invariant aborts inside the harness. Finding no input
 * at all is an error: an empty or missing corpus must not pass silently. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long replayed;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
    exit(2);
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  if (buf == NULL || ferror(f)) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  /* A private copy of exactly n bytes, so a harness that reads past its input is caught by the
   * sanitizer builds as it would be under libFuzzer. */
  uint8_t *data = malloc(n ? n : 1);
  if (data == NULL) exit(2);
  memcpy(data, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(data, n);
  free(data);
  replayed++;
}

static void run_dir(const char *dir) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) {
    fprintf(stderr, "replay: cannot read directory %s: %s\n", dir, strerror(errno));
    exit(2);
  }
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    struct stat st;
    if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
      run_file(path);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      return 2;
    }
    if (S_ISDIR(st.st_mode)) run_dir(argv[i]); else run_file(argv[i]);
  }
  if (replayed == 0) {
    fprintf(stderr, "replay: no input found\n");
    return 1;
  }
  printf("replay: %lu inputs, no invariant broken\n", replayed);
  return 0;
}
