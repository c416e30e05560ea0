/* --to-corpus: writes a trace as an input of the alloc_ops fuzz harness (its format is at the
 * top of fuzz/alloc_ops.c), performing the same calls as closely as that format allows.
 *
 * - The thread of the trace's first call is the harness's main thread; every other recorded
 *   thread is worker (its rank among them) % 3. Allocations of a worker become WORKER_ALLOC
 *   (malloc, calloc, memalign of 32 .. 4096; other alignments stay with main); frees by a
 *   worker become FREE_REMOTE, its exit WORKER_EXIT.
 * - Block id -> slot id % 64; a realloc keeps its block's slot. An allocation into a slot
 *   whose block is still live frees that block first (the harness does so itself), and a later
 *   free of that block is dropped. Double frees are dropped (the harness cannot express one).
 * - Sizes use the harness's encoding: exact up to HAK_TINY_MAX, rounded up to 4 bytes for mid
 *   sizes, to 64 for large ones (at most about 4.4 MiB); alignments above 4 MiB become 4 MiB.
 * - The harness runs at most MAX_OPS (1024) operations of an input: a longer trace is cut. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define SLOTS 64
#define WORKERS 3
#define MAX_OPS 1024

enum {
  C_MALLOC = 0,
  C_CALLOC = 1,
  C_REALLOC = 2,
  C_ALIGNED = 3,
  C_FREE = 4,
  C_FREE_REMOTE = 5,
  C_WORKER_ALLOC = 6,
  C_WORKER_EXIT = 7,
  C_TRIM = 11
};

typedef struct writer_s {
  uint8_t *buf;
  size_t len, cap;
  size_t ops, allocs, frees, remote_frees, dropped;
  int64_t slot_owner[SLOTS]; /* block id in each slot, -1 when empty */
  int *slot_of;              /* per block id */
  int *worker_of;            /* per recorded thread: -1 main, else worker index */
} writer_t;

static void put(writer_t *w, uint8_t b) {
  if (w->len == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 4096;
    w->buf = realloc(w->buf, w->cap);
    if (w->buf == NULL)
      exit(2);
  }
  w->buf[w->len++] = b;
}

/* A size as kind byte + 16-bit value (size_of() of the harness). */
static void put_size(writer_t *w, uint64_t n) {
  uint8_t kind;
  uint64_t v;
  if (n <= HAK_TINY_MAX) {
    kind = 0;
    v = n;
  } else if (n <= HAK_MID_MAX) {
    kind = 1;
    v = (n - HAK_TINY_MAX - 1 + 3) / 4;
    if (v * 4 >= HAK_MID_MAX - HAK_TINY_MAX)
      v--;
  } else {
    kind = 2;
    v = (n - HAK_MID_MAX - 1 + 63) / 64;
    if (v > 0xFFFF)
      v = 0xFFFF;
  }
  put(w, kind);
  put(w, (uint8_t)(v & 0xFF));
  put(w, (uint8_t)(v >> 8));
}

static unsigned log2_ceil(uint64_t a) {
  unsigned l = 0;
  while (l < 63 && ((uint64_t)1 << l) < a)
    l++;
  return l;
}

/* The align byte of the harness (align_of()) for an alignment of a, rounded up to 2^3 .. 2^22. */
static uint8_t align_byte(uint64_t a) {
  unsigned l = log2_ceil(a);
  if (l >= 5 && l <= 12)
    return (uint8_t)(l - 5);
  if (l < 3)
    l = 3;
  if (l > 22)
    l = 22;
  return (uint8_t)(0x80 | (l - 3));
}

/* Takes slot for block id (the harness frees what the slot held). */
static int take_slot(writer_t *w, int64_t id, int slot) {
  w->slot_owner[slot] = id;
  w->slot_of[id] = slot;
  w->allocs++;
  w->ops++;
  return slot;
}

static void alloc_op(writer_t *w, const rop_t *o, int worker) {
  int s = take_slot(w, o->id, (int)(o->id % SLOTS));
  uint64_t size = o->size, align = o->aux;
  uint8_t fn = 0;
  switch (o->op) {
  case HAK_TR_MALLOC:
  case HAK_TR_REALLOC:
    break;
  case HAK_TR_CALLOC:
    size = o->size * o->aux;
    fn = 1;
    break;
  case HAK_TR_VALLOC:
    align = HAK_PAGE_SIZE;
    fn = 2;
    break;
  case HAK_TR_PVALLOC:
    align = HAK_PAGE_SIZE;
    size = size ? (size + HAK_PAGE_SIZE - 1) & ~(uint64_t)(HAK_PAGE_SIZE - 1) : HAK_PAGE_SIZE;
    fn = 2;
    break;
  default:
    fn = 2;
    break; /* the memalign family */
  }
  unsigned l = fn == 2 ? log2_ceil(align) : 0;
  if (worker >= 0 && (fn < 2 || (l >= 5 && l <= 12))) {
    put(w, C_WORKER_ALLOC);
    put(w, (uint8_t)s);
    put(w, (uint8_t)worker);
    put(w, fn < 2 ? fn : (uint8_t)(2 + 3 * (l - 5)));
  } else if (fn == 2) {
    put(w, C_ALIGNED);
    put(w, (uint8_t)s);
    put(w, o->op == HAK_TR_ALIGNED_ALLOC ? 1 : o->op == HAK_TR_POSIX_MEMALIGN ? 2 : 0);
    put(w, align_byte(align));
  } else {
    put(w, fn == 1 ? C_CALLOC : C_MALLOC);
    put(w, (uint8_t)s);
  }
  put_size(w, size);
  if (fn == 1 && worker < 0)
    put(w, 0); /* split 0: calloc(1, size) */
}

