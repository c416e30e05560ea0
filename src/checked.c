/* Checked build (HAKMEM_CHECKED): the content checks that make a preloaded hakmem find heap
 * corruption. Nothing of this file is compiled into the other builds.
 *
 * Responsibility: free blocks carry a fill pattern that is verified when they leave the free
 * lists; every link stored in a free block is protected by a per-process secret and validated
 * when it is followed; a second free of a free block is caught in headerless mode; the form
 * table of operator new's blocks in headerless mode (ss->forms, read by api.c's delete check,
 * cleared here by every free); and the expensive invariant walks of the TLS SLL and of a run's
 * freelist.
 *
 * Boundary: the free lists reach this box only through
 *   - hak_link_set() / hak_link_get() (tls_sll.h): the one encode/decode pair of every list;
 *   - hak_checked_freed() from hak_bridge_in() (every free), hak_checked_fill() where a fresh
 *     block is carved (magazine.c), hak_checked_taken() from hak_sll_pop() (every block that
 *     leaves a TLS SLL, to a caller of malloc or back to its run);
 *   - the walks hak_checked_sll_ok() and hak_checked_run_ok(), under hak_assert_expensive().
 *
 * Invariants (checked builds):
 *   - a block on any free list (TLS SLL, slab freelist, remote queue) holds HAK_FREE_FILL in
 *     every byte past its link word, and in header mode the header HAK_HDR_FREE(class);
 *   - its link word holds next ^ hak_link_secret ^ (its own address); decoded, it is NULL or
 *     the base of a carved block of a bound run of the same class in a registered SuperSlab;
 *   - a block handed out has link word 0, which never decodes to a valid link: the secret has
 *     its top bit set, so a stored word decodes to a canonical address only if its own top bit
 *     is set (pointers and small integers a program writes never are);
 *   - a run's freelist has carved - used blocks, all of the run, none repeated.
 *
 * Double free (headerless mode, where no header tells): a block that is freed while every byte
 * past its link word is HAK_FREE_FILL and its link word decodes to a valid link is free
 * already. A legal program trips this only by writing the fill byte over a whole block and, in
 * its first word, a valid link encoded with this process's secret; hakmem clears the link word
 * of every block it hands out, so even a block freed without ever being written passes.
 */
#include <string.h>

#include "internal.h"
#include "tiny/registry.h"
#include "tiny/tls_sll.h"

#if HAKMEM_CHECKED

uint64_t hak_link_secret;

#define FILL_WORD (0x0101010101010101ull * HAK_FREE_FILL)

/* A 64-bit mix (splitmix64's finaliser constants): every input bit moves every output bit. */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void hak_checked_init(void) {
  int on_stack;
  uint64_t seed = hak_os_entropy() ^ (uint64_t)(uintptr_t)&on_stack;
  seed = mix64(seed ^ mix64((uint64_t)(uintptr_t)&hak_link_secret));
  hak_link_secret = seed | (1ull << 63);
}

/* ---- blocks ---------------------------------------------------------------------------------- */

static hak_slab_t *run_of(const void *b) {
  hak_superslab_t *ss = hak_ss_of(b);
  hak_slab_t *m = &ss->slabs[((uintptr_t)b >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_SS - 1)];
  return &ss->slabs[m->head];
}

/* True when b is the base of a block run m has carved. */
static bool carved_in(const hak_slab_t *m, uintptr_t b) {
  uint64_t off = (uint64_t)(b - (uintptr_t)m->data);
  if (off >= (uint64_t)m->carved * m->stride) return false;
  return ((off * m->recip) >> HAK_RECIP_SHIFT) * m->stride == off;
}

/* True when b is the base of a carved block of a bound run of class cls. Touches only hakmem's
 * metadata: an address outside known_ss is first looked up in the registry. */
static bool block_ok(uintptr_t b, hak_class_t cls, const hak_superslab_t *known_ss) {
  if ((b & 15) != (16 - HAK_HDR_SIZE) % 16) return false;
  if (hak_ss_of((const void *)b) != known_ss && hak_registry_ss_peek(b) == NULL) return false;
  const hak_slab_t *m = run_of((const void *)b);
  return m->class_idx == cls && carved_in(m, b);
}

