/* Internal prototypes, grouped by the file that defines them. Arrows point down: api ->
 * fast paths -> boxes -> os. */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"
#include "sizeclass.h"

/* Everything declared below is internal to the library: hidden, so that the compiler reaches
 * its globals directly instead of through the GOT (one instruction, not two, on the fast path).
 * -fvisibility=hidden hides the definitions only; declarations need the pragma. */
#pragma GCC visibility push(hidden)

#define hak_likely(x) __builtin_expect(!!(x), 1)
#define hak_unlikely(x) __builtin_expect(!!(x), 0)
#define hak_noinline __attribute__((noinline))
#define hak_cold __attribute__((noinline, cold))
#define hak_api __attribute__((visibility("default")))
#define hak_relaxed memory_order_relaxed

/* Counters written by one thread and read by others (relaxed loads), never an atomic
 * read-modify-write (no lock prefix on the fast path). On x86-64 the writer adds to memory in
 * one instruction: an aligned quadword store is single-copy atomic there, so a reader sees the
 * old or the new value, as with a relaxed store. TSan builds (and other targets) use a relaxed
 * load and store, which TSan understands. */
#if defined(__x86_64__) && !HAKMEM_TSAN
#define hak_stat_add(field, n) \
  __asm__ volatile("addq %1, %0" : "+m"(*(uint64_t *)&(field)) : "er"((uint64_t)(n)))
#else
#define hak_stat_add(field, n) \
  atomic_store_explicit(&(field), atomic_load_explicit(&(field), hak_relaxed) + (n), hak_relaxed)
#endif
#define hak_stat_inc(field) hak_stat_add(field, 1)

/* Compares with an atomic word read relaxed, for the fast paths: a < *w (unsigned) and *w != a.
 * GCC never folds an atomic load into another instruction, so a load and a compare would be two
 * instructions where one compare with a memory operand does: an aligned quadword read is
 * single-copy atomic on x86-64, as a relaxed load is. TSan builds (and other targets) load
 * with atomic_load_explicit, which TSan understands. */
#if defined(__x86_64__) && !HAKMEM_TSAN
/* The flags of *w - a, tested for condition cc (x86 condition-code suffix). */
#define hak_word_cc_(cc, w, a)                                                        \
  __extension__({                                                                    \
    _Static_assert(sizeof(*(w)) == 8, "a quadword");                                 \
    bool cc_;                                                                        \
    __asm__("cmpq %1, %2" : "=@cc" cc(cc_) : "r"((uint64_t)(a)), "m"(*(w)));          \
    cc_;                                                                             \
  })
#define hak_below_word(a, w) hak_word_cc_("a", (w), (a)) /* *w above a */
#define hak_word_ne(w, a) hak_word_cc_("ne", (w), (a))
#else
#define hak_below_word(a, w) ((uint64_t)(a) < (uint64_t)atomic_load_explicit((w), hak_relaxed))
#define hak_word_ne(w, a) ((uint64_t)atomic_load_explicit((w), hak_relaxed) != (uint64_t)(a))
#endif

/* ---- debug.c: fail-fast, asserts, debug ring, formatting without libc ------------------- */

/* Prints `hakmem: <what>: ptr=0x... ss=0x... class=N`, dumps the debug ring, aborts. */
__attribute__((noreturn, cold)) void hak_fail(const char *what, const void *ptr,
                                               const void *ss, int cls);
__attribute__((noreturn, cold)) void hak_fail_assert(const char *expr, const char *file,
                                                      int line);
void hak_ring_event(const char *what, const void *a, uintptr_t b);
void hak_ring_dump(void);
/* One-shot log (HAKMEM_DEBUG_HDRLESS builds): prints once per site, counts the rest. */
void hak_log_once(_Atomic(int) *site, const char *tag, const void *ptr, const void *ss,
                  uint64_t a, uint64_t b);
