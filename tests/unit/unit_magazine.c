/* Refill / magazine (src/tiny/magazine.c): batch moves between the TLS SLL and slab runs.
 *
 * The test keeps its own set of live blocks and, after refills and spills driven by several
 * allocation patterns, audits every run the thread owns (hak_tc->partial[c] and full[c]):
 *   - owner, class and list tag are right; used <= carved <= capacity;
 *   - used == the run's blocks that are live or on the thread's SLL (nothing else is out);
 *   - used + freelist length == carved, and used counts blocks queued on the run's word too (nothing is lost or counted
 *     twice);
 *   - no block is on both the SLL and a freelist, and no freelist holds a live block or a
 *     block twice; a run on the full list has no free block left;
 *   - every live block and every SLL block lies in a run on those lists.
 * A final pattern moves slabs from one class to another (runs released, then bound again to
 * a class with another stride). Last, ACE: a LIFO churn of four times a class's capacity (set to 16), which
 * refills and spills every round, grows the capacity until the churn fits (no spill in the
 * last rounds); with ACE off it spills in every round. */
#include "unit.h"

#define MAX_LIVE 4096
#define MAX_SLL 2048

static void *live[MAX_LIVE]; /* user pointers */
static size_t nlive;
static void *live_sorted[MAX_LIVE]; /* base pointers */
static void *sll_sorted[MAX_SLL];
static uint8_t seen[1 << 16]; /* per block of one run, while walking its freelist */

static void audit_list(int c, hak_slab_t *m, uint8_t tag, size_t nl, size_t ns, size_t *live_in,
                       size_t *sll_in, size_t *runs) {
  for (; m != NULL; m = m->next) {
    (*runs)++;
    T_CHECK(m->list == tag, "class %d run %p: list tag %d on list %d", c, (void *)m, m->list, tag);
    T_CHECK(m->state == HAK_SLAB_HEAD, "class %d run %p: state %d", c, (void *)m, m->state);
    T_CHECK(m->class_idx == c, "run %p of class %d on the lists of class %d", (void *)m,
            m->class_idx, c);
    T_CHECK(hak_owner_of(m) == hak_tc, "class %d run %p owned by %p", c, (void *)m,
            (void *)hak_owner_of(m));
    T_CHECK(m->used <= m->carved && m->carved <= m->capacity,
            "class %d run %p: used %u carved %u capacity %u", c, (void *)m, m->used,
            (unsigned)m->carved, m->capacity);
    T_CHECK(m->capacity <= sizeof seen, "run capacity %u", m->capacity);
    memset(seen, 0, m->capacity);
    uint32_t fl = 0;
    for (void *b = m->freelist; b != NULL; b = hak_link_get(b)) {
      long idx = t_block_index(m, b);
      T_CHECK(idx >= 0 && (uint32_t)idx < m->carved,
              "class %d run %p: freelist node %p is not a carved block", c, (void *)m, b);
      T_CHECK(!seen[idx], "class %d run %p: block %ld twice on the freelist (cycle?)", c, (void *)m,
              idx);
      seen[idx] = 1;
      T_CHECK(!u_contains(sll_sorted, ns, b), "class %d: block %p on both the SLL and a freelist",
              c, b);
      T_CHECK(!u_contains(live_sorted, nl, b), "class %d: live block %p on a freelist", c, b);
      fl++;
    }
    uint32_t rc = 0; /* blocks queued on the run's word: out, so in used */
    for (void *b = hak_rq_head(atomic_load_explicit(&m->remote, memory_order_acquire)); b != NULL;
         b = hak_link_get(b))
      rc++;
    const uint8_t *lo = m->data, *hi = m->data + (size_t)m->capacity * m->stride;
    size_t li = u_count_range(live_sorted, nl, lo, hi);
    size_t si = u_count_range(sll_sorted, ns, lo, hi);
    T_CHECK(m->used == li + si + rc,
            "class %d run %p: used %u, but %zu of its blocks are live, %zu on the SLL, %u queued",
            c, (void *)m, m->used, li, si, rc);
    T_CHECK(m->used + fl == m->carved, "class %d run %p: used %u + freelist %u != carved %u", c,
            (void *)m, m->used, fl, (unsigned)m->carved);
    if (tag == HAK_LIST_FULL)
      T_CHECK(m->freelist == NULL && m->carved == m->capacity,
              "class %d run %p on the full list has free blocks (freelist %u, carved %u of %u)", c,
              (void *)m, fl, (unsigned)m->carved, m->capacity);
    *live_in += li;
    *sll_in += si;
  }
}

