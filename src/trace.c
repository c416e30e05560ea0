/* Allocation traces: HAKMEM_TRACE=PATH records every public allocator call of the process.
 *
 * Responsibility: append one fixed-size record per call (operation, pointer, size, alignment
 * or old pointer, global sequence number) to a file that hakmem-replay reads. The format is in
 * types.h (hak_trace_file_t, hak_trace_chunk_t, hak_trace_rec_t).
 *
 * Boundary: the public entry points (api.c, override.c) call hak_trace_record when
 * hak_tracing(); init.c calls hak_trace_open, hak_trace_thread_exit and hak_trace_fork_child.
 * Nothing here calls back into the allocator.
 *
 * How: the file is mapped MAP_SHARED, chunk by chunk, and records are stored straight into the
 * mapping, so a process killed by a signal leaves every record it stored in the page cache and
 * thus in the file: no flush, no buffer to lose. Each thread owns one chunk at a time, taken
 * with one atomic add on the file offset; growing the file takes a lock, once per 16 chunks.
 *
 * Invariants:
 *  - no allocation, no stdio, no public entry point: the recorder cannot recurse into malloc;
 *  - a record's seq_op is stored last: a reader sees a record whole or not at all;
 *  - sequence numbers are unique and give the global order: an allocation takes its number
 *    after the call returns, a free before the call (so free(p) orders before any allocation
 *    that returns p again, and a free that aborts inside hakmem is already recorded); a
 *    realloc that frees its old block takes its number after its allocation and before that
 *    free (api.c: realloc_impl);
 *  - a chunk is written by the one thread that took it, the file header by hak_trace_open;
 *  - where PATH names the trace of a live process other than this one (an exec'ed child
 *    inherits HAKMEM_TRACE), this process writes PATH.<pid> instead; a forked child always
 *    switches to PATH.<pid>.
 * If the file cannot be opened or grown, one warning line is printed and the process runs on
 * untraced (or stops recording). */
#include <string.h>

#include "internal.h"

_Atomic(bool) hak_trace_on = true;
_Atomic(size_t) hak_gate_size;    /* 0 while hak_trace_on: see internal.h */
_Atomic(uintptr_t) hak_gate_addr;

/* Raises or lowers the trace flag, shutting or opening the entry points' gates with it. */
static void set_tracing(bool on) {
  atomic_store(&hak_trace_on, on);
  atomic_store(&hak_gate_size, on ? 0 : HAK_TINY_MAX + HAK_HDR_SIZE + 1);
  atomic_store(&hak_gate_addr, on ? 0 : (uintptr_t)1 << HAK_ADDR_BITS);
}

static _Atomic(int) trace_fd = -1;      /* -1: not recording                          */
static _Atomic(uint64_t) trace_seq;     /* next sequence number                       */
static _Atomic(uint64_t) trace_off;     /* file offset of the next chunk to take      */
static _Atomic(uint64_t) trace_size;    /* file length; grows under trace_lock        */
static _Atomic(uint32_t) trace_threads; /* thread numbers handed out                  */
static hak_lock_t trace_lock;
static int trace_pid;

#define GROW_CHUNKS 16 /* chunks added to the file per ftruncate */

/* Per thread: the free record slots of its current chunk. */
typedef struct trace_tls_s {
  hak_trace_rec_t *next, *end; /* [next, end) unused; NULL when no chunk is mapped          */
  uint32_t thread;             /* 0 until the thread's first record                          */
} trace_tls_t;

static __thread trace_tls_t trace_tls __attribute__((tls_model("initial-exec")));

/* ---- warnings --------------------------------------------------------------------------- */

static void warn(const char *what, const char *path) {
  char buf[HAK_PATH_MAX + 128];
  hak_buf_t b = {buf, buf + sizeof(buf) - 1};
  hak_buf_str(&b, "hakmem: warning: HAKMEM_TRACE: ");
  hak_buf_str(&b, what);
  hak_buf_str(&b, ": ");
  hak_buf_str(&b, path);
  hak_buf_str(&b, "\n");
  hak_write_err(buf, (size_t)(b.p - buf));
}

static void stop(const char *what) {
  int fd = atomic_exchange(&trace_fd, -1);
  if (fd >= 0)
    warn(what, hak_opt.trace_path);
}

/* ---- the file --------------------------------------------------------------------------- */

/* PATH.<pid> */
static void pid_path(char *out, size_t size, int pid) {
  hak_buf_t b = {out, out + size - 1};
  hak_buf_str(&b, hak_opt.trace_path);
  hak_buf_str(&b, ".");
  hak_buf_u64(&b, (uint64_t)pid);
  *b.p = '\0';
}

/* True when path holds the trace of a live process other than ours... or of our own pid: an
 * exec'ed program keeps its pid, and must not overwrite what it recorded before the exec. */
static bool owned_by_live_process(const char *path) {
  int fd = hak_os_open(path, false);
  if (fd < 0)
    return false;
  hak_trace_file_t h;
  bool live =
      hak_os_pread(fd, &h, sizeof h, 0) && h.magic == HAK_TRACE_MAGIC && hak_os_alive((int)h.pid);
  hak_os_close(fd);
  return live;
}

static uint32_t build_config(void) {
  return (HAKMEM_TINY_HEADERLESS ? HAK_TRACE_CFG_HEADERLESS : 0) |
         (HAK_HINT_COMPILED ? HAK_TRACE_CFG_HINT : 0) |
         (HAKMEM_CHECKED ? HAK_TRACE_CFG_CHECKED : 0);
}

