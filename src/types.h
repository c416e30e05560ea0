/* Every type of hakmem, in one header, with the invariant each field carries. */
#ifndef HAKMEM_TYPES_H
#define HAKMEM_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hakmem.h"

/* ---- geometry ------------------------------------------------------------------------- */

#define HAK_SS_SIZE ((size_t)1 << HAK_SS_SHIFT)
#define HAK_SS_MASK (HAK_SS_SIZE - 1)
#define HAK_SLAB_SIZE ((size_t)1 << HAK_SLAB_SHIFT)
#define HAK_SLABS_PER_SS (HAK_SS_SIZE / HAK_SLAB_SIZE)
#define HAK_PAGE_SIZE ((size_t)4096)
#define HAK_CACHE_LINE 64

/* Size classes: how many (sizeclass.h has their geometry). */
#define TINY_NUM_CLASSES 20
#define HAK_MID_NUM_CLASSES 32
#define HAK_NUM_CLASSES (TINY_NUM_CLASSES + HAK_MID_NUM_CLASSES)
#define HAK_CLASS_NONE 0xFF
#define HAK_CLASS4_NONE 0xFF /* a free run's class4: no multiple of HAK_CLASS_SCALE */

/* Pointer modes (DESIGN §1). In header mode a block is [8-byte header][user bytes] and
 * strides are class size + 16, so that base == 8 (mod 16) and user == 0 (mod 16). */
#if HAKMEM_TINY_HEADERLESS
#define HAK_HDR_SIZE 0
#define HAK_STRIDE_EXTRA 0
#define HAK_LINK_OFF 0 /* free-list link: first word of the block */
#else
#define HAK_HDR_SIZE 8
#define HAK_STRIDE_EXTRA 16
#define HAK_LINK_OFF 8 /* link after the header, so the header survives while free */
#endif

/* Header words (header mode): tag and class in one compare. */
#define HAK_HDR_TAG_ALLOC 0xA110C8ED5EA50000ull
#define HAK_HDR_TAG_FREE 0xF4EEB10C5EA50000ull
#define HAK_HDR_ALLOC(c) (HAK_HDR_TAG_ALLOC | (uint64_t)(c))
#define HAK_HDR_FREE(c) (HAK_HDR_TAG_FREE | (uint64_t)(c))
/* The operator new form that allocated a block (HAK_DELETE_CHECKED builds): 0 malloc and the
 * rest, HAK_FORM_NEW, HAK_FORM_ARRAY (new[]). Header mode keeps it in the in-use header, above
 * the class; every free path but delete's sees such a header as not ALLOC and takes the slow
 * path, which accepts it (free of a new block is allowed, as glibc allows it). */
#define HAK_FORM_NEW 1u
#define HAK_FORM_ARRAY 2u
#define HAK_HDR_FORM_SHIFT 8
#define HAK_HDR_FORM_MASK ((uint64_t)3 << HAK_HDR_FORM_SHIFT)

#define HAK_SS_MAGIC 0x5355504552534C42ull /* "SUPERSLB", xor'ed with the address */
#define HAK_LARGE_MAGIC 0x4C41524745424C4Bull /* "LARGEBLK", xor'ed with the address */
#define HAK_ALIGN_MAGIC 0x414C49474E4D524Bull /* aligned-block marker, xor'ed with user */

/* Reciprocal division for block-boundary checks: idx = (off * recip) >> HAK_RECIP_SHIFT is
 * exact for off < HAK_SS_SIZE and stride <= HAK_MID_MAX + HAK_STRIDE_EXTRA. */
#define HAK_RECIP_SHIFT 40

typedef struct hak_tcache_s hak_tcache_t;
typedef struct hak_slab_s hak_slab_t;
typedef struct hak_superslab_s hak_superslab_t;

/* ---- lock ----------------------------------------------------------------------------- */

