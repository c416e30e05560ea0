/* hakmem: a debuggable malloc replacement for Linux x86-64.
 *
 * This is the only public header. Link with -lhakmem (or preload libhakmem.so) to replace the
 * system allocator; the hak_ functions below are the same allocator under a prefixed name,
 * usable from any build (the sanitizer builds only export these). */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0
/* One number that orders releases: major * 10000 + minor * 100 + patch. */
#define HAKMEM_VERSION \
  (HAKMEM_VERSION_MAJOR * 10000 + HAKMEM_VERSION_MINOR * 100 + HAKMEM_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* Allocation: the glibc contract, under a prefix. */
void *hak_malloc(size_t size);
void *hak_calloc(size_t count, size_t size);
void *hak_realloc(void *ptr, size_t size);
void *hak_reallocarray(void *ptr, size_t count, size_t size);
void hak_free(void *ptr);
void *hak_memalign(size_t alignment, size_t size);
void *hak_aligned_alloc(size_t alignment, size_t size);
int hak_posix_memalign(void **out, size_t alignment, size_t size);
void *hak_valloc(size_t size);
void *hak_pvalloc(size_t size);
size_t hak_usable_size(const void *ptr);

/* Returns the memory hakmem caches but does not use to the OS now (as malloc_trim(0)).
 * Returns 1 if anything was released. */
int hak_trim(void);

/* HAKMEM_VERSION of the library actually loaded. */
int hak_version(void);

/* Nonzero when ptr is a live block hakmem returned (never aborts, never touches unmapped
 * memory). Meant for tests and diagnostics, not for the hot path. */
int hak_owns(const void *ptr);

/* ---- statistics ------------------------------------------------------------------------
 *
 * Every field of hak_stats_t and hak_class_stats_t is one entry of the lists below, and all
 * the rest follows from that entry: the struct field, the counter hakmem keeps for it, the
 * sums, the table of HAKMEM_STATS=1, the JSON document of HAKMEM_STATS=json:PATH and the
 * README's table of fields (scripts/gen-stats-doc prints it; a test compares). A new counter
 * is one line here and, where it is counted, one hak_stat_add (per-thread kinds) or
 * hak_gstat_add (GLOBAL) in hakmem's source; a per-class COUNTER that should also have a
 * process total in hak_stats_t takes one SUM line more. The lists are X-macros with one
 * parameter per kind of entry: a user passes a macro for each kind it wants and
 * HAKMEM_STATS_SKIP for the others.
 *
 * The structs' layout is ABI and follows the list: a new entry goes last, never in between.
 * The JSON document and the table show the fields in list order too.
 *
 * Counts kept by threads still running are read racily, so they are exact only once those
 * threads are quiet. */
#define HAKMEM_STATS_SKIP(...)

/* The JSON objects that hold hak_stats_t's fields, in document order; X(object). */
#define HAKMEM_STATS_OBJECTS(X) X(totals) X(memory) X(large)

/* hak_class_stats_t, one size class (class 0 .. hak_class_count() - 1). Kinds:
 *   COUNTER(name, doc)        uint64_t, counted per class by each thread with hak_stat_add,
 *                             summed over live and exited threads
 *   DERIVED(type, name, doc)  computed from the counters by class_<name>() in stats.c
 *   CALLER(type, name, doc)   the calling thread's own state (class_<name>()); in the struct
 *                             only, not in the process-wide table and JSON
 * In the JSON: classes[].name. */
/* clang-format off */
#define HAKMEM_CLASS_STATS_FIELDS(COUNTER, DERIVED, CALLER) \
  DERIVED(size_t, block_size, "usable bytes of a block of the class") \
  COUNTER(allocs, "blocks of the class handed out") \
  COUNTER(frees, "blocks of the class freed, local and remote") \
  COUNTER(remote_frees, "of which by a thread that did not own the block's run") \
  COUNTER(refills, "TLS cache refills of the class") \
  COUNTER(spills, "TLS cache spills of the class") \
  CALLER(uint32_t, tls_cap, "the calling thread's TLS cache capacity for the class") \
  COUNTER(remote_drains, "remote-queue drains of the class's runs by their owners") \
  COUNTER(drained_blocks, "blocks those drains moved") \
  COUNTER(adoptions, "published runs of the class adopted") \
  DERIVED(uint64_t, hint_hits, "frees whose SuperSlab the hint box knew (frees - hint_misses)") \
  COUNTER(hint_misses, "frees whose SuperSlab the hint box did not know") \
  DERIVED(uint64_t, registry_lookups, "frees whose SuperSlab came from the registry (frees - hint_hits)") \
  DERIVED(uint64_t, live_blocks, "allocs - frees") \
  DERIVED(uint64_t, live_bytes, "live_blocks * block_size") \
  /* a new entry goes here, last */
/* clang-format on */

/* hak_stats_t, the process. Every field is a uint64_t. Kinds:
 *   SUM(name, doc)                     hak_class_stats_t's name summed over the classes
 *   EVENT(name, doc)                   counted by each thread with hak_stat_add (no class),
 *                                      summed over live and exited threads
 *   GLOBAL(name, slot, object, key, doc)  a process-wide counter, counted with
 *                                      hak_gstat_add(HAK_G_<slot>, n)
 *   DERIVED(name, object, key, doc)    computed by total_<name>() in stats.c, after the others
 * In the JSON: object.key; SUM and EVENT fields are totals.name. */
/* clang-format off */
#define HAKMEM_STATS_FIELDS(SUM, EVENT, GLOBAL, DERIVED) \
  DERIVED(allocs, totals, allocs, "blocks handed out, every size (classes[].allocs summed, plus large.allocs)") \
  DERIVED(frees, totals, frees, "blocks freed, every size") \
  SUM(remote_frees, "frees of blocks owned by another thread (pushed on its remote queue)") \
  SUM(remote_drains, "drains of a remote queue by the run's owner") \
  SUM(drained_blocks, "blocks those drains moved back") \
  EVENT(notifies, "remote frees delivered to the run's owner (its notify stack), not pushed onto the run") \
  SUM(refills, "TLS cache refills from slabs") \
  SUM(spills, "TLS cache spills back to slabs") \
  EVENT(adopt_tries, "refills that looked for a published run") \
  SUM(adoptions, "published runs adopted by a new owner") \
  GLOBAL(orphaned_slabs, ORPHANED, totals, orphaned_slabs, "runs left by exiting threads") \
  GLOBAL(last_free_releases, LAST_FREE_RELEASES, totals, last_free_releases, "orphaned runs released by the free of their last block") \
  SUM(hint_hits, "frees whose SuperSlab the hint box knew") \
  SUM(hint_misses, "frees whose SuperSlab the hint box did not know") \
  SUM(registry_lookups, "frees whose SuperSlab came from the registry (frees - hint_hits)") \
  EVENT(ace_grows, "adaptive TLS capacity increases") \
  GLOBAL(slabs_bound, SLABS_BOUND, memory, slabs_bound, "slab runs bound to a class so far") \
  GLOBAL(superslabs_mapped, SS_MAPPED, memory, superslabs_mapped, "SuperSlabs mapped so far") \
  GLOBAL(superslabs_unmapped, SS_UNMAPPED, memory, superslabs_unmapped, "SuperSlabs unmapped so far") \
  GLOBAL(superslabs_reused, SS_REUSED, memory, superslabs_reused, "empty SuperSlabs reused (their generation bumped)") \
  GLOBAL(large_allocs, LARGE_ALLOCS, large, allocs, "allocations served by their own mapping") \
  GLOBAL(large_cache_hits, LARGE_CACHE_HITS, large, cache_hits, "large allocations that reused a cached mapping") \
  GLOBAL(bytes_mapped, BYTES_MAPPED, memory, mapped_bytes, "bytes hakmem has mapped from the OS now") \
  GLOBAL(bytes_purged, BYTES_PURGED, memory, returned_bytes, "bytes given back to the OS so far (munmap, madvise)") \
  DERIVED(live_blocks, totals, live_blocks, "allocs - frees") \
  GLOBAL(threads_started, THREADS_STARTED, totals, threads_started, "thread caches created") \
  GLOBAL(threads_exited, THREADS_EXITED, totals, threads_exited, "thread caches flushed at thread exit") \
  DERIVED(live_bytes, totals, live_bytes, "usable bytes of the live blocks, every size") \
  GLOBAL(large_frees, LARGE_FREES, large, frees, "frees of large allocations") \
  GLOBAL(large_live_bytes, LARGE_LIVE_BYTES, large, live_bytes, "usable bytes of live large allocations") \
  DERIVED(peak_rss_bytes, memory, peak_rss_bytes, "the process's peak resident set size") \
  GLOBAL(purge_wakeups, PURGE_WAKEUPS, memory, purge_wakeups, "times the purge thread was woken from its sleep") \
  GLOBAL(purge_passes, PURGE_PASSES, memory, purge_passes, "decay passes the purge thread ran") \
  GLOBAL(purge_bytes, PURGE_BYTES, memory, purge_bytes, "bytes the purge thread returned to the OS") \
  EVENT(remote_pushes, "CASes that pushed or delivered remote frees (a held-back chain is one)") \
  /* a new entry goes here, last */
/* clang-format on */

#define HAKMEM_STATS_FIELD_(name, ...) uint64_t name;
#define HAKMEM_STATS_TYPED_FIELD_(type, name, ...) type name;

/* Process-wide counters, summed over live and exited threads. */
typedef struct hak_stats_s {
  HAKMEM_STATS_FIELDS(HAKMEM_STATS_FIELD_, HAKMEM_STATS_FIELD_, HAKMEM_STATS_FIELD_,
                      HAKMEM_STATS_FIELD_)
} hak_stats_t;

void hak_stats_get(hak_stats_t *out);

/* Per size class counters. */
typedef struct hak_class_stats_s {
  HAKMEM_CLASS_STATS_FIELDS(HAKMEM_STATS_FIELD_, HAKMEM_STATS_TYPED_FIELD_,
                            HAKMEM_STATS_TYPED_FIELD_)
} hak_class_stats_t;

int hak_class_count(void);
void hak_class_stats_get(int cls, hak_class_stats_t *out);

/* Prints the stats table to stderr (what HAKMEM_STATS=1 prints at exit). */
void hak_stats_print(void);

/* Build configuration, as compiled. */
typedef struct hak_config_s {
  int headerless;    /* HAKMEM_TINY_HEADERLESS */
  int tls_hint;      /* HAKMEM_TINY_SS_TLS_HINT compiled in */
  int override;      /* exports malloc/free/... */
  int asan;          /* free blocks poisoned for AddressSanitizer */
  size_t tiny_max;   /* largest request served by the tiny classes */
  size_t mid_max;    /* largest request served by slab runs */
  int checked;       /* HAKMEM_CHECKED: fill patterns, protected links, invariant walks */
  int debug;         /* HAKMEM_DEBUG: hak_assert checks */
} hak_config_t;

void hak_config_get(hak_config_t *out);

/* The run-time value of a HAKMEM_* option (after parsing the environment), or -1 if the name
 * is unknown. */
long hak_option_get(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_H */