/* Audits every run of class c this thread owns against the live set and the SLL. */
static void audit(int c) {
  hak_sll_t *s = &hak_tc->sll[c];
  T_CHECK(hak_sll_validate(s), "class %d: invalid SLL (count %u cap %u)", c, hak_sll_count(s),
          s->cap);
  T_CHECK(hak_sll_count(s) <= MAX_SLL, "SLL count %u", hak_sll_count(s));
  size_t ns = 0;
  for (void *b = s->head; b != NULL; b = hak_link_get(b)) sll_sorted[ns++] = b;
  u_sort_ptrs(sll_sorted, ns);
  for (size_t i = 0; i < nlive; i++) live_sorted[i] = hak_bridge_base(live[i]);
  u_sort_ptrs(live_sorted, nlive);
  for (size_t i = 1; i < ns; i++)
    T_CHECK(sll_sorted[i] != sll_sorted[i - 1], "class %d: block %p twice on the SLL", c,
            sll_sorted[i]);
  for (size_t i = 0; i < ns; i++)
    T_CHECK(!u_contains(live_sorted, nlive, sll_sorted[i]), "class %d: live block %p on the SLL", c,
            sll_sorted[i]);
  size_t live_in = 0, sll_in = 0, runs = 0;
  audit_list(c, hak_tc->partial[c], HAK_LIST_PARTIAL, nlive, ns, &live_in, &sll_in, &runs);
  audit_list(c, hak_tc->full[c], HAK_LIST_FULL, nlive, ns, &live_in, &sll_in, &runs);
  T_CHECK(live_in == nlive, "class %d: %zu live blocks, %zu of them in owned runs", c, nlive,
          live_in);
  T_CHECK(sll_in == ns, "class %d: %zu SLL blocks, %zu of them in owned runs", c, ns, sll_in);
  T_CHECK(nlive == 0 || runs > 0, "class %d: live blocks but no owned run", c);
}

static void alloc_one(int c) {
  T_CHECK(nlive < MAX_LIVE, "live set full");
  void *p = hak_malloc(hak_class_size(c));
  T_CHECK(p != NULL, "hak_malloc failed");
  live[nlive++] = p;
}

static void free_at(size_t i) {
  hak_free(live[i]);
  live[i] = live[--nlive];
}

static uint64_t stat_of(int c, int which) {
  hak_tstat_t *t = &hak_tc->stat;
  return atomic_load_explicit(which ? &t->spills[c] : &t->refills[c], memory_order_relaxed);
}

static void patterns(int c, size_t n) {
  uint64_t refills0 = stat_of(c, 0), spills0 = stat_of(c, 1);
  audit(c);
  /* 1. n mallocs, then n frees in allocation order. */
  for (size_t i = 0; i < n; i++) {
    alloc_one(c);
    if (i % 97 == 0) audit(c);
  }
  audit(c);
  while (nlive > 0) {
    hak_free(live[0]);
    memmove(live, live + 1, --nlive * sizeof live[0]);
    if (nlive % 97 == 0) audit(c);
  }
  audit(c);
  /* 2. n mallocs, free every other one, refill half, free the rest newest first. */
  for (size_t i = 0; i < n; i++) alloc_one(c);
  for (size_t i = 0; i < nlive; i += 2) {
    hak_free(live[i]);
    live[i] = NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < nlive; i++)
    if (live[i] != NULL) live[k++] = live[i];
  nlive = k;
  audit(c);
  for (size_t i = 0; i < n / 2; i++) alloc_one(c);
  audit(c);
  while (nlive > 0) {
    free_at(nlive - 1);
    if (nlive % 89 == 0) audit(c);
  }
  audit(c);
  /* 3. random mallocs and frees around a live set of about n / 2. */
  uint64_t rng = 0x1234567 + (uint64_t)c;
  for (size_t op = 0; op < 8 * n; op++) {
    if (nlive == 0 || (nlive < n && t_xorshift(&rng) % 2 == 0))
      alloc_one(c);
    else
      free_at(t_xorshift(&rng) % nlive);
    if (op % 211 == 0) audit(c);
  }
  audit(c);
  while (nlive > 0)
    free_at(t_xorshift(&rng) % nlive);
  audit(c);
  T_CHECK(stat_of(c, 0) > refills0 + 2, "class %d: only %llu refills", c,
          (unsigned long long)(stat_of(c, 0) - refills0));
  T_CHECK(stat_of(c, 1) > spills0 + 2, "class %d: only %llu spills", c,
          (unsigned long long)(stat_of(c, 1) - spills0));
}