/* A spin lock with yield, used only on slow paths; every global lock is taken around fork. */
typedef struct hak_lock_s {
  _Atomic(int) held; /* 0 free, 1 held */
} hak_lock_t;

/* ---- slab (one 64 KiB slab of a SuperSlab; a run of slabs for mid classes) ------------ */

enum hak_slab_state { HAK_SLAB_FREE = 0, HAK_SLAB_HEAD = 1, HAK_SLAB_CONT = 2 };
enum hak_slab_list { HAK_LIST_NONE = 0, HAK_LIST_PARTIAL, HAK_LIST_FULL, HAK_LIST_PUBLISHED };

struct hak_slab_s {
  /* Owner's cache line: read by every free (class, geometry, owner), written by the owner. */
  void *freelist;             /* local free blocks (base pointers); owner only              */
  uint8_t *data;              /* base of block 0 of the run                                 */
  uint64_t div_inv;           /* inverse of stride's odd factor mod 2^64 (hak_run_block_index) */
  uint32_t stride;            /* bytes per block, multiple of 16                            */
  uint32_t capacity;          /* blocks in the run                                          */
  uint32_t used;              /* blocks out of the run (in use, in a TLS SLL, in a remote
                                 queue or on their way to one); owner only                  */
  uint8_t class_idx;          /* < HAK_NUM_CLASSES once bound, HAK_CLASS_NONE when free     */
  uint8_t head;               /* index of the run's head slab (own index for a head)        */
  uint8_t nslabs;             /* slabs in the run (head only)                               */
  uint8_t state;              /* enum hak_slab_state; SuperSlab lock                        */
  uint8_t list;               /* enum hak_slab_list: which list next/prev link into         */
  uint8_t div_shift;          /* stride's power-of-two factor (hak_run_block_index)         */
  uint16_t head_off;          /* byte offset of slabs[head] in the SuperSlab: pointer -> run
                                 is one load and one add (hak_run_in)                       */
  uint8_t class4;             /* HAK_CLASS_SCALE * class_idx once bound, HAK_CLASS4_NONE when
                                 free: the owner's free addresses its list and counter with it */
  _Atomic(uint64_t) carved;   /* blocks carved so far, <= capacity; written by the owner,
                                 read by any free (relaxed: a block reaches another thread
                                 only after its carving); a quadword, so that free compares
                                 with it in memory (hak_below_word)                         */
  _Atomic(hak_tcache_t *) owner; /* Box 3: changes only in owner.c; NULL = no owner         */
  /* Cross-thread line: the one word other threads write (remote_queue.c has its format), and
   * the list links, which only list moves touch (rare next to frees). */
  _Alignas(HAK_CACHE_LINE) _Atomic(uintptr_t) remote;
  hak_slab_t *next, *prev;    /* owner's partial/full list, or the published list           */
  uint64_t recip;             /* ceil(2^HAK_RECIP_SHIFT / stride): slow paths only          */
};
_Static_assert(sizeof(struct hak_slab_s) == 2 * HAK_CACHE_LINE,
               "a slab is two cache lines: pointer -> run is a shift");

/* ---- SuperSlab ----------------------------------------------------------------------- */

enum hak_ss_list { HAK_SSL_NONE = 0, HAK_SSL_AVAIL, HAK_SSL_EMPTY };

struct hak_superslab_s {
  uint64_t magic;               /* HAK_SS_MAGIC ^ address while registered                  */
  _Atomic(uint64_t) generation; /* bumped every time the region is reused                   */
  uint32_t free_mask;           /* bit i: slab i unbound; SuperSlab lock                    */
  uint32_t dirty_mask;          /* free slabs whose pages may be resident; SuperSlab lock   */
  uint64_t free_since_ms;       /* when it became empty (decay clock of the empty list)     */
  uint64_t dirty_since_ms;      /* when dirty_mask last went from 0 to nonzero              */
  hak_superslab_t *next, *prev; /* available or empty list; SuperSlab lock                  */
  uint8_t list;                 /* enum hak_ss_list                                         */
#if HAKMEM_CHECKED && HAKMEM_TINY_HEADERLESS
  /* The HAK_FORM_* of each block from operator new, one byte per 16 bytes of the SuperSlab
   * (byte (base - ss) / 16; blocks are 16-aligned, so no two share a byte); a mapping of its
   * own, as long-lived as the SuperSlab's. Set by operator new, cleared by every free. */
  uint8_t *forms;
#endif
  hak_slab_t slabs[HAK_SLABS_PER_SS];
};

