/* Fuzz harness of the registry (src/tiny/registry.c): address -> kind of hakmem region.
 *
 * The input drives the real allocator so that regions are mapped, reused and unmapped the way
 * they are in a program: allocations of tiny, mid and large sizes into slots, frees, trims
 * (which unmap empty SuperSlabs and cached large mappings at once), and lookups of arbitrary
 * addresses. Every region the harness has seen is remembered. After every step:
 *   - a region the registry names is mapped (mincore succeeds): it never returns an unmapped
 *     region, which requires unregistering before unmapping;
 *   - a region registered as a SuperSlab has its magic (the peek finds it), so a recycled
 *     region is never resolved under a stale entry;
 *   - every live block's region is registered with the kind its size implies, and
 *     hak_owns() agrees;
 *   - addresses hakmem never handed out (the stack, the harness's globals, addresses beyond
 *     the user address space) are not hakmem's.
 *
 * Input: a sequence of operations, one byte each followed by its arguments:
 *   0 slot size-kind size16   allocate into slot (kind 0: tiny, 1: mid, 2: large)
 *   1 slot                    free slot
 *   2                         hak_trim()
 *   3 region-index offset32   look up an address inside a remembered region
 *   4 addr32 addr32           look up an arbitrary 64-bit address
 *   5                         free every slot
 *   6                         end the thread running the operations (its caches are flushed and
 *                             its runs released or orphaned), go on in a new one
 * Operations run in a thread of their own: only thread exit empties a thread's caches, so only
 * then can a SuperSlab become empty and be unmapped by a trim. The last thread frees every slot;
 * after it a trim, and the checks once more. */
#include <sys/mman.h>
#include <unistd.h>

#include "fast.h"
#include "fuzz.h"
#include "fuzz_seq.h"

#define SLOTS 32
#define MAX_REGIONS 512
#define MAX_OPS 256

static void *slot[SLOTS];
static size_t slot_size[SLOTS];
static uintptr_t regions[MAX_REGIONS];
static unsigned nregions;

static bool region_mapped(uintptr_t r) {
  unsigned char v;
  return mincore((void *)r, HAK_PAGE_SIZE, &v) == 0;
}

static void remember(uintptr_t r) {
  r &= ~(uintptr_t)HAK_SS_MASK;
  for (unsigned i = 0; i < nregions; i++)
    if (regions[i] == r) return;
  if (nregions < MAX_REGIONS) regions[nregions++] = r;
}

static size_t size_of(unsigned kind, uint16_t v) {
  switch (kind % 3) {
  case 0: return v % (HAK_TINY_MAX + 1);
  case 1: return HAK_TINY_MAX + 1 + (size_t)v * 4 % (HAK_MID_MAX - HAK_TINY_MAX);
  default: return HAK_MID_MAX + 1 + (size_t)v * 64;
  }
}

/* The registry's answer for addr must be consistent with what is mapped there. */
static void check_address(uintptr_t addr) {
  unsigned kind = hak_registry_kind(addr);
  T_INVARIANT(kind <= HAK_REGION_LARGE_FAR, "kind %u of %#lx out of range", kind,
              (unsigned long)addr);
  if (kind == HAK_REGION_NONE) return;
  uintptr_t r = addr & ~(uintptr_t)HAK_SS_MASK;
  T_INVARIANT(region_mapped(r), "registry names unmapped region %#lx as kind %u", (unsigned long)r,
              kind);
  if (kind == HAK_REGION_SS)
    T_INVARIANT(hak_registry_ss_peek(addr) == (hak_superslab_t *)r,
                "region %#lx registered as a SuperSlab has no valid magic", (unsigned long)r);
}

static void check_all(void) {
  for (unsigned i = 0; i < nregions; i++) check_address(regions[i]);
  for (int i = 0; i < SLOTS; i++) {
    if (slot[i] == NULL) continue;
    uintptr_t u = (uintptr_t)slot[i];
    unsigned kind = hak_registry_kind(u);
    if (slot_size[i] <= HAK_SLAB_REQ_MAX)
      T_INVARIANT(kind == HAK_REGION_SS, "live block %p of %zu bytes: kind %u", slot[i],
                  slot_size[i], kind);
    else
      T_INVARIANT(kind == HAK_REGION_LARGE, "live large block %p: kind %u", slot[i], kind);
    T_INVARIANT(hak_owns(slot[i]), "hak_owns(%p) is 0 for a live block", slot[i]);
  }
  int local;
  T_INVARIANT(hak_registry_kind((uintptr_t)&local) == HAK_REGION_NONE, "the stack is registered");
  T_INVARIANT(hak_registry_kind((uintptr_t)&slot) == HAK_REGION_NONE, "a global is registered");
  T_INVARIANT(!hak_owns(&local) && !hak_owns(slot), "hak_owns accepts a foreign address");
}

static void free_slot(int i) {
  hak_free(slot[i]);
  slot[i] = NULL;
}

static void free_all(void) {
  for (int i = 0; i < SLOTS; i++)
    if (slot[i] != NULL) free_slot(i);
}

/* Runs one operation; returns false when the thread should end. */
static bool run_op(f_in_t *in, bool may_end) {
  switch (f_u8(in) % 7) {
  case 0: {
    int i = (int)f_below(in, SLOTS);
    unsigned kind = f_u8(in);
    size_t n = size_of(kind, f_u16(in));
    if (slot[i] != NULL) free_slot(i);
    slot[i] = hak_malloc(n);
    T_INVARIANT(slot[i] != NULL, "hak_malloc(%zu) failed", n);
    slot_size[i] = n;
    remember((uintptr_t)slot[i]);
    break;
  }
  case 1: {
    int i = (int)f_below(in, SLOTS);
    if (slot[i] != NULL) free_slot(i);
    break;
  }
  case 2:
    hak_trim();
    break;
  case 3: {
    unsigned r = nregions ? f_below(in, nregions) : 0;
    uint32_t off = f_u32(in) & (uint32_t)HAK_SS_MASK;
    if (nregions) check_address(regions[r] + off);
    break;
  }
  case 4: {
    uint64_t a = f_u32(in);
    a |= (uint64_t)f_u32(in) << 32;
    unsigned kind = hak_registry_kind((uintptr_t)a);
    if (a >> HAK_ADDR_BITS)
      T_INVARIANT(kind == HAK_REGION_NONE, "address %#llx beyond the user space has kind %u",
                  (unsigned long long)a, kind);
    check_address((uintptr_t)a);
    break;
  }
  case 5:
    free_all();
    break;
  default:
    if (may_end) return false;
    break;
  }
  check_all();
  return true;
}

/* Every thread but the last ends after an operation, so MAX_OPS + 1 is no limit. */
static const f_seq_t seq = {.op = run_op, .finish = free_all, .joined = check_all,
                            .max_ops = MAX_OPS, .max_threads = MAX_OPS + 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  f_seq_run(&seq, data, size);
  hak_trim();
  check_all();
  return 0;
}
