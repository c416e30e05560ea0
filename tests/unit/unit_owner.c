/* Box 3, ownership (src/tiny/owner.c): the life cycle of a slab run.
 *
 * - the transitions on a fake cache: fresh -> OWNED (on its partial list, owner set), fill ->
 *   FULL (armed: the word says NOTIFY, on the full list; refused while blocks are queued),
 *   unfull -> OWNED, release -> FREE (owner NULL, word 0); orphan of a run with blocks out ->
 *   PUBLISHED (word ORPHAN|PUBLISHED with the count of blocks out, on no cache list), adopt ->
 *   OWNED by another cache with the queued blocks drained; a bind of an owned run and a release
 *   by a cache that does not own the run are fail-fast aborts;
 * - 4 threads racing to adopt the same orphan word, 1000 rounds: exactly one wins each round;
 * - a free by a thread that does not own the block's run pushes it onto the run's word
 *   (remote_frees counts it, used and owner unchanged) and the owner drains it at its next
 *   refill; a free into an armed run is delivered to the owner's notify stack instead, and the
 *   owner collects it at its next refill (the run back on its partial list); a free by the
 *   owner goes to its own SLL. */
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "unit.h"

static hak_tcache_t fake[4]; /* zeroed: only their lists and the owner word are used */

static bool on_list(hak_slab_t *head, const hak_slab_t *m) {
  for (; head != NULL; head = head->next)
    if (head == m) return true;
  return false;
}

/* Carves n blocks of m by hand, all of them out (as a refill would). */
static void carve_out(hak_slab_t *m, uint32_t n) {
  atomic_store(&m->carved, n);
  m->used = n;
  m->freelist = NULL;
}

/* Frees block b of run m with one remote free, as hak_free would (checked builds: the freed
 * fill first, which the bind and the release verify). */
static enum hak_rq_outcome free_remote(hak_slab_t *m, void *b, uintptr_t *w) {
#if HAKMEM_CHECKED
  hak_checked_freed(b, m->class_idx, m->stride);
#endif
  return hak_rq_free_mt(m, b, b, 1, HAK_RQ_MODE_NORMAL, w);
}