bool hak_checked_link_ok(const void *base, const void *next) {
  return next == NULL || block_ok((uintptr_t)next, run_of(base)->class_idx, hak_ss_of(base));
}

void hak_checked_link_fail(const void *base) {
  hak_fail("corrupt free-list link", (const uint8_t *)base + HAK_HDR_SIZE, hak_ss_of(base),
           run_of(base)->class_idx);
}

/* ---- fill pattern ---------------------------------------------------------------------------- */

/* The pattern covers every byte past the link word (the header and the link have their own). */
#define FILL_OFF (HAK_LINK_OFF + sizeof(void *))

/* Offset of the first byte of [p, p + n) that is not HAK_FREE_FILL, or n. p and n are
 * multiples of 8. */
size_t hak_checked_fill_changed(const void *p, size_t n) {
  const uint64_t *w = p;
  size_t words = n / 8;
  /* Whole cache lines with one branch each: the common case is an intact block. */
  size_t i = 0;
  for (; i + 8 <= words; i += 8) {
    uint64_t diff = 0;
    for (size_t k = 0; k < 8; k++) diff |= w[i + k] ^ FILL_WORD;
    if (diff != 0) break;
  }
  for (; i < words; i++)
    if (w[i] != FILL_WORD) break;
  return i * 8;
}

void hak_checked_fill(void *base, hak_class_t cls, uint32_t stride) {
#if !HAKMEM_TINY_HEADERLESS
  *(uint64_t *)base = HAK_HDR_FREE(cls);
#endif
  (void)cls;
  memset((uint8_t *)base + FILL_OFF, HAK_FREE_FILL, stride - FILL_OFF);
}

void hak_checked_freed(void *base, hak_class_t cls, uint32_t stride) {
#if HAKMEM_TINY_HEADERLESS
  size_t n = stride - FILL_OFF;
  if (hak_unlikely(hak_checked_fill_changed((uint8_t *)base + FILL_OFF, n) == n &&
                   hak_checked_link_ok(base, hak_link_decode(base))))
    hak_fail("double free", (uint8_t *)base + HAK_HDR_SIZE, hak_ss_of(base), (int)cls);
  *hak_checked_form_of(base) = 0; /* the next owner of the block may come from malloc */
#endif
  hak_checked_fill(base, cls, stride);
}

#if HAKMEM_TINY_HEADERLESS
uint8_t *hak_checked_form_of(const void *base) {
  return &hak_ss_of(base)->forms[((uintptr_t)base & HAK_SS_MASK) / 16];
}
#endif

/* A free block's content is what hak_checked_fill() left, but for its link; fails if not. */
static void verify_free(const void *base, const hak_slab_t *m) {
  bool intact = hak_checked_fill_changed((const uint8_t *)base + FILL_OFF,
                                         m->stride - FILL_OFF) == m->stride - FILL_OFF;
#if !HAKMEM_TINY_HEADERLESS
  intact = intact && *(const uint64_t *)base == HAK_HDR_FREE(m->class_idx);
#endif
  if (hak_unlikely(!intact))
    hak_fail("free block modified after free (use after free?)",
             (const uint8_t *)base + HAK_HDR_SIZE, hak_ss_of(base), m->class_idx);
}

void hak_checked_taken(void *base) {
  verify_free(base, run_of(base));
  *(void **)((uint8_t *)base + HAK_LINK_OFF) = NULL;
}

/* ---- invariant walks ------------------------------------------------------------------------- */

bool hak_checked_sll_ok(const hak_tcache_t *tc, hak_class_t cls) {
  const hak_sll_t *s = &tc->sll[cls];
  if (!hak_sll_validate(s)) return false;
  for (const void *b = s->head; b != NULL; b = hak_link_decode(b)) {
    if (!block_ok((uintptr_t)b, cls, NULL)) return false;
    if (hak_owner_of(run_of(b)) != tc) return false;
  }
  return true;
}

bool hak_checked_run_ok(const hak_slab_t *m) {
  uint32_t n = 0;
  for (const void *b = m->freelist; b != NULL; b = hak_link_decode(b)) {
    if (!carved_in(m, (uintptr_t)b) || ++n > m->carved) return false;
    verify_free(b, m);
  }
  return m->used <= m->carved && n == m->carved - m->used;
}

#endif /* HAKMEM_CHECKED */