/* The slot of a live block id, or -1 when its slot went to another block. */
static int live_slot(const writer_t *w, int64_t id) {
  int s = w->slot_of[id];
  return s >= 0 && w->slot_owner[s] == id ? s : -1;
}

static void free_op(writer_t *w, const rop_t *o, int worker) {
  int s = o->twice ? -1 : live_slot(w, o->old);
  if (s < 0) {
    w->dropped++;
    return;
  }
  w->slot_owner[s] = -1;
  w->ops++;
  put(w, worker < 0 ? C_FREE : C_FREE_REMOTE);
  put(w, (uint8_t)s);
  if (worker >= 0)
    put(w, (uint8_t)worker);
  if (worker >= 0)
    w->remote_frees++;
  else
    w->frees++;
}

static void realloc_op(writer_t *w, const rop_t *o, int worker) {
  int s = o->old >= 0 ? live_slot(w, o->old) : -1;
  if (s < 0) {
    if (o->id >= 0)
      alloc_op(w, o, worker); /* realloc(NULL, n), or of a block gone */
    return;
  }
  if (o->id < 0) {
    if (o->size == 0) { /* realloc(p, 0) frees */
      rop_t f = *o;
      f.op = HAK_TR_FREE;
      free_op(w, &f, worker);
    }
    return;
  }
  take_slot(w, o->id, s);
  put(w, C_REALLOC);
  put(w, (uint8_t)s);
  put_size(w, o->size);
  put(w, 0); /* mode 0: hak_realloc */
}

static void convert(writer_t *w, const rop_t *o) {
  int worker = w->worker_of[o->thread];
  switch (o->op) {
  case HAK_TR_FREE:
    free_op(w, o, worker);
    break;
  case HAK_TR_REALLOC:
    realloc_op(w, o, worker);
    break;
  case HAK_TR_TRIM:
    put(w, C_TRIM);
    w->ops++;
    break;
  case HAK_TR_THREAD_EXIT:
    if (worker >= 0) {
      put(w, C_WORKER_EXIT);
      put(w, (uint8_t)worker);
      w->ops++;
    }
    break;
  default:
    if (o->id >= 0)
      alloc_op(w, o, worker);
    break;
  }
}

static void assign_workers(writer_t *w, const trace_t *t) {
  w->worker_of = malloc(((size_t)t->threads + 1) * sizeof *w->worker_of);
  if (w->worker_of == NULL)
    exit(2);
  for (uint32_t i = 0; i <= t->threads; i++)
    w->worker_of[i] = -2;
  int rank = 0;
  for (size_t i = 0; i < t->n; i++) {
    int *wk = &w->worker_of[t->ops[i].thread];
    if (*wk == -2)
      *wk = i == 0 ? -1 : rank++ % WORKERS;
  }
}

int replay_to_corpus(const trace_t *t, const char *out) {
  writer_t w = {0};
  memset(w.slot_owner, 0xFF, sizeof w.slot_owner);
  w.slot_of = malloc(((size_t)t->blocks + 1) * sizeof *w.slot_of);
  if (w.slot_of == NULL)
    return 2;
  memset(w.slot_of, 0xFF, ((size_t)t->blocks + 1) * sizeof *w.slot_of);
  assign_workers(&w, t);
  size_t i = 0;
  for (; i < t->n && w.ops < MAX_OPS; i++)
    convert(&w, &t->ops[i]);
  FILE *f = fopen(out, "wb");
  if (f == NULL || fwrite(w.buf, 1, w.len, f) != w.len || fclose(f) != 0) {
    fprintf(stderr, "hakmem-replay: cannot write %s\n", out);
    return 2;
  }
  printf("hakmem-replay: %s: %zu alloc_ops operations (%zu allocations, %zu frees, %zu remote "
         "frees) from %zu of %zu calls; %zu frees dropped\n",
         out, w.ops, w.allocs, w.frees, w.remote_frees, i, t->n, w.dropped);
  if (i < t->n)
    printf("hakmem-replay: the trace is cut after %zu calls (alloc_ops runs %d operations)\n", i,
           MAX_OPS);
  free(w.buf);
  free(w.slot_of);
  free(w.worker_of);
  return 0;
}
