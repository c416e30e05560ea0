/* Registry: address -> kind of hakmem region, for every 2 MiB region of the address space.
 *
 * Boundary: hak_registry_set() / hak_registry_clear() when a region is mapped for hakmem or
 * before it is unmapped; hak_registry_kind() (registry.h) for lookups.
 *
 * A flat byte map of 2^(47-21) entries (64 MiB of virtual memory in .bss, committed a page at
 * a time as regions are registered: one page covers 8 GiB of address space). A lookup is one
 * load and never touches the region, so a pointer hakmem never returned is recognised without
 * touching unmapped memory.
 *
 * Invariants:
 *   - an entry is nonzero only while its region is mapped and owned by hakmem;
 *   - a region is unregistered before it is unmapped (callers: superslab.c, large.c), and the
 *     SuperSlab release epoch is bumped with it so hints cached before go stale;
 *   - a reused SuperSlab keeps its entry but bumps its generation; lookups that carry a
 *     generation (the hint box) compare it.
 */
#include "registry.h"

_Atomic(uint8_t) hak_registry_map[(size_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT)];

void hak_registry_set(uintptr_t region, enum hak_region_kind kind) {
  hak_assert((region & HAK_SS_MASK) == 0 && (region >> HAK_ADDR_BITS) == 0);
  hak_assert(atomic_load_explicit(&hak_registry_map[region >> HAK_SS_SHIFT], hak_relaxed) ==
             HAK_REGION_NONE);
  atomic_store_explicit(&hak_registry_map[region >> HAK_SS_SHIFT], (uint8_t)kind,
                        memory_order_release);
}

void hak_registry_clear(uintptr_t region) {
  hak_assert((region & HAK_SS_MASK) == 0);
  atomic_store_explicit(&hak_registry_map[region >> HAK_SS_SHIFT], HAK_REGION_NONE,
                        memory_order_release);
}
