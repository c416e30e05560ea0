/* hakmem-replay: command line.
 *
 *   hakmem-replay [--stats FILE|-] TRACE      replay in the recorded order; exit 0 when clean
 *   hakmem-replay --perturb SEED [--schedule-log FILE] [--stats FILE|-] TRACE
 *                                             replay with the threads interleaved as SEED
 *                                             chooses at every call and schedule point
 *                                             (perturb.c); the same seed, the same schedule
 *   hakmem-replay --perturb-search N [--perturb-from S] [--timeout S] TRACE
 *                                             seeds S .. S+N-1 (S = 1), each replayed in a
 *                                             child; names the first that fails, exit 1, or
 *                                             exit 0 when all pass (search.c)
 *   hakmem-replay --info TRACE                counts of the trace
 *   hakmem-replay --dump TRACE                one line per call, in order
 *   hakmem-replay --minimize -o OUT [--perturb SEED] [--timeout S] [--budget S] TRACE
 *                                             with a seed, every candidate under its schedule
 *   hakmem-replay --to-corpus OUT TRACE       an alloc_ops fuzz input
 *
 * --test-stall CALL (with --perturb, for the watchdog's test): the thread about to run CALL
 * blocks outside the scheduler until the watchdog gives up the schedule. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

/* hakmem inside this program would record the replay into HAKMEM_TRACE, which is usually the
 * very trace being read: drop the variable before hakmem's own constructor reads it (a
 * constructor of higher priority runs first in the executable). */
__attribute__((constructor(101))) static void ignore_trace_env(void) {
  if (getenv("HAKMEM_TRACE") == NULL)
    return;
  unsetenv("HAKMEM_TRACE");
  fprintf(stderr, "hakmem-replay: HAKMEM_TRACE ignored: the replay is not recorded\n");
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: hakmem-replay [--stats FILE|-] TRACE\n"
      "       hakmem-replay --perturb SEED [--schedule-log FILE] [--stats FILE|-] TRACE\n"
      "       hakmem-replay --perturb-search N [--perturb-from SEED] [--timeout SECONDS] TRACE\n"
      "       hakmem-replay --info TRACE | --dump TRACE\n"
      "       hakmem-replay --minimize -o OUT [--perturb SEED] [--timeout SECONDS]\n"
      "                     [--budget SECONDS] TRACE\n"
      "       hakmem-replay --to-corpus OUT TRACE\n");
  exit(2);
}

/* A decimal unsigned number, all of a, or usage(). */
static uint64_t number(const char *a) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(a, &end, 10);
  if (a[0] < '0' || a[0] > '9' || *end != '\0' || errno != 0)
    usage();
  return v;
}

static uint64_t positive(const char *a) {
  uint64_t v = number(a);
  if (v == 0)
    usage();
  return v;
}

static void info(const trace_t *t) {
  size_t allocs = 0, frees = 0, twice = 0, exits = 0;
  for (size_t i = 0; i < t->n; i++) {
    const rop_t *o = &t->ops[i];
    allocs += o->id >= 0;
    frees += o->op == HAK_TR_FREE;
    twice += o->twice;
    exits += o->op == HAK_TR_THREAD_EXIT;
  }
  printf("ops %zu\nallocs %zu\nfrees %zu\ndouble_frees %zu\nthreads %u\nthread_exits %zu\n"
         "foreign_frees %zu\nforeign_reallocs %zu\npid %u\nconfig %s%s%s\n",
         t->n, allocs, frees, twice, t->threads, exits, t->foreign, t->foreign_realloc, t->hdr.pid,
         t->hdr.config & HAK_TRACE_CFG_HEADERLESS ? "headerless" : "header",
         t->hdr.config & HAK_TRACE_CFG_HINT ? " hint" : "",
         t->hdr.config & HAK_TRACE_CFG_CHECKED ? " checked" : "");
}

static void dump(const trace_t *t) {
  for (size_t i = 0; i < t->n; i++) {
    const rop_t *o = &t->ops[i];
    printf("%zu thread=%u %s size=%llu aux=%llu ptr=%#llx id=%lld old=%lld%s\n", i, o->thread,
           trace_op_name(o->op), (unsigned long long)o->size, (unsigned long long)o->aux,
           (unsigned long long)o->ptr, (long long)o->id, (long long)o->old,
           o->twice ? " double-free" : "");
  }
}

