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

/* Process-wide counters, summed over live and exited threads. Counts kept by threads still
 * running are read racily, so they are exact only once those threads are quiet. */
typedef struct hak_stats_s {
  uint64_t allocs;           /* blocks handed out, every size                  */
  uint64_t frees;            /* blocks freed, every size                       */
  uint64_t remote_frees;     /* frees pushed onto another thread's slab queue  */
  uint64_t remote_drains;    /* drains of a slab's remote queue by its owner   */
  uint64_t drained_blocks;   /* blocks moved out of remote queues              */
  uint64_t notifies;         /* remote frees that notified the owner/published */
  uint64_t refills;          /* TLS SLL refills from slabs                     */
  uint64_t spills;           /* TLS SLL spills back to slabs                   */
  uint64_t adopt_tries;      /* refills that looked for a published slab       */
  uint64_t adoptions;        /* published slabs adopted by a new owner         */
  uint64_t orphaned_slabs;   /* slabs left by exiting threads                  */
  uint64_t last_free_releases; /* orphaned slabs released by their last free   */
  uint64_t hint_hits;        /* headerless frees resolved by the hint box      */
  uint64_t hint_misses;      /* headerless frees that went to the registry     */
  uint64_t registry_lookups; /* address -> region lookups                      */
  uint64_t ace_grows;        /* adaptive TLS capacity increases                */
  uint64_t slabs_bound;      /* slab runs bound to a class                     */
  uint64_t superslabs_mapped;   /* SuperSlabs taken from the OS               */
  uint64_t superslabs_unmapped; /* SuperSlabs returned to the OS              */
  uint64_t superslabs_reused;   /* empty SuperSlabs reused (generation bump)  */
  uint64_t large_allocs;     /* allocations served by their own mapping        */
  uint64_t large_cache_hits; /* ... of which reused a cached mapping           */
  uint64_t bytes_mapped;     /* bytes currently mapped from the OS             */
  uint64_t bytes_purged;     /* bytes returned to the OS (munmap/madvise), total */
  uint64_t live_blocks;      /* allocs - frees                                 */
  uint64_t threads_started;  /* thread caches created                          */
  uint64_t threads_exited;   /* thread caches flushed at thread exit           */
  uint64_t live_bytes;       /* usable bytes of live blocks, every size        */
  uint64_t large_frees;      /* frees of large allocations                     */
  uint64_t large_live_bytes; /* usable bytes of live large allocations         */
  uint64_t peak_rss_bytes;   /* the process's peak resident set size           */
  uint64_t purge_wakeups;    /* times the purge thread was woken from its sleep */
  uint64_t purge_passes;     /* decay passes the purge thread ran              */
  uint64_t purge_bytes;      /* bytes the purge thread returned to the OS      */
} hak_stats_t;

void hak_stats_get(hak_stats_t *out);

/* Per size class counters (class 0 .. hak_class_count() - 1). */
typedef struct hak_class_stats_s {
  size_t block_size; /* usable bytes of a block of this class */
  uint64_t allocs, frees, remote_frees, refills, spills;
  uint32_t tls_cap;  /* current TLS SLL capacity of the calling thread */
  uint64_t remote_drains;    /* drains of this class's remote queues by their owners */
  uint64_t drained_blocks;   /* blocks those drains moved                            */
  uint64_t adoptions;        /* published runs of this class adopted                 */
  uint64_t hint_hits;        /* local frees whose SuperSlab the hint box knew        */
  uint64_t hint_misses;      /* local frees the hint box did not know                */
  uint64_t registry_lookups; /* frees whose SuperSlab came from the registry         */
  uint64_t live_blocks;      /* allocs - frees                                       */
  uint64_t live_bytes;       /* live_blocks * block_size                             */
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