static void check_life_cycle(void) {
  const int c = 3;
  hak_tcache_t *a = &fake[0], *b = &fake[1];
  hak_slab_t *m = hak_run_fresh(a, c);
  T_CHECK(m != NULL, "fresh run failed");
  T_CHECK(hak_owner_of(m) == a && m->list == HAK_LIST_PARTIAL && a->partial[c] == m,
          "fresh: owner %p list %d", (void *)hak_owner_of(m), m->list);
  carve_out(m, m->capacity);
  T_CHECK(hak_rq_arm(m) && hak_remote_drain(m) == 0, "arm of an empty word");
  /* Fill is refused while a block is queued. */
  uintptr_t w;
  void *blk0 = m->data;
  T_CHECK(free_remote(m, blk0, &w) == HAK_RQ_PUSHED, "free into an owned run did not push");
  T_CHECK(!hak_run_fill(a, m) && m->list == HAK_LIST_PARTIAL, "fill with a block queued");
  T_CHECK(hak_remote_drain(m) == 1 && m->used == m->capacity - 1, "drain of one block");
  m->freelist = NULL;
  m->used = m->capacity;
  T_CHECK(hak_run_fill(a, m), "fill of an exhausted run");
  T_CHECK(m->list == HAK_LIST_FULL && a->full[c] == m && a->partial[c] != m &&
              atomic_load(&m->remote) == HAK_RQ_NOTIFY,
          "full: list %d word %#lx", m->list, (unsigned long)atomic_load(&m->remote));
  hak_run_unfull(a, m);
  T_CHECK(m->list == HAK_LIST_PARTIAL && a->partial[c] == m && a->full[c] != m, "unfull");
  hak_remote_drain(m); /* disarm */

  /* Orphan with 5 blocks out, 2 of them queued: published with count 3 (ADOPT on) or
   * orphaned unpublished (ADOPT off). */
  carve_out(m, 5);
  void *q[2] = {m->data + m->stride, m->data + 2 * (size_t)m->stride};
  for (int i = 0; i < 2; i++) free_remote(m, q[i], &w);
  uint64_t orphaned0 = t_stats().orphaned_slabs;
  hak_run_orphan(a, m);
  w = atomic_load(&m->remote);
  uintptr_t want_flags = HAK_RQ_ORPHAN | (hak_opt.ss_adopt ? HAK_RQ_PUBLISHED : 0);
  T_CHECK((w & HAK_RQ_FLAGS) == want_flags && hak_rq_count(w) == 3 && hak_rq_head(w) == NULL,
          "orphaned word %#lx (want flags %#lx, count 3, stack drained)", (unsigned long)w,
          (unsigned long)want_flags);
  T_CHECK(hak_owner_of(m) == NULL && !on_list(a->partial[c], m) && !on_list(a->full[c], m),
          "orphan still owned or listed");
  T_CHECK(m->used == 3, "orphan used %u", m->used);
  T_CHECK(t_stats().orphaned_slabs == orphaned0 + 1, "orphaned_slabs did not count it");
  /* One more block back while orphaned: the count goes down, the stack holds it. */
  void *r = m->data + 3 * (size_t)m->stride;
  T_CHECK(free_remote(m, r, &w) == HAK_RQ_PUSHED && hak_rq_count(w) == 2 && hak_rq_head(w) == r,
          "free into an orphan: word %#lx", (unsigned long)w);
  if (hak_opt.ss_adopt) {
    hak_slab_t *got = hak_adopt_slow(b, c);
    T_CHECK(got == m, "adopt returned %p, not the orphan %p", (void *)got, (void *)m);
    T_CHECK(hak_owner_of(m) == b && m->list == HAK_LIST_PARTIAL && b->partial[c] == m &&
                atomic_load(&m->remote) == 0 && m->used == 2,
            "adopted: owner %p list %d word %#lx used %u", (void *)hak_owner_of(m), m->list,
            (unsigned long)atomic_load(&m->remote), m->used);
    m->used = 0;
    m->freelist = NULL;
    atomic_store(&m->carved, 0);
    hak_run_release(b, m);
  } else {
    /* The last two blocks back: the second free claims the run. */
    void *t = m->data + 4 * (size_t)m->stride;
    T_CHECK(free_remote(m, m->data, &w) == HAK_RQ_PUSHED, "free of the next-to-last block");
    T_CHECK(free_remote(m, t, &w) == HAK_RQ_LAST,
            "free of the last block did not claim the orphan");
    hak_run_release_claimed(m);
  }
  T_CHECK(hak_owner_of(m) == NULL && atomic_load(&m->remote) == 0 && m->list == HAK_LIST_NONE,
          "released: owner %p word %#lx", (void *)hak_owner_of(m),
          (unsigned long)atomic_load(&m->remote));
  T_CHECK(a->partial[c] == NULL && a->full[c] == NULL && b->partial[c] == NULL,
          "fake caches still list runs");
}

