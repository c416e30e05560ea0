/* hakmem-replay: command line.
 *
 *   hakmem-replay [--stats FILE|-] TRACE      replay; exit 0 when clean
 *   hakmem-replay --info TRACE                counts of the trace
 *   hakmem-replay --dump TRACE                one line per call, in order
 *   hakmem-replay --minimize -o OUT [--timeout S] [--budget S] TRACE
 *   hakmem-replay --to-corpus OUT TRACE       an alloc_ops fuzz input */
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
  fprintf(stderr, "usage: hakmem-replay [--stats FILE|-] TRACE\n"
                  "       hakmem-replay --info TRACE | --dump TRACE\n"
                  "       hakmem-replay --minimize -o OUT [--timeout SECONDS] [--budget SECONDS] TRACE\n"
                  "       hakmem-replay --to-corpus OUT TRACE\n");
  exit(2);
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

int main(int argc, char **argv) {
  const char *stats = NULL, *out = NULL, *corpus = NULL, *path = NULL;
  bool want_info = false, want_dump = false, minimize = false;
  double timeout = 10, budget = 600;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_arg = i + 1 < argc;
    if (strcmp(a, "--stats") == 0 && has_arg)
      stats = argv[++i];
    else if (strcmp(a, "--info") == 0)
      want_info = true;
    else if (strcmp(a, "--dump") == 0)
      want_dump = true;
    else if (strcmp(a, "--minimize") == 0)
      minimize = true;
    else if (strcmp(a, "-o") == 0 && has_arg)
      out = argv[++i];
    else if (strcmp(a, "--timeout") == 0 && has_arg)
      timeout = atof(argv[++i]);
    else if (strcmp(a, "--budget") == 0 && has_arg)
      budget = atof(argv[++i]);
    else if (strcmp(a, "--to-corpus") == 0 && has_arg)
      corpus = argv[++i];
    else if (a[0] != '-' && path == NULL)
      path = a;
    else
      usage();
  }
  if (path == NULL || (minimize && out == NULL) || timeout <= 0 || budget <= 0)
    usage();
  trace_t t;
  if (!trace_load(path, &t))
    return 2;
  trace_resolve(&t);
  if (want_info || want_dump) {
    if (want_info)
      info(&t);
    if (want_dump)
      dump(&t);
    return 0;
  }
  if (corpus != NULL)
    return replay_to_corpus(&t, corpus);
  if (minimize)
    return replay_minimize(&t, path, out, timeout, budget);
  notes(&t);
  int rc = replay_run(&t, stats);
  if (rc == 0)
    fprintf(stderr, "hakmem-replay: %zu calls of %u threads replayed clean\n", t.n, t.threads);
  return rc;
}
