/* Registry lookup (inline half of registry.c): address -> kind of hakmem region. */
#ifndef HAKMEM_REGISTRY_H
#define HAKMEM_REGISTRY_H

#include "../internal.h"

/* The kind of an address below 1 << HAK_ADDR_BITS (the caller has checked). */
static inline unsigned hak_registry_kind_below(uintptr_t addr) {
  return atomic_load_explicit(&hak_registry_map[addr >> HAK_SS_SHIFT], hak_relaxed);
}

/* One load; never touches the region itself, so any address can be asked about. */
static inline unsigned hak_registry_kind(uintptr_t addr) {
  if (hak_unlikely(addr >> HAK_ADDR_BITS)) return HAK_REGION_NONE;
  return hak_registry_kind_below(addr);
}

/* The SuperSlab containing addr if registered with an intact magic, else NULL; never fails. */
static inline hak_superslab_t *hak_registry_ss_peek(uintptr_t addr) {
  if (hak_registry_kind(addr) != HAK_REGION_SS) return NULL;
  hak_superslab_t *ss = hak_ss_of((const void *)addr);
  return ss->magic == (HAK_SS_MAGIC ^ (uintptr_t)ss) ? ss : NULL;
}

/* The SuperSlab containing addr, validated (registered and magic intact), or NULL; addr is
 * below 1 << HAK_ADDR_BITS (the caller has checked). */
static inline hak_superslab_t *hak_registry_ss_below(uintptr_t addr) {
  if (hak_registry_kind_below(addr) != HAK_REGION_SS) return NULL;
  hak_superslab_t *ss = hak_ss_of((const void *)addr);
  if (hak_unlikely(ss->magic != (HAK_SS_MAGIC ^ (uintptr_t)ss)))
    hak_fail("registered SuperSlab has a bad magic", (void *)addr, ss, -1);
  return ss;
}

/* The SuperSlab containing addr, validated (registered and magic intact), or NULL. */
static inline hak_superslab_t *hak_registry_ss(uintptr_t addr) {
  if (hak_unlikely(addr >> HAK_ADDR_BITS)) return NULL;
  return hak_registry_ss_below(addr);
}

#endif /* HAKMEM_REGISTRY_H */