/* The child runs op (which must abort); the parent checks the fail-fast line. */
static void expect_abort(void (*op)(hak_slab_t *), hak_slab_t *m, const char *line) {
  int fds[2];
  T_CHECK(pipe(fds) == 0, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  T_CHECK(pid >= 0, "fork");
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    op(m);
    _exit(0); /* not reached if the check works */
  }
  close(fds[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 && (r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = '\0';
  close(fds[0]);
  int status = 0;
  T_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
          "%s: did not abort (status %#x, output: %s)", line, status, buf);
  T_CHECK(strstr(buf, line) != NULL, "no fail-fast line '%s'; output: %s", line, buf);
}

static void release_by_stranger(hak_slab_t *m) { hak_run_release(&fake[1], m); }
static void bind_owned(hak_slab_t *m) { hak_run_bind(&fake[1], m, m->class_idx); }

/* What a free sees when the run it read as carved was released meanwhile (slab_reset: carved
 * 0, class none): the block was not live. The remote path must not index by that class. */
static void free_into_released(hak_slab_t *m) {
  m->class_idx = HAK_CLASS_NONE;
  m->class4 = HAK_CLASS4_NONE;
  hak_free_remote_mt(m, m->data, &fake[1]);
}

static void check_misuse_aborts(void) {
  hak_slab_t *m = hak_run_fresh(&fake[0], 3);
  T_CHECK(m != NULL, "setup");
  carve_out(m, 0);
  expect_abort(release_by_stranger, m,
               "hakmem: run given up by a thread that does not own it");
  expect_abort(bind_owned, m, "hakmem: bind of a run that already has an owner");
  expect_abort(free_into_released, m, "hakmem: invalid free (block of a free run)");
  T_CHECK(hak_owner_of(m) == &fake[0], "parent's owner changed");
  hak_run_release(&fake[0], m);
}

/* ---- the race: adoption of one orphan word -------------------------------------------------- */

/* Rounds start by a store the racers spin on (not a barrier, whose wake-ups are spread out in
 * time), so the racers that are running hit the CAS together. */
#define RACERS 4
#define RACE_ROUNDS 1000

static hak_slab_t *race_run;
static atomic_int round_no = -1; /* the round the racers may play */
static atomic_int arrived;        /* racers done with the current round */
static atomic_int winners;
static atomic_int winner_idx;

static void spin_until(atomic_int *v, int want) {
  for (int spins = 0; atomic_load(v) != want; spins++)
    if (spins > 1000) sched_yield();
}

static void *racer(void *arg) {
  int i = (int)(intptr_t)arg;
  for (int r = 0; r < RACE_ROUNDS; r++) {
    spin_until(&round_no, r);
    if (hak_rq_adopt(race_run)) {
      atomic_fetch_add(&winners, 1);
      atomic_store(&winner_idx, i);
    }
    atomic_fetch_add(&arrived, 1);
  }
  return NULL;
}

static void check_race(void) {
  race_run = hak_superslab_take_run(3);
  T_CHECK(race_run != NULL, "take_run failed");
  pthread_t th[RACERS];
  for (int i = 0; i < RACERS; i++)
    t_start(&th[i], racer, (void *)(intptr_t)i);
  int wins_by[RACERS] = {0};
  for (int r = 0; r < RACE_ROUNDS; r++) {
    atomic_store(&arrived, 0);
    T_CHECK(hak_rq_orphan(race_run, 7, r % 2), "round %d: orphan of an empty word", r);
    atomic_store(&round_no, r);
    spin_until(&arrived, RACERS);
    int w = atomic_load(&winners);
    T_CHECK(w == 1, "round %d: %d racers adopted the run", r, w);
    T_CHECK(atomic_load(&race_run->remote) == 0, "round %d: adopted word %#lx", r,
            (unsigned long)atomic_load(&race_run->remote));
    wins_by[atomic_load(&winner_idx)]++;
    atomic_store(&winners, 0);
  }
  for (int i = 0; i < RACERS; i++)
    t_join(th[i]);
  int total = 0;
  for (int i = 0; i < RACERS; i++) total += wins_by[i];
  T_CHECK(total == RACE_ROUNDS, "%d wins in %d rounds", total, RACE_ROUNDS);
  hak_superslab_release_run(race_run);
}

/* ---- frees by a non-owner -------------------------------------------------------------------- */

static void *stranger_block;
static int stranger_with_cache;

static void *stranger(void *arg) {
  (void)arg;
  if (stranger_with_cache)
    t_thread_cache();
  hak_free(stranger_block);
  return NULL;
}

static int on_chain(void *head, const void *base) {
  for (void *b = head; b != NULL; b = hak_link_get(b))
    if (b == base) return 1;
  return 0;
}

static int on_notify_stack(hak_tcache_t *tc, const void *base) {
  for (void *b = atomic_load(&tc->notify); b != NULL && b != HAK_NOTIFY_CLOSED;
       b = hak_link_decode(b))
    if (b == base) return 1;
  return 0;
}

/* Allocates class-c blocks until tc refilled twice; frees them again. */
static void refill_twice(hak_tcache_t *tc, int c, size_t sz) {
  static void *more[4096];
  size_t n = 0;
  uint64_t refills0 = tc->stat.refills[c];
  while (tc->stat.refills[c] < refills0 + 2 && n < 4096) more[n++] = hak_malloc(sz);
  T_CHECK(tc->stat.refills[c] >= refills0 + 2, "no refill after %zu mallocs", n);
  while (n > 0) hak_free(more[--n]);
}

static void check_remote_free(void) {
  hak_tcache_t *tc = t_thread_cache();
  const int c = 6;
  size_t sz = t_size_of_class(c);
  void *p[4];
  for (int i = 0; i < 4; i++) p[i] = hak_malloc(sz);
  hak_slab_t *m = t_run_of(hak_bridge_base(p[0]));
  T_CHECK(hak_owner_of(m) == tc, "main does not own the run of its block");
  for (int i = 1; i < 4; i++)
    T_CHECK(t_run_of(hak_bridge_base(p[i])) == m, "consecutive blocks in different runs");

  /* The owner's free goes to its SLL. */
  uint32_t sll0 = hak_sll_count(&tc->sll[c]);
  uintptr_t w0 = atomic_load(&m->remote);
  hak_free(p[3]);
  T_CHECK(hak_sll_count(&tc->sll[c]) == sll0 + 1, "owner free: SLL count %u -> %u", sll0,
          hak_sll_count(&tc->sll[c]));
  T_CHECK(atomic_load(&m->remote) == w0, "owner free went remote");

  /* A thread with a cache of its own, then one that never allocated. */
  for (int k = 0; k < 2; k++) {
    hak_stats_t st0 = t_stats();
    uint32_t used0 = m->used;
    sll0 = hak_sll_count(&tc->sll[c]);
    stranger_block = p[k];
    stranger_with_cache = k == 0;
    t_run_thread(stranger, NULL);
    hak_stats_t st1 = t_stats();
    T_CHECK(on_chain(hak_rq_head(atomic_load(&m->remote)), hak_bridge_base(p[k])),
            "stranger %d: block not on the run's stack", k);
    T_CHECK(st1.remote_frees > st0.remote_frees, "stranger %d: remote_frees did not grow", k);
    T_CHECK(hak_sll_count(&tc->sll[c]) == sll0, "stranger %d: the owner's SLL changed", k);
    T_CHECK(m->used == used0, "stranger %d: a remote free changed used", k);
    T_CHECK(hak_owner_of(m) == tc, "stranger %d: the owner changed", k);
    T_CHECK(!on_notify_stack(tc, hak_bridge_base(p[k])) || hak_opt.rf_force_notify,
            "stranger %d: a free into a partial run was delivered", k);
  }
  /* The owner drains at its next refill: empty its SLL by allocating until a refill. */
  hak_stats_t st0 = t_stats();
  refill_twice(tc, c, sz);
  hak_stats_t st1 = t_stats();
  T_CHECK(hak_rq_head(atomic_load(&m->remote)) == NULL,
          "the run's stack was not drained by the owner's refill");
  T_CHECK(st1.remote_drains > st0.remote_drains && st1.drained_blocks >= st0.drained_blocks + 2,
          "drains %llu -> %llu, blocks %llu -> %llu", (unsigned long long)st0.remote_drains,
          (unsigned long long)st1.remote_drains, (unsigned long long)st0.drained_blocks,
          (unsigned long long)st1.drained_blocks);

  /* An armed run: the stranger's free is delivered to the owner, not pushed. */
  void *q = hak_malloc(sz);
  m = t_run_of(hak_bridge_base(q));
  T_CHECK(hak_owner_of(m) == tc, "main does not own the run of its block");
  if (m->list == HAK_LIST_PARTIAL)
    T_CHECK(hak_run_fill(tc, m), "arming the run");
  T_CHECK(m->list == HAK_LIST_FULL && (atomic_load(&m->remote) & HAK_RQ_NOTIFY),
          "the run is not armed");
  st0 = t_stats();
  uint32_t used0 = m->used;
  stranger_block = q;
  stranger_with_cache = 1;
  t_run_thread(stranger, NULL);
  st1 = t_stats();
  T_CHECK(on_notify_stack(tc, hak_bridge_base(q)), "the armed run's free was not delivered");
  T_CHECK(atomic_load(&m->remote) == 0, "delivery left word %#lx",
          (unsigned long)atomic_load(&m->remote));
  T_CHECK(m->used == used0 && st1.notifies == st0.notifies + 1,
          "delivery: used %u -> %u, notifies %llu -> %llu", used0, m->used,
          (unsigned long long)st0.notifies, (unsigned long long)st1.notifies);
  /* The owner collects it at its next refill, and the run is partial again. */
  refill_twice(tc, c, sz);
  T_CHECK(atomic_load(&tc->notify) == NULL, "notify stack not collected at refill");
  T_CHECK(hak_owner_of(m) != tc || m->list == HAK_LIST_PARTIAL,
          "the run of a collected block stays on the full list");
  for (int i = 2; i < 3; i++) hak_free(p[i]);
}

int main(void) {
  t_thread_cache();
  check_life_cycle();
  check_misuse_aborts();
  check_race();
  check_remote_free();
  printf("unit_owner: OK\n");
  return 0;
}
