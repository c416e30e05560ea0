/* Trace files: reading (chunks merged by sequence number), address resolution, writing.
 *
 * Resolution turns addresses into block ids, in the global order: an allocation that returns
 * p starts a new id and makes it p's latest; a free of p names p's latest id. A free of an id
 * already freed is a double free and stays one. A free of an address no call of the trace
 * returned (allocated before tracing started, as a forked child's inherited blocks, or never
 * an allocation) is counted and dropped. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replay.h"

static const char *const op_names[HAK_TR_OP_COUNT] = {
    [HAK_TR_END] = "end",
    [HAK_TR_MALLOC] = "malloc",
    [HAK_TR_CALLOC] = "calloc",
    [HAK_TR_REALLOC] = "realloc",
    [HAK_TR_FREE] = "free",
    [HAK_TR_MEMALIGN] = "memalign",
    [HAK_TR_ALIGNED_ALLOC] = "aligned_alloc",
    [HAK_TR_POSIX_MEMALIGN] = "posix_memalign",
    [HAK_TR_VALLOC] = "valloc",
    [HAK_TR_PVALLOC] = "pvalloc",
    [HAK_TR_TRIM] = "trim",
    [HAK_TR_THREAD_EXIT] = "thread_exit",
};

const char *trace_op_name(unsigned op) { return op < HAK_TR_OP_COUNT ? op_names[op] : "?"; }

bool trace_op_allocates(unsigned op) {
  return op != HAK_TR_FREE && op != HAK_TR_TRIM && op != HAK_TR_THREAD_EXIT && op != HAK_TR_END &&
         op < HAK_TR_OP_COUNT;
}

/* ---- reading ----------------------------------------------------------------------------- */

static bool check_header(const char *path, const hak_trace_file_t *h, size_t len) {
  const char *why = NULL;
  if (len < HAK_TRACE_HDR_SIZE || h->magic != HAK_TRACE_MAGIC)
    why = "not a hakmem trace";
  else if (h->version != HAK_TRACE_VERSION)
    why = "unsupported trace version";
  else if (h->record_size != sizeof(hak_trace_rec_t) || h->chunk_size < 2 * h->record_size ||
           h->chunk_size % h->record_size != 0 || h->header_size < sizeof *h)
    why = "bad record or chunk size in the header";
  if (why != NULL)
    fprintf(stderr, "hakmem-replay: %s: %s\n", path, why);
  return why == NULL;
}

static void push(trace_t *t, size_t *cap, const hak_trace_rec_t *r, uint32_t thread) {
  if (t->n == *cap) {
    *cap = *cap ? *cap * 2 : 4096;
    t->ops = realloc(t->ops, *cap * sizeof *t->ops);
    if (t->ops == NULL) {
      fprintf(stderr, "hakmem-replay: out of memory\n");
      exit(2);
    }
  }
  t->ops[t->n++] = (rop_t){.seq = r->seq_op >> HAK_TRACE_SEQ_SHIFT,
                           .op = (uint8_t)(r->seq_op & 0xFF),
                           .ptr = r->ptr,
                           .size = r->size,
                           .aux = r->aux,
                           .thread = thread,
                           .id = -1,
                           .old = -1};
  if (thread > t->threads)
    t->threads = thread;
}

/* Appends the records of the chunk at c (chunk_size bytes). */
static void read_chunk(trace_t *t, size_t *cap, const uint8_t *c, size_t chunk_size) {
  const hak_trace_chunk_t *h = (const hak_trace_chunk_t *)c;
  if (h->magic != HAK_TRACE_CHUNK_MAGIC || h->thread == 0)
    return; /* never started */
  const hak_trace_rec_t *r = (const hak_trace_rec_t *)(h + 1);
  const hak_trace_rec_t *end = (const hak_trace_rec_t *)(c + chunk_size);
  for (; r < end && (r->seq_op & 0xFF) != HAK_TR_END; r++) {
    if ((r->seq_op & 0xFF) >= HAK_TR_OP_COUNT)
      break; /* torn or foreign data: stop here */
    push(t, cap, r, h->thread);
  }
}

static int by_seq(const void *a, const void *b) {
  const rop_t *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

bool trace_load(const char *path, trace_t *t) {
  memset(t, 0, sizeof *t);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror(path);
    return false;
  }
  size_t len = (size_t)st.st_size;
  const uint8_t *m = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (m == MAP_FAILED) {
    fprintf(stderr, "hakmem-replay: %s: empty or unreadable\n", path);
    return false;
  }
  memcpy(&t->hdr, m, sizeof t->hdr < len ? sizeof t->hdr : len);
  bool ok = check_header(path, &t->hdr, len);
  size_t cap = 0;
  for (size_t off = t->hdr.header_size; ok && off + t->hdr.chunk_size <= len;
       off += t->hdr.chunk_size)
    read_chunk(t, &cap, m + off, t->hdr.chunk_size);
  munmap((void *)m, len);
  if (ok)
    qsort(t->ops, t->n, sizeof *t->ops, by_seq);
  return ok;
}

/* ---- resolution -------------------------------------------------------------------------- */

/* Address -> latest id, open addressing. */
typedef struct addr_map_s {
  uint64_t *key;
  int64_t *val;
  size_t mask;
} addr_map_t;

static size_t slot_of(const addr_map_t *m, uint64_t a) {
  size_t i = (size_t)((a >> 4) * 0x9e3779b97f4a7c15ull >> 20) & m->mask;
  while (m->key[i] != 0 && m->key[i] != a)
    i = (i + 1) & m->mask;
  return i;
}