/* The sites that fired so far (at most max): tag and how often each was reached. */
#define HAK_LOG_SITES_MAX 32
int hak_log_sites(const char **tags, uint64_t *counts, int max);
/* `hakmem: warning: <why>: <what>` on stderr. */
void hak_warn(const char *why, const char *what);
/* Minimal formatted output into a stack buffer, then write(2). No allocation, no stdio. */
typedef struct hak_buf_s {
  char *p, *end;
} hak_buf_t;
void hak_buf_str(hak_buf_t *b, const char *s);
void hak_buf_u64(hak_buf_t *b, uint64_t v);
void hak_buf_hex(hak_buf_t *b, uint64_t v);
void hak_buf_pad(hak_buf_t *b, const char *start, size_t width);
void hak_write_err(const char *s, size_t n);

/* Always on: cheap checks of DESIGN §5. */
#define hak_check(cond, what, ptr, ss, cls) \
  do {                                      \
    if (hak_unlikely(!(cond))) hak_fail((what), (ptr), (ss), (cls)); \
  } while (0)
#if HAKMEM_DEBUG
#define hak_assert(cond) \
  do {                   \
    if (hak_unlikely(!(cond))) hak_fail_assert(#cond, __FILE__, __LINE__); \
  } while (0)
#else
#define hak_assert(cond) ((void)0)
#endif
/* Full invariant walks and content checks: checked builds only (HAKMEM_CHECKED). */
#if HAKMEM_CHECKED
#define hak_assert_expensive(cond) \
  do {                             \
    if (hak_unlikely(!(cond))) hak_fail_assert(#cond, __FILE__, __LINE__); \
  } while (0)
#else
#define hak_assert_expensive(cond) ((void)0)
#endif

#if HAKMEM_DEBUG_HDRLESS
#define hak_log_once_at(tag, ptr, ss, a, b)            \
  do {                                                 \
    static _Atomic(int) site_;                         \
    hak_log_once(&site_, (tag), (ptr), (ss), (a), (b)); \
  } while (0)
#else
#define hak_log_once_at(tag, ptr, ss, a, b) ((void)0)
#endif

/* ---- checked.c: fill patterns, protected links, invariant walks (HAKMEM_CHECKED only) ---- */

#define HAK_FREE_FILL 0xDFu /* every byte of a free block past its link word, checked builds */
#if HAKMEM_CHECKED
extern uint64_t hak_link_secret; /* per process, set once before the first block is listed */
void hak_checked_init(void);
bool hak_checked_link_ok(const void *base, const void *next); /* next: decoded link of base */
__attribute__((noreturn, cold)) void hak_checked_link_fail(const void *base);
size_t hak_checked_fill_changed(const void *p, size_t n); /* first byte not the fill, or n */
void hak_checked_fill(void *base, hak_class_t cls, uint32_t stride); /* a fresh block, carved */
void hak_checked_freed(void *base, hak_class_t cls, uint32_t stride); /* double free? then fill */
void hak_checked_taken(void *base); /* leaves a TLS SLL: verify the fill, clear the link */
#if HAKMEM_TINY_HEADERLESS
uint8_t *hak_checked_form_of(const void *base); /* the HAK_FORM_* byte of a slab block */
#endif
bool hak_checked_sll_ok(const hak_tcache_t *tc, hak_class_t cls); /* TLS SLL of cls, full walk */
bool hak_checked_run_ok(const hak_slab_t *m); /* freelist: carved - used blocks, all intact */
#endif

/* ---- schedule points (HAKMEM_SCHED_POINTS builds, tests only) ----------------------------- */

/* A named hook at every cross-thread window, through which a test parks one thread while
 * others go on (tests/support/hak_sched.h). Shipped builds compile every point to nothing. */
enum hak_sched_point {
  HAK_SP_BEFORE_PUSH,    /* a remote free about to decide: push, notify or claim           */
  HAK_SP_AFTER_PUSH,     /* a remote free's CAS landed: the run may go away from here on   */
  HAK_SP_BEFORE_DELIVER, /* a remote free took the notification, the block not delivered  */
  HAK_SP_DRAIN,          /* a drain took the stack, its blocks not yet on the freelist     */
  HAK_SP_ORPHAN_PUBLISH, /* an exiting owner gave up the owner word, not yet the run       */
  HAK_SP_BEFORE_RELEASE, /* a run is about to go back to its SuperSlab                     */
  HAK_SP_PURGE_SLEEP,    /* the purge thread saw no work pending, not yet marked ASLEEP    */
  HAK_SP_BEFORE_UNMAP,   /* an empty SuperSlab is about to be unmapped                     */
  HAK_SP_LARGE_GROW,     /* a cached large mapping was moved by mremap: its old range is free */
  HAK_SP_REALLOC_FREED,  /* realloc freed the old block, the call not yet returned         */
  HAK_SP_COUNT
};
#if HAKMEM_SCHED_POINTS
typedef void (*hak_sched_hook_t)(enum hak_sched_point point, const void *obj);
extern _Atomic(hak_sched_hook_t) hak_sched_hook;
/* hakmem locks the calling thread holds: a hook must not stop a thread that holds one while
 * it lets another run (that one may spin on the lock). */
extern __thread int hak_sched_locks;
#define hak_sched_point(point, obj)                                             \
  do {                                                                          \
    hak_sched_hook_t hook_ = atomic_load_explicit(&hak_sched_hook, hak_relaxed); \
    if (hook_ != NULL) hook_((point), (obj));                                   \
  } while (0)
#else
#define hak_sched_point(point, obj) ((void)0)
#endif

/* ---- crash.c: the crash report (HAKMEM_CRASH_REPORT) ---------------------------------------- */

void hak_crash_init(void); /* installs the handler when the option asks for it */
/* Every unmap of a SuperSlab or large mapping, so a crash there can be named. */
void hak_crash_note_unmap(const void *base, size_t size, unsigned kind);
/* What address a is to hakmem, as one line of text (no newline) in out[n]; returns its length.
 * Reads only regions the registry lists. */
size_t hak_crash_describe(uintptr_t a, char *out, size_t n);

/* ---- lock.c (in init.c): slow-path locks ------------------------------------------------ */

void hak_lock(hak_lock_t *l);
void hak_unlock(hak_lock_t *l);

/* ---- os.c: the only file that makes system calls ------------------------------------- */

void *hak_os_map(size_t size);                  /* zeroed, read-write, or NULL */
void *hak_os_map_aligned(size_t size, size_t align); /* size and align: page multiples */
/* Moves size bytes of mapped pages at from onto the mapping at to (replacing its pages there):
 * they move without a copy or a fault, from is unmapped. false when it cannot (nothing moved). */
bool hak_os_move(void *from, size_t size, void *to);
void hak_os_unmap(void *p, size_t size);
void hak_os_purge(void *p, size_t size);        /* give pages back, keep the mapping */
uint64_t hak_os_now_ms(void);
void hak_os_write(int fd, const void *buf, size_t n);
uint64_t hak_os_peak_rss_kb(void);
int hak_os_dup_stderr(void);
void hak_os_thp(void *p, size_t size, bool huge);
enum { HAK_THP_NEVER = 0, HAK_THP_ALL = 1, HAK_THP_LARGE = 2 }; /* HAKMEM_THP */
int hak_os_open(const char *path, bool truncate); /* read-write, created; -1 on failure */
void hak_os_close(int fd);
bool hak_os_pread(int fd, void *buf, size_t n, uint64_t off);
bool hak_os_truncate(int fd, uint64_t size);
void *hak_os_map_file(int fd, uint64_t off, size_t size); /* MAP_SHARED, or NULL */
void hak_os_unmap_file(void *p, size_t size);
int hak_os_getpid(void);
bool hak_os_alive(int pid);
uint64_t hak_os_entropy(void); /* clocks and pid: seeds, not cryptography */
/* A fatal signal, as the crash report sees it. */
typedef struct hak_fault_s {
  int sig, code;      /* signal number and si_code                                         */
  uintptr_t addr;     /* si_addr of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE), else 0       */
  bool from_kernel;   /* raised by the faulting instruction: it faults again on return       */
  int tid;            /* thread that took the signal                                         */
  uint64_t ip;        /* instruction pointer of the interrupted context, 0 if unknown        */
  uint64_t regs[16];  /* rax rbx rcx rdx rsi rdi rbp rsp r8 .. r15 (x86-64), else zero       */
} hak_fault_t;
/* Catches the fatal signals and calls report for the first one; then the signal takes its
 * default action. Another thread's fatal signal meanwhile waits for that end; one in the
 * reporting thread ends the process at once. */
void hak_os_catch_fatal(void (*report)(const hak_fault_t *f));
bool hak_os_chdir(const char *path);
void hak_os_yield(void);
/* Runs path with argv and envp (stdout and stderr to /dev/null) in a child made without
 * fork handlers, waits for it; its exit status, or -1. Lets any process trace this one. */
int hak_os_run_wait(const char *path, char *const argv[], char *const envp[]);
/* The purge thread: a detached thread with every signal blocked (false when none was made). */
bool hak_os_thread_start(void *(*fn)(void *), const char *name);
void hak_os_futex_wait(_Atomic(uint32_t) *word, uint32_t val); /* while *word == val */
void hak_os_futex_wake(_Atomic(uint32_t) *word);                /* one waiter */
void hak_os_sleep_ms(uint64_t ms);
int hak_os_live_threads(void); /* threads still running (not the exited main thread); 0: unknown */
int hak_os_gettid(void);

/* ---- options.c ----------------------------------------------------------------------- */

#define HAK_PATH_MAX 1024
enum hak_stats_mode { HAK_STATS_OFF = 0, HAK_STATS_TABLE = 1, HAK_STATS_JSON = 2 };
typedef struct hak_options_s {
  long tls_hint, ss_adopt, rf_force_notify, must_adopt, ace_enabled;
  long stats; /* enum hak_stats_mode */
  long verbose, decay_ms, large_cache_mb, large_cache_pct, large_move, slab_dirty_pct, thp,
      remote_batch;
  long purge_thread;
  long crash_report, crash_gcore;
  char stats_path[HAK_PATH_MAX]; /* HAKMEM_STATS=json:PATH, else "" */
  char trace_path[HAK_PATH_MAX]; /* HAKMEM_TRACE=PATH, else "" */
  char crash_dir[HAK_PATH_MAX];  /* HAKMEM_CRASH_DIR=PATH, else "" */
} hak_options_t;
extern hak_options_t hak_opt;
void hak_options_init(void); /* parses the environment; warns on malformed values */
long hak_options_lookup(const char *name); /* a path option: 1 when set */
void hak_options_print(void);

/* ---- init.c: process and thread life cycle, fork ------------------------------------- */

extern __thread hak_tcache_t *hak_tc;
extern hak_tcache_t hak_tc_empty; /* every thread starts here: all SLLs empty */
extern hak_tcache_t hak_tc_dead;  /* after thread exit: frees go remote, allocs global */
hak_tcache_t *hak_thread_init_slow(void); /* returns a live cache for this thread */
void hak_process_init(void);
void hak_thread_done(hak_tcache_t *tc); /* flush and orphan; tc must not be in use */
/* The cache a slow path must use: the thread's own, or the locked global one. */
hak_tcache_t *hak_tc_acquire(void);
void hak_tc_release(hak_tcache_t *tc);
/* Marks a cache inside a slow path that moves blocks: a fork child leaves such a cache alone
 * (its blocks and runs may be half-way between lists). Same-thread counter; the compiler
 * fence keeps the mark before the moves it covers. */
static inline void hak_tc_busy_enter(hak_tcache_t *tc) {
  atomic_store_explicit(&tc->busy, atomic_load_explicit(&tc->busy, hak_relaxed) + 1, hak_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
}
static inline void hak_tc_busy_leave(hak_tcache_t *tc) {
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&tc->busy, atomic_load_explicit(&tc->busy, hak_relaxed) - 1, hak_relaxed);
}
void hak_tcaches_foreach(void (*fn)(hak_tcache_t *, void *), void *arg);

/* ---- stats.c ---------------------------------------------------------------------------- */

void hak_stats_retire(hak_tcache_t *tc); /* fold an exiting thread's counters in */
void hak_stats_remote_free_dead(hak_class_t cls, bool notified); /* a free by a thread without cache */
void hak_stats_hint_miss_shared(hak_class_t cls); /* a hint miss by a thread without cache */
/* The process-wide counters: the GLOBAL entries of HAKMEM_STATS_FIELDS (hakmem.h). */
#define HAK_GSTAT_SLOT(name, slot, object, key, doc) HAK_G_##slot,
typedef enum hak_gstat_e {
  HAKMEM_STATS_FIELDS(HAKMEM_STATS_SKIP, HAKMEM_STATS_SKIP, HAK_GSTAT_SLOT, HAKMEM_STATS_SKIP)
  HAK_G_COUNT
} hak_gstat_t;
void hak_gstat_add(hak_gstat_t which, int64_t n);
int64_t hak_gstat_read(hak_gstat_t which); /* relaxed */
void hak_stats_at_exit(void);
void hak_stats_init(void); /* keeps a copy of stderr when HAKMEM_STATS is on */

/* ---- classes (fast.h) and api.c ------------------------------------------------------ */

void *hak_malloc_slow(size_t size);
void hak_free_slow(void *p); /* large, aligned and invalid frees */
/* C++ operators (override_new.c): form is HAK_FORM_NEW or HAK_FORM_ARRAY. The first records
 * the form of p, just returned by a new of n bytes (no alignment argument); the second fails
 * fast when p, about to be freed by a delete of that form, came from the other form of new, or
 * when n (HAK_NO_SIZE: unsized delete) is not a size the block can have been allocated with. */
#define HAK_NO_SIZE SIZE_MAX
#if HAK_DELETE_CHECKED
void hak_new_record(void *p, size_t n, unsigned form);
void hak_delete_check(void *p, size_t n, unsigned form);
#endif

/* ---- tiny/registry.c --------------------------------------------------------------------- */

extern _Atomic(uint8_t) hak_registry_map[];
void hak_registry_set(uintptr_t region, enum hak_region_kind kind);
void hak_registry_clear(uintptr_t region);

/* ---- tiny/superslab.c ---------------------------------------------------------------------- */

/* Bumped before a SuperSlab is unmapped and when one is reused: the hint box's proof. */
extern _Atomic(uint64_t) hak_ss_release_epoch;
/* Takes an unbound run for class cls, bound to it (geometry set, no owner yet). */
hak_slab_t *hak_superslab_take_run(hak_class_t cls);
/* Returns an unbound, owner-less, fully free run to its SuperSlab. */
void hak_superslab_release_run(hak_slab_t *head);
size_t hak_superslab_trim(bool force); /* bytes given back */
/* The decay has something left to return (a hint for the purge thread: see superslab.c). */
bool hak_superslab_pending(void);
/* Returns memory whose decay has passed; called from slow paths now and then. */
void hak_superslab_tick(void);
void hak_superslab_lock_all(void);
void hak_superslab_unlock_all(void);
static inline hak_superslab_t *hak_ss_of(const void *p) {
  return (hak_superslab_t *)((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK);
}
/* Pointer -> its run: the head slab of the run holding address p of SuperSlab ss. The one
 * place this is computed; meaningful while p lies in a bound run (a block that is out pins its
 * run), a slab index otherwise. */
static inline hak_slab_t *hak_run_in(hak_superslab_t *ss, uintptr_t p) {
  hak_slab_t *m = &ss->slabs[(p >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_SS - 1)];
#if HAK_PLANTED(class_drift) /* planted bug: class and geometry of the pointer's own slab */
  return m;
#else
  return (hak_slab_t *)((uint8_t *)ss + m->head_off); /* == &ss->slabs[m->head] */
#endif
}
/* The index of the block at byte offset off from run m's data when off is exactly a block's
 * start, else a number above any block count (one multiply and one rotate, no division).
 * Why: with stride = odd << k and inv = odd^-1 mod 2^64, off * inv rotated right by k is
 * off / stride when stride divides off, and above (2^64 - 1) / stride otherwise (the exact-
 * division test of Granlund and Montgomery); a run has fewer blocks than that bound. An
 * unbound run (div_inv 0) gives 0, which its carved count of 0 rejects. */
static inline uint64_t hak_run_block_index(const hak_slab_t *m, uint64_t off) {
  uint64_t x = off * m->div_inv;
  unsigned k = m->div_shift;
  return (x >> k) | (x << ((64 - k) & 63));
}
static inline hak_slab_t *hak_run_of(const void *p) {
  return hak_run_in(hak_ss_of(p), (uintptr_t)p);
}

/* ---- tiny/magazine.c: refill / spill ----------------------------------------------------- */

void *hak_refill_slow(hak_tcache_t *tc, hak_class_t cls); /* refills the SLL, returns one block */
void hak_spill_slow(hak_tcache_t *tc, hak_class_t cls); /* spills the SLL down to half its cap */
void hak_sll_flush_all(hak_tcache_t *tc);         /* empties every SLL back to slabs */
void hak_slab_give_back(hak_tcache_t *tc, hak_slab_t *m, void *base); /* owner frees one */

/* ---- tiny/remote_queue.c: Box 2 (tiny/remote_queue.h) --------------------------------------- */

/* ---- tiny/owner.c: Box 3, the run life cycle ------------------------------------------------ */

hak_slab_t *hak_run_bind(hak_tcache_t *tc, hak_slab_t *m, hak_class_t cls); /* held alone -> OWNED */
hak_slab_t *hak_run_fresh(hak_tcache_t *tc, hak_class_t cls);         /* FREE -> OWNED */
bool hak_run_fill(hak_tcache_t *tc, hak_slab_t *m);   /* OWNED -> FULL unless blocks queue */
void hak_run_unfull(hak_tcache_t *tc, hak_slab_t *m); /* FULL -> OWNED */
void hak_run_release(hak_tcache_t *tc, hak_slab_t *m); /* OWNED, empty -> FREE */
void hak_run_orphan(hak_tcache_t *tc, hak_slab_t *m);  /* -> ORPHANED/PUBLISHED (or FREE) */
void hak_run_release_claimed(hak_slab_t *m);           /* CLAIMED -> FREE */
void hak_owner_exit(hak_tcache_t *tc); /* closes the notify stack, orphans every run */
static inline hak_tcache_t *hak_owner_of(const hak_slab_t *m) {
  return atomic_load_explicit((_Atomic(hak_tcache_t *) *)&m->owner, memory_order_acquire);
}

/* ---- tiny/adopt.c: Box 4 ----------------------------------------------------------------- */

/* hint_hit: the hint box resolved the SuperSlab (counted with the free). */
void hak_free_remote_mt(hak_slab_t *m, void *base, hak_tcache_t *tc);
void hak_remote_flush(hak_tcache_t *tc); /* pushes every remote free tc holds back */
bool hak_adopt_publish(hak_slab_t *m, uint32_t used); /* false: blocks queued, drain again */
hak_slab_t *hak_adopt_slow(hak_tcache_t *tc, hak_class_t cls);
void hak_notify_collect(hak_tcache_t *tc);                 /* the owner takes its deliveries */
void hak_notify_collect_chain(hak_tcache_t *tc, void *b); /* ... from a chain it took */
void hak_adopt_lock_all(void);
void hak_adopt_unlock_all(void);

/* ---- tiny/hint.c -------------------------------------------------------------------------- */

void hak_hint_insert(hak_tcache_t *tc, uintptr_t ss);
/* A free whose SuperSlab the hint did not know: recorded when entry and tracing, else the
 * registry asked, the answer remembered, the miss counted, then the free. */
void hak_free_hint_miss(void *p, hak_tcache_t *tc, bool entry);

/* ---- large.c ------------------------------------------------------------------------------ */

void *hak_large_alloc(size_t size, size_t align, bool zero);
void hak_large_free(void *p, hak_large_t *h);
/* Where the header of a large mapping registered at region (of kind) sits; no check. */
hak_large_t *hak_large_header_at(uintptr_t region, int kind);
hak_large_t *hak_large_peek(const void *p, int kind);   /* live header of p, or NULL */
hak_large_t *hak_large_lookup(const void *p, int kind); /* live header of p, or fail */
size_t hak_large_trim(bool force); /* bytes given back */
bool hak_large_pending(void);      /* the cache holds a mapping (a hint: see large.c) */
void hak_large_lock_all(void);
void hak_large_unlock_all(void);

/* ---- purge.c: the purge thread (HAKMEM_PURGE_THREAD) ----------------------------------------- */

/* The futex word: the thread's state. Ordered so that one compare tells the notifier it has
 * nothing to do (AWAKE, OFF). */
enum hak_purge_state {
  HAK_PURGE_UNSTARTED = 0, /* no thread yet: the first notify with work pending starts it   */
  HAK_PURGE_ASLEEP = 1,    /* waits on the futex until a notify finds work pending          */
  HAK_PURGE_AWAKE = 2,     /* runs the decay every decay_ms / 4 while work is pending       */
  HAK_PURGE_OFF = 3        /* never a thread: switched off, before start-up, or no thread   */
};
extern _Atomic(uint32_t) hak_purge_state;
void hak_purge_init(void);       /* end of process start: UNSTARTED unless switched off */
void hak_purge_fork_child(void); /* atfork child: the thread did not come along */
void hak_purge_notify_slow(void);
void hak_purge_main_exit(void);  /* the main thread's cache is gone: it exits, the process may not */
/* After a slow path that may have left memory for the decay, with no hakmem lock held and the
 * calling thread's cache consistent (a start calls pthread_create, which may allocate). The
 * thread awake: one relaxed load and a branch. */
static inline void hak_purge_notify(void) {
  if (hak_unlikely(atomic_load_explicit(&hak_purge_state, hak_relaxed) < HAK_PURGE_AWAKE))
    hak_purge_notify_slow();
}

/* ---- trace.c: allocation traces (HAKMEM_TRACE) ------------------------------------------ */

/* True until hak_process_init has opened the trace or found none: the first calls of the process
 * take the recording path, which runs the initialisation, so the trace starts with the first
 * call. Afterwards true only while a trace is recorded. */
extern _Atomic(bool) hak_trace_on;
static inline bool hak_tracing(void) {
  return hak_unlikely(atomic_load_explicit(&hak_trace_on, hak_relaxed));
}
/* The gates of the inline entry points (fast.h): malloc's fast path serves requests below
 * hak_gate_size, free's (without the hint box) addresses below hak_gate_addr. Both are 0
 * whenever hak_trace_on is up, so those calls take the gated way, which tests the flag; the
 * fast paths pay nothing for tracing. Tracing never starts once it is off (only at start-up),
 * so no hint is inserted before a trace that would then miss a free (hint.c). */
extern _Atomic(size_t) hak_gate_size;
extern _Atomic(uintptr_t) hak_gate_addr;
void hak_trace_open(void); /* from hak_process_init, once the options are read */
/* Records one call (no-op when no trace is being written). Allocations call it after they
 * return, frees before they run: see trace.c. */
void hak_trace_record(enum hak_trace_op op, const void *ptr, uint64_t size, uint64_t aux);
void hak_trace_thread_exit(void); /* from the thread-exit path, before the flush */
void hak_trace_fork_child(void);  /* atfork child: a fresh file of its own */

/* ---- api.c: the traced forms of the fast paths, for override.c ------------------------------ */

void *hak_malloc_traced(size_t size);
void hak_free_traced(void *ptr);
/* The gated ways of malloc and free (fast.h): recorded when tracing, else the plain call. */
void *hak_malloc_gated(size_t size);
void hak_free_gated(void *ptr);

/* ---- tcache list lock (init.c) ---------------------------------------------------------- */

void hak_tcache_lock_all(void);
void hak_tcache_unlock_all(void);

#pragma GCC visibility pop

#endif /* HAKMEM_INTERNAL_H */
