/* hakmem-replay: reads an allocation trace (HAKMEM_TRACE, format in src/types.h), replays it
 * against this build's hakmem, shrinks a failing one, converts one into an alloc_ops input.
 *
 * The tool links hakmem_core (no malloc override): its own allocations, stdio's and pthread's go
 * to libc, so hakmem sees exactly the calls of the trace and its counters are the trace's. */
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

/* run.c: replays t; returns 0 when clean (corruption exits 1; hakmem aborts as it would). */
int replay_run(const trace_t *t, const char *stats_path);

/* minimize.c */
/* budget: seconds the whole minimization may take; past it the smallest failing trace found
 * so far is written. */
int replay_minimize(const trace_t *t, const char *trace_path, const char *out, double timeout,
                    double budget);

/* corpus.c */
int replay_to_corpus(const trace_t *t, const char *out);

#endif /* HAKMEM_REPLAY_H */