/* ---- thread cache --------------------------------------------------------------------- */

/* TLS SLL of one class: the fast path. */
typedef struct hak_sll_s {
  void *head;   /* LIFO of base pointers, linked at HAK_LINK_OFF                           */
  int32_t room; /* cap - length: a push that takes it below 0 spills (one sub and one jump) */
  uint32_t cap; /* the length above which a push spills; 0 in the static empty cache         */
} hak_sll_t;

/* Per-class counters of a thread: the COUNTER entries of HAKMEM_CLASS_STATS_FIELDS (hakmem.h),
 * one array per counter, indexed by class, so that the fast path's increment is one
 * instruction. Written by the owning thread only (see hak_stat_add). frees counts local and
 * remote frees; hint_misses the frees of headerless builds with the hint box that the hint did
 * not resolve (hint_hits is derived: stats.c). */
#define HAK_TSTAT_FIELD(name, doc) _Atomic(uint64_t) name[HAK_NUM_CLASSES];
typedef struct hak_tstat_s {
  HAKMEM_CLASS_STATS_FIELDS(HAK_TSTAT_FIELD, HAKMEM_STATS_SKIP, HAKMEM_STATS_SKIP)
} hak_tstat_t;

/* Per-thread event counters of no single class (slow paths): the EVENT entries of
 * HAKMEM_STATS_FIELDS. Written by the owning thread only. */
#define HAK_TEVENT_FIELD(name, doc) _Atomic(uint64_t) name;
typedef struct hak_tevents_s {
  HAKMEM_STATS_FIELDS(HAKMEM_STATS_SKIP, HAK_TEVENT_FIELD, HAKMEM_STATS_SKIP, HAKMEM_STATS_SKIP)
} hak_tevents_t;

#define HAK_HINT_WAYS 4
typedef struct hak_hint_s {
  uintptr_t ss;     /* SuperSlab base, 0 = empty                                          */
  uint64_t gen;     /* its generation when cached                                         */
  uint64_t epoch;   /* hak_ss_release_epoch when cached                                   */
} hak_hint_t;

/* Remote frees into one run held back by the freeing thread, pushed as one chain (one CAS):
 * one way per class, so that frees of many sizes each batch into their own chain. */
_Static_assert(HAK_NUM_CLASSES <= 64, "one bit per class in rbuf_mask");
typedef struct hak_rbuf_s {
  hak_slab_t *run;    /* the run the chain belongs to, NULL when the way is empty          */
  void *first, *last; /* the chain, linked at HAK_LINK_OFF; last's link is set by the push */
  uint32_t n;         /* blocks in the chain; each still counts as out of run              */
} hak_rbuf_t;

enum hak_tc_state { HAK_TC_EMPTY = 0, HAK_TC_LIVE = 1, HAK_TC_DEAD = 2, HAK_TC_GLOBAL = 3 };