/* Creates (or empties) path and writes its header; returns the descriptor, or -1. */
static int create_file(const char *path) {
  int fd = hak_os_open(path, true);
  if (fd < 0)
    return -1;
  uint64_t size = HAK_TRACE_HDR_SIZE + GROW_CHUNKS * HAK_TRACE_CHUNK;
  hak_trace_file_t *h = NULL;
  if (hak_os_truncate(fd, size))
    h = hak_os_map_file(fd, 0, HAK_TRACE_HDR_SIZE);
  if (h == NULL) {
    hak_os_close(fd);
    return -1;
  }
  *h = (hak_trace_file_t){.magic = HAK_TRACE_MAGIC,
                          .version = HAK_TRACE_VERSION,
                          .pid = (uint32_t)trace_pid,
                          .record_size = sizeof(hak_trace_rec_t),
                          .chunk_size = HAK_TRACE_CHUNK,
                          .header_size = HAK_TRACE_HDR_SIZE,
                          .config = build_config()};
  hak_os_unmap_file(h, HAK_TRACE_HDR_SIZE);
  atomic_store(&trace_off, HAK_TRACE_HDR_SIZE);
  atomic_store(&trace_size, size);
  return fd;
}

/* Starts recording into path (or PATH.<pid> when fork_child or when path is taken). */
static void start(bool fork_child) {
  char alt[HAK_PATH_MAX + 24];
  const char *path = hak_opt.trace_path;
  trace_pid = hak_os_getpid();
  if (fork_child || owned_by_live_process(path)) {
    pid_path(alt, sizeof alt, trace_pid);
    path = alt;
  }
  int fd = create_file(path);
  if (fd < 0)
    warn("cannot create the trace file, running untraced", path);
  atomic_store(&trace_fd, fd);
  set_tracing(fd >= 0);
}

void hak_trace_open(void) {
  if (hak_opt.trace_path[0] == '\0') {
    set_tracing(false);
    return;
  }
  start(false);
}

/* The file covers [0, need): grows it when another chunk lies past its end. */
static bool file_cover(int fd, uint64_t need) {
  if (atomic_load_explicit(&trace_size, memory_order_acquire) >= need)
    return true;
  hak_lock(&trace_lock);
  bool ok = true;
  uint64_t size = atomic_load_explicit(&trace_size, hak_relaxed);
  if (size < need) {
    size = need + GROW_CHUNKS * HAK_TRACE_CHUNK;
    ok = hak_os_truncate(fd, size);
    if (ok)
      atomic_store_explicit(&trace_size, size, memory_order_release);
  }
  hak_unlock(&trace_lock);
  return ok;
}

static void chunk_drop(trace_tls_t *t) {
  if (t->end != NULL)
    hak_os_unmap_file((uint8_t *)t->end - HAK_TRACE_CHUNK, HAK_TRACE_CHUNK);
  t->next = t->end = NULL;
}

/* Maps a fresh chunk for this thread. False when recording has stopped or cannot go on. */
static hak_cold bool chunk_take(trace_tls_t *t) {
  chunk_drop(t);
  int fd = atomic_load(&trace_fd);
  if (fd < 0)
    return false;
  if (t->thread == 0)
    t->thread = atomic_fetch_add(&trace_threads, 1) + 1;
  uint64_t off = atomic_fetch_add(&trace_off, HAK_TRACE_CHUNK);
  hak_trace_chunk_t *c = NULL;
  if (file_cover(fd, off + HAK_TRACE_CHUNK))
    c = hak_os_map_file(fd, off, HAK_TRACE_CHUNK);
  if (c == NULL) {
    stop("cannot grow or map the trace file, recording stopped");
    return false;
  }
  c->thread = t->thread;
  c->pid = (uint32_t)trace_pid;
  atomic_store_explicit((_Atomic(uint64_t) *)&c->magic, HAK_TRACE_CHUNK_MAGIC,
                        memory_order_release);
  t->next = (hak_trace_rec_t *)(c + 1);
  t->end = (hak_trace_rec_t *)((uint8_t *)c + HAK_TRACE_CHUNK);
  return true;
}

/* ---- recording -------------------------------------------------------------------------- */

void hak_trace_record(enum hak_trace_op op, const void *ptr, uint64_t size, uint64_t aux) {
  /* Before the process is initialised, initialise it: the trace opens there. */
  hak_process_init();
  if (atomic_load_explicit(&trace_fd, hak_relaxed) < 0)
    return;
  trace_tls_t *t = &trace_tls;
  if (hak_unlikely(t->next == t->end) && !chunk_take(t))
    return;
  hak_trace_rec_t *r = t->next++;
  r->ptr = (uintptr_t)ptr;
  r->size = size;
  r->aux = aux;
  uint64_t seq = atomic_fetch_add_explicit(&trace_seq, 1, hak_relaxed);
  atomic_store_explicit((_Atomic(uint64_t) *)&r->seq_op, seq << HAK_TRACE_SEQ_SHIFT | op,
                        memory_order_release);
}

/* The exit's place in the order is where the replay's thread exits too (orphaning its slabs).
 * The chunk is unmapped; a call from a later key destructor of this thread maps a new one. */
void hak_trace_thread_exit(void) {
  hak_trace_record(HAK_TR_THREAD_EXIT, NULL, 0, 0);
  chunk_drop(&trace_tls);
}

/* Only the forking thread lives on in the child. Its chunk belongs to the parent's file: drop
 * it (the mapping is the child's copy; the parent's records stay), renumber, and record into a
 * fresh PATH.<pid>. Chunks other threads had mapped stay mapped, unused. */
void hak_trace_fork_child(void) {
  int fd = atomic_exchange(&trace_fd, -1);
  if (fd < 0)
    return;
  hak_os_close(fd);
  chunk_drop(&trace_tls);
  trace_tls.thread = 0;
  atomic_store(&trace_threads, 0);
  atomic_store(&trace_seq, 0);
  trace_lock = (hak_lock_t){0};
  start(true);
}
