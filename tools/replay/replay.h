/* hakmem-replay: reads an allocation trace (HAKMEM_TRACE, format in src/types.h), replays it
 * against this build's hakmem in the recorded order or under a perturbed schedule, searches
 * seeds for a failing schedule, shrinks a failing trace, converts one into an alloc_ops input.
 *
 * The tool links hakmem_sched (hakmem_core with the schedule points on, no malloc override):
 * its own allocations, stdio's and pthread's go to libc, so hakmem sees exactly the calls of
 * the trace and its counters are the trace's. The schedule hook stays NULL unless perturbing. */
#ifndef HAKMEM_REPLAY_H
#define HAKMEM_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* One call of the trace, resolved: addresses are replaced by block ids. A block id names one
 * allocation (one successful call); each free names the block it frees. */
typedef struct rop_s {
  uint64_t seq;    /* global order                                                         */
  uint64_t ptr;    /* as recorded: the result, or the pointer freed                        */
  uint64_t size;   /* as recorded                                                          */
  uint64_t aux;    /* as recorded: alignment, element size, realloc's old pointer          */
  uint32_t thread; /* recorded thread number                                               */
  uint8_t op;      /* enum hak_trace_op                                                    */
  bool twice;      /* FREE of a block already freed: a double free, replayed as one        */
  int64_t id;      /* block this call creates, or -1                                       */
  int64_t old;     /* block this call frees (FREE, REALLOC), or -1                         */
} rop_t;

typedef struct trace_s {
  hak_trace_file_t hdr;
  rop_t *ops;
  size_t n;
  int64_t blocks;         /* ids are 0 .. blocks - 1                                          */
  uint32_t threads;       /* largest thread number                                            */
  size_t foreign;         /* frees of pointers no call of the trace returned (skipped)        */
  size_t foreign_realloc; /* reallocs of such pointers (replayed as allocations)            */
  size_t late_exits;      /* thread exits followed by more calls of the thread (dropped)      */
} trace_t;

/* trace_file.c */
bool trace_load(const char *path, trace_t *t); /* prints why on failure */
/* Resolves addresses of ops[0 .. n) (recorded order) into ids; fills id, old, twice, and
 * drops skipped calls. */
void trace_resolve(trace_t *t);
/* Writes the ops keep[i] of t as a trace file (addresses synthesised from the ids). */
bool trace_write(const char *path, const trace_t *t, const bool *keep);
const char *trace_op_name(unsigned op);
bool trace_op_allocates(unsigned op); /* the call returns a new block */

/* run.c: replays t in the recorded order; returns 0 when clean (corruption exits 1; hakmem
 * aborts as it would). */
int replay_run(const trace_t *t, const char *stats_path);
/* For either driver: sets up t's blocks; returns the first call of each recorded thread
 * (tr->n: none), or NULL when out of memory. */
const size_t *replay_prepare(const trace_t *t);
void replay_call(size_t i);        /* performs call i with its block checks */
size_t replay_next_call(size_t i); /* the next call of call i's thread, or t->n */
void replay_write_stats(const char *path);

/* perturb.c: replays t under the schedule seed chooses; log_path (or NULL) receives one line per
 * decision. stall_call (tests of the watchdog; t->n: none): the thread about to run that call
 * blocks until the schedule is let loose. Returns 0 when clean, as replay_run. */
int replay_perturbed(const trace_t *t, uint64_t seed, const char *log_path,
                     const char *stats_path, size_t stall_call);

/* child.c: one replay of a trace file by this program, as a child */
typedef struct outcome_s {
  int status;     /* wait status; -1: killed at the time limit (a hang)                      */
  char what[128]; /* text between "hakmem: " and the next ':' of its first such line, or "" */
} outcome_t;
/* seed: the --perturb argument, or NULL for the recorded order. err[size] receives the child's
 * stderr (truncated). */
outcome_t child_replay(const char *path, const char *seed, double timeout, char *err,
                       size_t size);
bool outcome_clean(const outcome_t *o);
/* got ends as want does (want failed): same signal or exit status, same diagnostic if any. */
bool outcome_same(const outcome_t *want, const outcome_t *got);
/* pass, crash (SIGxxx), hang, fail (exit N): the words of hakmem-triage */
const char *outcome_name(const outcome_t *o, char *buf, size_t size);
double replay_now(void); /* seconds, monotonic */

typedef struct replay_limits_s {
  double timeout;   /* seconds one child replay may take before it counts as a hang          */
  double budget;    /* seconds the whole minimization may take                               */
  const char *seed; /* --perturb SEED for every child, or NULL                               */
} replay_limits_t;

/* search.c: replays path under seeds from .. from + count - 1, each in a child; stops at the
 * first that fails. Returns 1 when one fails, 0 when all pass. */
int replay_search(const char *path, uint64_t from, uint64_t count, double timeout);

/* minimize.c: past the budget the smallest failing trace found so far is written. */
int replay_minimize(const trace_t *t, const char *trace_path, const char *out,
                    const replay_limits_t *lim);

/* corpus.c */
int replay_to_corpus(const trace_t *t, const char *out);

#endif /* HAKMEM_REPLAY_H */
