/* Configuration levels of hakmem, all in one place.
 *
 * Compile time (CMake cache variable = macro, always defined to 0 or 1 by the build):
 *
 *   CMake option              macro                      meaning
 *   HAKMEM_TINY_HEADERLESS    HAKMEM_TINY_HEADERLESS     0: 8-byte header before each block
 *                                                        1: no header, class from the slab
 *   HAKMEM_TINY_SS_TLS_HINT   HAKMEM_TINY_SS_TLS_HINT    compile the hint box (headerless only)
 *   HAKMEM_DEBUG_HDRLESS      HAKMEM_DEBUG_HDRLESS       one-shot diagnostic logs
 *   HAKMEM_DEBUG              HAKMEM_DEBUG               hak_assert() checks on
 *   HAKMEM_CHECKED            HAKMEM_CHECKED             hak_assert_expensive() too: fill
 *                                                        patterns, protected links, headerless
 *                                                        double free (src/checked.c; implies
 *                                                        HAKMEM_DEBUG)
 *   HAKMEM_OVERRIDE           HAKMEM_OVERRIDE            export malloc, free, operator new ...
 *   HAKMEM_SANITIZER=asan     HAKMEM_ASAN                poison free blocks for ASan
 *   HAKMEM_SANITIZER=tsan     HAKMEM_TSAN                built for ThreadSanitizer
 *   HAKMEM_SANITIZER=fuzz     HAKMEM_ASAN                clang, ASan + UBSan + libFuzzer
 *   HAKMEM_PLANT_BUG=<name>   HAKMEM_PLANT_BUG (1..13)   tests only: one planted bug, below
 *   (target hakmem_sched)     HAKMEM_SCHED_POINTS        tests only: the schedule points
 *                                                        (internal.h) call a hook; 0 in
 *                                                        every library that is installed
 *
 * Run time (environment, read once at process start by options.c; the table of names and
 * defaults lives there and in the README):
 *
 *   HAKMEM_TINY_SS_TLS_HINT=1   0: the hint box is never filled, every free uses the registry
 *   HAKMEM_TINY_SS_ADOPT=1      0: orphaned slabs are released by their last free, not adopted
 *   HAKMEM_TINY_RF_FORCE_NOTIFY=0  1: every remote free notifies, not only the first
 *   HAKMEM_TINY_MUST_ADOPT=0    1: every refill tries adoption before its own slabs
 *   HAKMEM_TINY_REMOTE_BATCH=32 remote frees into one run a thread holds back and pushes as one
 *                               chain (one CAS); 1: every remote free is pushed at once
 *   HAKMEM_ACE_ENABLED=1        0: TLS SLL capacities stay at their initial value
 *   HAKMEM_STATS=0              1: print the counters at exit; json:PATH: write them as JSON
 *   HAKMEM_TRACE=PATH           record every allocation call to PATH (hakmem-replay reads it)
 *   HAKMEM_VERBOSE=0            1: print version, build configuration and options at start
 *   HAKMEM_DECAY_MS=1000        how long freed memory is kept before it goes back to the OS
 *   HAKMEM_LARGE_CACHE_MB=64    how much freed large mappings are kept for reuse, at least
 *   HAKMEM_LARGE_CACHE_PCT=20   ... and up to this share of the live large bytes when more
 *   HAKMEM_SLAB_DIRTY_PCT=400   free slabs whose pages stay populated until the decay: at most
 *                               this share of the bound slabs (and 4 MiB); the oldest beyond it
 *                               are purged at once; 0: no limit, the decay alone decides
 *   HAKMEM_LARGE_MOVE=0         1: a large request no cached mapping fits moves the pages of
 *                               smaller ones into its new mapping (mremap) instead of faulting
 *   HAKMEM_PURGE_THREAD=1       a background thread (purge.c) runs the decay while memory is
 *                               pending, so an idle program returns it too; 0: no thread is
 *                               ever created, the decay runs on slow paths of later calls only
 *   HAKMEM_THP=2                transparent huge pages: 2 for large blocks only (a block that
 *                               fills its pages faults 512 times less), 1 for every mapping,
 *                               0 refused everywhere
 *   HAKMEM_CRASH_REPORT=0       1: a fatal signal prints a crash report (crash.c), then the
 *                               default action runs (same exit status, same core)
 *   HAKMEM_CRASH_DIR=PATH       with the report: the process enters PATH before the core dump
 *   HAKMEM_CRASH_GCORE=0        with the report: 1: gcore writes PATH/core.<pid> as well
 */