static int64_t map_get(const addr_map_t *m, uint64_t a) {
  size_t i = slot_of(m, a);
  return m->key[i] == a ? m->val[i] : -1;
}

static void map_put(addr_map_t *m, uint64_t a, int64_t id) {
  size_t i = slot_of(m, a);
  m->key[i] = a;
  m->val[i] = id;
}

static void map_init(addr_map_t *m, size_t n) {
  size_t cap = 64;
  while (cap < 2 * n + 2)
    cap *= 2;
  m->key = calloc(cap, sizeof *m->key);
  m->val = calloc(cap, sizeof *m->val);
  m->mask = cap - 1;
  if (m->key == NULL || m->val == NULL) {
    fprintf(stderr, "hakmem-replay: out of memory\n");
    exit(2);
  }
}

/* Resolves one op; false when it is dropped. freed[id] says the block was freed already. */
static bool resolve_one(trace_t *t, rop_t *o, addr_map_t *m, uint8_t *freed) {
  if (o->op == HAK_TR_FREE) {
    o->old = map_get(m, o->ptr);
    if (o->old < 0) {
      t->foreign++;
      return false;
    }
    o->twice = freed[o->old];
    freed[o->old] = 1;
    return true;
  }
  if (o->op == HAK_TR_REALLOC && o->aux != 0) {
    o->old = map_get(m, o->aux);
    if (o->old < 0 || freed[o->old]) {
      t->foreign_realloc++; /* replayed as realloc(NULL, size) */
      o->old = -1;
    } else if (o->ptr != 0 || o->size == 0) {
      freed[o->old] = 1; /* moved or freed; a failed realloc leaves it alone */
    }
  }
  if (trace_op_allocates(o->op) && o->ptr != 0) {
    o->id = t->blocks++;
    freed[o->id] = 0;
    map_put(m, o->ptr, o->id);
  }
  return true;
}

/* A thread exit followed by more calls of the same thread (from later key destructors) is
 * dropped: the replay thread exits after its last call instead. */
static void drop_late_exits(trace_t *t) {
  size_t *last = calloc((size_t)t->threads + 1, sizeof *last);
  if (last == NULL)
    exit(2);
  for (size_t i = 0; i < t->n; i++)
    last[t->ops[i].thread] = i;
  size_t k = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (t->ops[i].op == HAK_TR_THREAD_EXIT && last[t->ops[i].thread] != i) {
      t->late_exits++;
      continue;
    }
    t->ops[k++] = t->ops[i];
  }
  t->n = k;
  free(last);
}

void trace_resolve(trace_t *t) {
  addr_map_t m;
  map_init(&m, t->n);
  uint8_t *freed = calloc(t->n + 1, 1);
  if (freed == NULL)
    exit(2);
  size_t k = 0;
  for (size_t i = 0; i < t->n; i++) {
    rop_t o = t->ops[i];
    if (resolve_one(t, &o, &m, freed))
      t->ops[k++] = o;
  }
  t->n = k;
  free(freed);
  free(m.key);
  free(m.val);
  drop_late_exits(t);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Addresses of the written trace: one per id, so resolution gives back the same ids. */
static uint64_t synth(int64_t id) { return id < 0 ? 0 : 0x100000 + (uint64_t)id * 16; }

static hak_trace_rec_t record_of(const rop_t *o, uint64_t seq) {
  hak_trace_rec_t r = {
      .seq_op = seq << HAK_TRACE_SEQ_SHIFT | o->op, .size = o->size, .aux = o->aux};
  if (o->op == HAK_TR_FREE)
    r.ptr = synth(o->old);
  else
    r.ptr = synth(o->id);
  if (o->op == HAK_TR_REALLOC)
    r.aux = synth(o->old);
  return r;
}

/* Writes the kept ops of one thread as whole chunks at the end of f. */
static bool write_thread(FILE *f, const trace_t *t, const bool *keep, uint32_t thread) {
  size_t per = HAK_TRACE_CHUNK / sizeof(hak_trace_rec_t) - 1;
  hak_trace_rec_t *chunk = calloc(per + 1, sizeof *chunk);
  if (chunk == NULL)
    return false;
  hak_trace_chunk_t h = {.magic = HAK_TRACE_CHUNK_MAGIC, .thread = thread, .pid = t->hdr.pid};
  size_t used = 0;
  bool ok = true;
  for (size_t i = 0; i <= t->n && ok; i++) {
    bool last = i == t->n;
    if (!last && (!keep[i] || t->ops[i].thread != thread))
      continue;
    if (!last)
      chunk[1 + used++] = record_of(&t->ops[i], i);
    if (used == per || (last && used > 0)) {
      memcpy(&chunk[0], &h, sizeof h);
      ok = fwrite(chunk, sizeof *chunk, per + 1, f) == per + 1;
      memset(chunk, 0, (per + 1) * sizeof *chunk);
      used = 0;
    }
  }
  free(chunk);
  return ok;
}

bool trace_write(const char *path, const trace_t *t, const bool *keep) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    perror(path);
    return false;
  }
  uint8_t page[HAK_TRACE_HDR_SIZE] = {0};
  hak_trace_file_t h = t->hdr;
  h.header_size = HAK_TRACE_HDR_SIZE;
  h.chunk_size = HAK_TRACE_CHUNK;
  memcpy(page, &h, sizeof h);
  bool ok = fwrite(page, 1, sizeof page, f) == sizeof page;
  for (uint32_t th = 1; th <= t->threads && ok; th++)
    ok = write_thread(f, t, keep, th);
  if (fclose(f) != 0)
    ok = false;
  if (!ok)
    fprintf(stderr, "hakmem-replay: cannot write %s\n", path);
  return ok;
}
