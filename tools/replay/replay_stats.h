/* The final counters of a run, as hakmem-replay --stats writes them and as a recording test
 * program writes its own: equal files mean the replay left hakmem where the program did.
 *
 *   allocs N
 *   frees N
 *   remote_frees N
 *   live_blocks N
 *   class C allocs N frees N remote_frees N     (one line per class that was used)
 *
 * Formatted into a caller's buffer with snprintf only: a traced program can take the counters
 * and write them without a single allocation after the snapshot. */
#ifndef HAKMEM_REPLAY_STATS_H
#define HAKMEM_REPLAY_STATS_H

#include <stdio.h>

#include "hakmem.h"

/* Returns the length written (truncated to size - 1). */
static inline size_t hak_replay_stats_format(char *buf, size_t size) {
  hak_stats_t s;
  hak_stats_get(&s);
  size_t n = 0;
#define HAK_RS_PUT(...)                                                                            \
  do {                                                                                             \
    int w_ = snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__);                              \
    if (w_ > 0)                                                                                    \
      n += (size_t)w_;                                                                             \
  } while (0)
  HAK_RS_PUT("allocs %llu\nfrees %llu\nremote_frees %llu\nlive_blocks %llu\n",
             (unsigned long long)s.allocs, (unsigned long long)s.frees,
             (unsigned long long)s.remote_frees, (unsigned long long)s.live_blocks);
  for (int c = 0; c < hak_class_count(); c++) {
    hak_class_stats_t cs;
    hak_class_stats_get(c, &cs);
    if (cs.allocs == 0 && cs.frees == 0 && cs.remote_frees == 0)
      continue;
    HAK_RS_PUT("class %d allocs %llu frees %llu remote_frees %llu\n", c,
               (unsigned long long)cs.allocs, (unsigned long long)cs.frees,
               (unsigned long long)cs.remote_frees);
  }
#undef HAK_RS_PUT
  return n < size ? n : size - 1;
}

#endif /* HAKMEM_REPLAY_STATS_H */