struct hak_tcache_s {
  hak_sll_t sll[HAK_NUM_CLASSES];       /* fast path: first in the struct                  */
  hak_hint_t hint[HAK_HINT_WAYS];       /* hint box                                         */
  hak_tstat_t stat;
  hak_tevents_t ev;
  hak_slab_t *partial[HAK_NUM_CLASSES]; /* owned runs that may have free blocks             */
  hak_slab_t *full[HAK_NUM_CLASSES];    /* owned runs with none (armed: remote frees notify) */
  uint32_t refill_streak[HAK_NUM_CLASSES]; /* refills since the last spill, or ACE_SPILLED    */
  uint32_t refills_since_tick;          /* the decay clock is read every 64 refills          */
  _Atomic(uint32_t) busy;               /* inside a slow path that moves blocks (fork reads) */
  uint64_t rbuf_mask;                   /* bit c: rbuf[c] holds a chain                       */
  hak_rbuf_t rbuf[HAK_NUM_CLASSES];     /* remote frees held back, by class (adopt.c)        */
  /* MPSC stack of blocks delivered by remote frees into this cache's armed (full) runs,
   * linked at HAK_LINK_OFF; HAK_NOTIFY_CLOSED once the thread has exited. Each block pins its
   * run (it counts in the run's used) until the owner collects it. */
  _Atomic(void *) notify;
  int state;                            /* enum hak_tc_state                                */
  hak_tcache_t *all_next;               /* list of every cache; tcache lock                 */
  hak_tcache_t *free_next;              /* recycled caches; tcache lock                     */
};

#define HAK_NOTIFY_CLOSED ((void *)1)

/* ---- large allocations ---------------------------------------------------------------- */

/* Header of a large mapping, at the start of its first region, or HAK_LARGE_FAR_HDR bytes
 * below the user pointer for alignments of a region or more. */
typedef struct hak_large_s {
  uint64_t magic;       /* HAK_LARGE_MAGIC ^ address of this header                         */
  uint8_t *map;         /* start of the mapping (region aligned)                            */
  size_t map_size;      /* bytes mapped                                                     */
  uint8_t *user;        /* the pointer handed out; NULL while cached                        */
  size_t usable;        /* user .. end of mapping                                           */
  uint8_t far;          /* header sits below user, in the region before user's              */
  uint8_t fresh;        /* pages never handed out: known zero                               */
  uint8_t form;         /* HAK_FORM_* of the operator new that got it, 0 otherwise          */
  uint64_t freed_ms;    /* when it entered the cache                                        */
  struct hak_large_s *next; /* cache list; large lock                                       */
} hak_large_t;

/* ---- registry ------------------------------------------------------------------------- */

enum hak_region_kind {
  HAK_REGION_NONE = 0,     /* not hakmem's                                                */
  HAK_REGION_SS = 1,       /* a SuperSlab header at the region start                      */
  HAK_REGION_LARGE = 2,    /* a large header at the region start                          */
  HAK_REGION_LARGE_FAR = 3 /* a large header just below the region start                  */
};

/* ---- allocation trace file (trace.c writes it, tools/replay reads it) ------------------- */

/* Layout: a file header in the first HAK_TRACE_HDR_SIZE bytes, then chunks of
 * HAK_TRACE_CHUNK bytes. Each chunk belongs to one thread: a chunk header in its first record
 * slot, then records, ended by the first record whose op is HAK_TR_END (the file's zero fill).
 * A chunk whose magic is not HAK_TRACE_CHUNK_MAGIC was never started and is skipped. The
 * global order of the records of all chunks is their sequence number. */
#define HAK_TRACE_MAGIC 0x31434152544b4148ull     /* "HAKTRAC1" */
#define HAK_TRACE_CHUNK_MAGIC 0x4b4e48434b4148ull /* "HAKCHNK" */
#define HAK_TRACE_VERSION 1
#define HAK_TRACE_HDR_SIZE ((uint64_t)4096)
#define HAK_TRACE_CHUNK ((uint64_t)256 * 1024)
#define HAK_TRACE_SEQ_SHIFT 8 /* seq_op = seq << 8 | op */

/* Build configuration bits of hak_trace_file_t.config. */
#define HAK_TRACE_CFG_HEADERLESS 1u
#define HAK_TRACE_CFG_HINT 2u
#define HAK_TRACE_CFG_CHECKED 4u