/* What the replay skipped, on stderr (never silently). */
static void notes(const trace_t *t) {
  if (t->foreign)
    fprintf(stderr, "hakmem-replay: skipped %zu frees of pointers not allocated in the trace\n",
            t->foreign);
  if (t->foreign_realloc)
    fprintf(stderr,
            "hakmem-replay: %zu reallocs of pointers not allocated in the trace "
            "replayed as allocations\n",
            t->foreign_realloc);
  if (t->late_exits)
    fprintf(stderr,
            "hakmem-replay: %zu threads called after their exit; they exit after "
            "their last call\n",
            t->late_exits);
}

typedef struct args_s {
  const char *stats, *out, *corpus, *path, *seed, *log;
  bool info, dump, minimize;
  uint64_t seeds, from, stall; /* seeds: --perturb-search N, 0 without */
  replay_limits_t lim;
} args_t;

static args_t parse(int argc, char **argv) {
  args_t a = {.from = 1, .stall = UINT64_MAX, .lim = {.timeout = 10, .budget = 600}};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    bool has_arg = i + 1 < argc;
    if (strcmp(o, "--stats") == 0 && has_arg)
      a.stats = argv[++i];
    else if (strcmp(o, "--info") == 0)
      a.info = true;
    else if (strcmp(o, "--dump") == 0)
      a.dump = true;
    else if (strcmp(o, "--minimize") == 0)
      a.minimize = true;
    else if (strcmp(o, "-o") == 0 && has_arg)
      a.out = argv[++i];
    else if (strcmp(o, "--timeout") == 0 && has_arg)
      a.lim.timeout = atof(argv[++i]);
    else if (strcmp(o, "--budget") == 0 && has_arg)
      a.lim.budget = atof(argv[++i]);
    else if (strcmp(o, "--to-corpus") == 0 && has_arg)
      a.corpus = argv[++i];
    else if (strcmp(o, "--perturb") == 0 && has_arg)
      number(a.seed = argv[++i]);
    else if (strcmp(o, "--perturb-search") == 0 && has_arg)
      a.seeds = positive(argv[++i]);
    else if (strcmp(o, "--perturb-from") == 0 && has_arg)
      a.from = number(argv[++i]);
    else if (strcmp(o, "--schedule-log") == 0 && has_arg)
      a.log = argv[++i];
    else if (strcmp(o, "--test-stall") == 0 && has_arg)
      a.stall = number(argv[++i]);
    else if (o[0] != '-' && a.path == NULL)
      a.path = o;
    else
      usage();
  }
  if (a.path == NULL || (a.minimize && a.out == NULL) || a.lim.timeout <= 0 || a.lim.budget <= 0 ||
      ((a.log != NULL || a.stall != UINT64_MAX) && a.seed == NULL) ||
      (a.seeds > 0 && (a.seed != NULL || a.minimize)))
    usage();
  a.lim.seed = a.seed;
  return a;
}

int main(int argc, char **argv) {
  args_t a = parse(argc, argv);
  trace_t t;
  if (!trace_load(a.path, &t)) /* before any search: a bad file is no failing seed */
    return 2;
  if (a.seeds > 0)
    return replay_search(a.path, a.from, a.seeds, a.lim.timeout);
  trace_resolve(&t);
  if (a.info || a.dump) {
    if (a.info)
      info(&t);
    if (a.dump)
      dump(&t);
    return 0;
  }
  if (a.corpus != NULL)
    return replay_to_corpus(&t, a.corpus);
  if (a.minimize)
    return replay_minimize(&t, a.path, a.out, &a.lim);
  notes(&t);
  int rc = a.seed == NULL ? replay_run(&t, a.stats)
                          : replay_perturbed(&t, number(a.seed), a.log, a.stats,
                                             a.stall < t.n ? (size_t)a.stall : t.n);
  if (rc == 0)
    fprintf(stderr, "hakmem-replay: %zu calls of %u threads replayed clean%s%s\n", t.n, t.threads,
            a.seed ? " under seed " : "", a.seed ? a.seed : "");
  return rc;
}
