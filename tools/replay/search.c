/* --perturb-search N: turns a race seen once into a seed that shows it every time.
 *
 * Seeds FROM .. FROM + N - 1 are replayed one after the other, each by a child process
 * (child.c) under its own time limit, so a crash or a hang ends only that child. The first
 * seed that does not pass ends the search: one line names it, its outcome and how many seeds
 * it took, and one more gives the command that reproduces it. A child whose schedule stalled
 * (perturb.c's watchdog let its threads run unscheduled) is not reproducible; it is counted,
 * and a failure after such a stall says so. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "replay.h"

#define STALL_MARK "perturbed schedule stalled"

int replay_search(const char *path, uint64_t from, uint64_t count, double timeout) {
  double start = replay_now();
  uint64_t stalled = 0;
  for (uint64_t k = 0; k < count; k++) {
    char seed[32], err[8192], name[64];
    snprintf(seed, sizeof seed, "%" PRIu64, from + k);
    outcome_t o = child_replay(path, seed, timeout, err, sizeof err);
    bool stall = strstr(err, STALL_MARK) != NULL;
    stalled += stall;
    if (outcome_clean(&o))
      continue;
    printf("hakmem-replay: seed %s fails: %s%s%s%s (%" PRIu64 " seeds tried, %.1f s)\n", seed,
           outcome_name(&o, name, sizeof name), o.what[0] ? ", hakmem: " : "", o.what,
           stall ? ", after a stall: not reproducible" : "", k + 1, replay_now() - start);
    printf("reproduce: hakmem-replay --perturb %s %s\n", seed, path);
    return 1;
  }
  printf("hakmem-replay: %" PRIu64 " seeds replayed clean (%.1f s", count, replay_now() - start);
  if (stalled)
    printf("; %" PRIu64 " stalled and ran unscheduled", stalled);
  printf(")\n");
  return 0;
}