/* Operations. ptr is the result of an allocation (0 when it failed), or the pointer freed. */
enum hak_trace_op {
  HAK_TR_END = 0,            /* no record here: the chunk's data ends                      */
  HAK_TR_MALLOC = 1,         /* size                                                       */
  HAK_TR_CALLOC = 2,         /* size = count, aux = element size                           */
  HAK_TR_REALLOC = 3,        /* size, aux = old pointer (reallocarray: size = the product) */
  HAK_TR_FREE = 4,           /* ptr (free, cfree, operator delete)                         */
  HAK_TR_MEMALIGN = 5,       /* size, aux = alignment                                      */
  HAK_TR_ALIGNED_ALLOC = 6,  /* size, aux = alignment                                      */
  HAK_TR_POSIX_MEMALIGN = 7, /* size, aux = alignment                                      */
  HAK_TR_VALLOC = 8,         /* size                                                       */
  HAK_TR_PVALLOC = 9,        /* size                                                       */
  HAK_TR_TRIM = 10,          /* hak_trim, malloc_trim                                      */
  HAK_TR_THREAD_EXIT = 11,   /* the thread's caches are flushed and its slabs orphaned     */
  HAK_TR_OP_COUNT
};

typedef struct hak_trace_file_s {
  uint64_t magic;       /* HAK_TRACE_MAGIC                                                  */
  uint32_t version;     /* HAK_TRACE_VERSION                                                */
  uint32_t pid;         /* the recording process                                            */
  uint32_t record_size; /* sizeof(hak_trace_rec_t)                                          */
  uint32_t chunk_size;  /* HAK_TRACE_CHUNK                                                  */
  uint32_t header_size; /* HAK_TRACE_HDR_SIZE: offset of the first chunk                    */
  uint32_t config;      /* HAK_TRACE_CFG_* of the recording build                           */
} hak_trace_file_t;

typedef struct hak_trace_chunk_s {
  uint64_t magic;  /* HAK_TRACE_CHUNK_MAGIC                                                 */
  uint32_t thread; /* the writing thread's number, 1, 2, ... in order of first call         */
  uint32_t pid;    /* the writing process                                                   */
  uint64_t pad_[2];
} hak_trace_chunk_t;

typedef struct hak_trace_rec_s {
  uint64_t seq_op; /* global sequence number << HAK_TRACE_SEQ_SHIFT | enum hak_trace_op;
                      written last, so a record is either whole or absent                   */
  uint64_t ptr;    /* result, or the pointer freed                                          */
  uint64_t size;   /* bytes asked for (calloc: count)                                       */
  uint64_t aux;    /* alignment, calloc's element size, or realloc's old pointer            */
} hak_trace_rec_t;

/* ---- static checks: layout comes from sizeof/offsetof, never hand-written numbers ------ */

_Static_assert(HAK_SLABS_PER_SS == 32, "free_mask is 32 bits");
_Static_assert(sizeof(hak_superslab_t) < HAK_SLAB_SIZE / 4, "header fits in slab 0");
_Static_assert(HAK_HDR_SIZE == 0 || HAK_HDR_SIZE == 8, "header is one word");
_Static_assert(HAK_NUM_CLASSES <= (1 << HAK_HDR_FORM_SHIFT), "the form bits sit above the class");
_Static_assert(sizeof(hak_large_t) <= 128, "large header fits its reserved space");

_Static_assert(sizeof(hak_trace_chunk_t) == sizeof(hak_trace_rec_t), "chunk header: one slot");
_Static_assert(sizeof(hak_trace_file_t) <= HAK_TRACE_HDR_SIZE, "file header fits");
_Static_assert(HAK_TRACE_CHUNK % HAK_PAGE_SIZE == 0 && HAK_TRACE_HDR_SIZE % HAK_PAGE_SIZE == 0,
               "chunks are mapped at page offsets");

#endif /* HAKMEM_TYPES_H */