#ifndef HAKMEM_CONFIG_H
#define HAKMEM_CONFIG_H

#ifndef HAKMEM_TINY_HEADERLESS
#define HAKMEM_TINY_HEADERLESS 0
#endif
#ifndef HAKMEM_TINY_SS_TLS_HINT
#define HAKMEM_TINY_SS_TLS_HINT 1
#endif
#ifndef HAKMEM_DEBUG_HDRLESS
#define HAKMEM_DEBUG_HDRLESS 0
#endif
#ifndef HAKMEM_DEBUG
#define HAKMEM_DEBUG 0
#endif
#ifndef HAKMEM_CHECKED
#define HAKMEM_CHECKED 0
#endif
#ifndef HAKMEM_OVERRIDE
#define HAKMEM_OVERRIDE 1
#endif
#ifndef HAKMEM_ASAN
#define HAKMEM_ASAN 0
#endif
#ifndef HAKMEM_TSAN
#define HAKMEM_TSAN 0
#endif

#ifndef HAKMEM_PLANT_BUG
#define HAKMEM_PLANT_BUG 0
#endif
#ifndef HAKMEM_SCHED_POINTS
#define HAKMEM_SCHED_POINTS 0
#endif

/* Planted bugs, for the proof that tests/regress and the fuzz harnesses catch each root cause
 * of the debug playbook. Numbered as HAKMEM_PLANT_BUG_NAMES in cmake/Options.cmake; a normal
 * build has none, and each site is a single #if HAK_PLANTED(...) next to the correct code. */
#define HAK_PLANT_stale_hint 1               /* hint hit without the generation/epoch check */
#define HAK_PLANT_sll_userptr 2              /* free pushes the user pointer on the TLS SLL */
#define HAK_PLANT_registry_late_unregister 3 /* SuperSlab unmapped, registry entry left     */
#define HAK_PLANT_class_drift 4              /* class read from the pointer's slab, not the run head */
#define HAK_PLANT_magazine_userptr 5         /* spill stores user pointers on the freelist  */
#define HAK_PLANT_remote_double_drain 6      /* drain leaves the remote queue in place      */
#define HAK_PLANT_double_offset 7            /* aligned free skips the bridge offset        */
#define HAK_PLANT_remote_touch_after_push 8  /* a remote free reads its run after the push  */
#define HAK_PLANT_stale_notify 9             /* notify target read before the CAS, trusted  */
#define HAK_PLANT_orphan_stale_count 10      /* orphan count read before the last drain     */
#define HAK_PLANT_uncarved_free 11           /* free accepts a block never carved           */
#define HAK_PLANT_fork_no_takeover 12        /* fork child leaves other threads' runs       */
#define HAK_PLANT_large_grow_late_unregister 13 /* old place of a grown large block: cleared late */
#define HAK_PLANTED(name) (HAKMEM_PLANT_BUG == HAK_PLANT_##name)

/* C++ delete forms and sizes are checked (api.c: hak_new_record, hak_delete_check) where the
 * form of a block has a place to live: its header (header mode) or the checked build's form
 * table (headerless). Other builds pass every delete straight to free. */
#define HAK_DELETE_CHECKED (!HAKMEM_TINY_HEADERLESS || HAKMEM_CHECKED)

/* The hint box exists only where free has to find the SuperSlab without a header. */
#define HAK_HINT_COMPILED (HAKMEM_TINY_HEADERLESS && HAKMEM_TINY_SS_TLS_HINT)

/* Geometry. Derived sizes are static-asserted in types.h. */
#define HAK_SS_SHIFT 21 /* SuperSlab: 2 MiB, aligned to its size */
#define HAK_SLAB_SHIFT 16 /* slab: 64 KiB */
#define HAK_TINY_MAX 1024 /* largest tiny request */
#define HAK_MID_MAX (256 * 1024) /* largest request served by slab runs */
#define HAK_ADDR_BITS 47 /* user address space on x86-64 */

#endif /* HAKMEM_CONFIG_H */