/* Runs emptied by one class are bound again to a class with another stride, so new blocks
 * are carved where old blocks of another geometry were freed. */
static void class_switch(int from, int to, size_t n) {
  for (size_t i = 0; i < n; i++) alloc_one(from);
  audit(from);
  while (nlive > 0) free_at(nlive - 1);
  audit(from);
  for (size_t i = 0; i < n; i++) alloc_one(to);
  audit(to);
  for (size_t i = 0; i < nlive; i++) memset(live[i], 0xC3, hak_class_size(to));
  while (nlive > 0) free_at(nlive - 1);
  audit(to);
  audit(from);
}

/* Rounds of n mallocs of class c then n frees, newest first; the spills of the last round. */
static uint64_t lifo_rounds(int c, size_t n, int rounds) {
  uint64_t before = 0;
  for (int r = 0; r < rounds; r++) {
    before = stat_of(c, 1);
    for (size_t i = 0; i < n; i++) alloc_one(c);
    while (nlive > 0) free_at(nlive - 1);
  }
  return stat_of(c, 1) - before;
}

/* Sets class c's capacity to cap: the list is emptied first (its blocks allocated), so that
 * it never holds more than its capacity, then freed back. */
static void set_cap(int c, uint32_t cap) {
  hak_sll_t *s = &hak_tc->sll[c];
  while (hak_sll_count(s) > 0) alloc_one(c);
  hak_sll_set_cap(s, cap);
  while (nlive > 0) free_at(nlive - 1);
}

static void ace_oscillation(int c) {
  hak_sll_t *s = &hak_tc->sll[c];
  uint32_t cap0 = 16;
  size_t n = 4 * (size_t)cap0;
  set_cap(c, cap0);
  T_CHECK(hak_opt.ace_enabled, "ACE is off by default");
  uint64_t last = lifo_rounds(c, n, 20);
  T_CHECK(last == 0 && s->cap >= n,
          "ACE on: %llu spills in the last round, cap %u -> %u for a "
          "churn of %zu",
          (unsigned long long)last, cap0, s->cap, n);
  hak_opt.ace_enabled = false;
  set_cap(c, cap0);
  last = lifo_rounds(c, n, 5);
  T_CHECK(last > 0 && s->cap == cap0, "ACE off: %llu spills in the last round, cap %u -> %u",
          (unsigned long long)last, cap0, s->cap);
  hak_opt.ace_enabled = true;
  audit(c);
}

int main(void) {
  t_thread_cache();
  /* Classes this thread has no run of yet (libc may have allocated some in override builds). */
  const int candidates[] = {2, 3, 5, 9, 14, 17, 19, 22, 26, 31};
  bool clean[HAK_NUM_CLASSES] = {false};
  int tested = 0;
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    int c = candidates[i];
    if (hak_tc->partial[c] != NULL || hak_tc->full[c] != NULL) continue;
    clean[c] = true;
    patterns(c, c < TINY_NUM_CLASSES ? 3000 : 1000);
    tested++;
  }
  T_CHECK(tested >= 6, "only %d classes could be tested", tested);
  /* Strides that are not multiples of each other, so new blocks start inside old ones. */
  T_CHECK(clean[2] && clean[3] && clean[9] && clean[14], "classes 2, 3, 9, 14 not all clean");
  class_switch(2, 3, 4000);
  class_switch(9, 14, 2000);
  ace_oscillation(5);
  printf("unit_magazine: %d classes OK\n", tested);
  return 0;
}
