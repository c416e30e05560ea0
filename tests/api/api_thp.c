/* HAKMEM_THP: a small block's SuperSlab and a large block's mapping refuse transparent huge
 * pages (VmFlags "nh" in /proc/self/smaps) or ask for them ("hg"): by default (2) the
 * SuperSlab refuses and the large block asks, with 1 both ask, with 0 both refuse.
 * Usage: api_thp SMALL_FLAG LARGE_FLAG   (each nh or hg) */
#include "hak_test.h"

/* The VmFlags line of the mapping that contains p. */
static int vmflags_of(const void *p, char *out, size_t cap) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return 0;
  char line[512];
  int inside = 0, found = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      snprintf(out, cap, "%s", line + 8);
      found = 1;
      break;
    }
  }
  fclose(f);
  return found;
}

int main(int argc, char **argv) {
  t_check(argc == 3, "usage: api_thp nh|hg nh|hg");
  void *small = T_MALLOC(64);
  void *large = T_MALLOC(3 << 20);
  t_check(small && large, "allocation failed");
  char flags[512];
  void *blocks[] = {small, large};
  for (int i = 0; i < 2; i++) {
    t_check(vmflags_of(blocks[i], flags, sizeof flags), "no smaps entry for %p", blocks[i]);
    char word[8];
    snprintf(word, sizeof word, " %s", argv[1 + i]);
    t_check(strstr(flags, word) != NULL, "%s block: VmFlags lack '%s':%s",
            i ? "large" : "small", argv[1 + i], flags);
  }
  T_FREE(small);
  T_FREE(large);
  printf("api_thp %s %s ok\n", argv[1], argv[2]);
  return 0;
}
