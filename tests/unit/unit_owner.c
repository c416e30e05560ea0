/* Box 3, ownership (src/tiny/owner.c): which thread cache owns a slab run.
 *
 * - hak_owner_acquire() on an ownerless run succeeds once, then fails for every cache (the
 *   owner included); hak_owner_transfer() works only from the current owner;
 *   hak_owner_release() by a cache that does not own the run is a fail-fast abort;
 * - 4 threads racing to acquire the same run, 1000 rounds: exactly one wins each round;
 * - a free by a thread that does not own the block's run goes to the run's remote queue
 *   (remote_count rises, the owner is notified, remote_frees counts it) and the owner drains
 *   it at its next refill; a free by the owner goes to its own SLL. */
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "unit.h"

static hak_tcache_t fake[4]; /* zeroed, never used as real caches */

static void check_basic(void) {
  hak_slab_t *m = hak_superslab_take_run(3);
  U_CHECK(m != NULL, "take_run failed");
  hak_tcache_t *a = &fake[0], *b = &fake[1];
  U_CHECK(hak_owner_of(m) == NULL, "fresh run owned");
  U_CHECK(hak_owner_acquire(m, a), "first acquire failed");
  U_CHECK(hak_owner_of(m) == a, "owner after acquire");
  U_CHECK(!hak_owner_acquire(m, b), "second cache acquired an owned run");
  U_CHECK(!hak_owner_acquire(m, a), "owner acquired its own run again");
  U_CHECK(hak_owner_of(m) == a, "failed acquires changed the owner");
  U_CHECK(!hak_owner_transfer(m, b, a), "transfer from a non-owner succeeded");
  U_CHECK(!hak_owner_transfer(m, NULL, b), "transfer from NULL of an owned run succeeded");
  U_CHECK(hak_owner_of(m) == a, "failed transfers changed the owner");
  U_CHECK(hak_owner_transfer(m, a, b), "transfer from the owner failed");
  U_CHECK(hak_owner_of(m) == b, "owner after transfer");
  U_CHECK(!hak_owner_acquire(m, a), "acquire after transfer succeeded");
  U_CHECK(!hak_owner_transfer(m, a, a), "old owner transferred");
  hak_owner_release(m, b);
  U_CHECK(hak_owner_of(m) == NULL, "owner after release");
  U_CHECK(!hak_owner_transfer(m, a, b), "transfer of an ownerless run succeeded");
  U_CHECK(hak_owner_acquire(m, b), "acquire after release failed");
  hak_owner_release(m, b);
  hak_superslab_release_run(m);
}

/* A release by a cache that does not own the run aborts with the fail-fast line. */
static void check_release_by_stranger_aborts(void) {
  hak_slab_t *m = hak_superslab_take_run(3);
  U_CHECK(m != NULL && hak_owner_acquire(m, &fake[0]), "setup");
  int fds[2];
  U_CHECK(pipe(fds) == 0, "pipe");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  U_CHECK(pid >= 0, "fork");
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    hak_owner_release(m, &fake[1]);
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
  U_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  U_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
          "release by a non-owner did not abort (status %#x, output: %s)", status, buf);
  U_CHECK(strstr(buf, "hakmem: slab released by a thread that does not own it") != NULL,
          "no fail-fast line; output: %s", buf);
  U_CHECK(hak_owner_of(m) == &fake[0], "parent's owner changed");
  hak_owner_release(m, &fake[0]);
  hak_superslab_release_run(m);
}

/* ---- the race ------------------------------------------------------------------------------- */

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
    if (hak_owner_acquire(race_run, &fake[i])) {
      atomic_fetch_add(&winners, 1);
      atomic_store(&winner_idx, i);
    }
    atomic_fetch_add(&arrived, 1);
  }
  return NULL;
}

static void check_race(void) {
  race_run = hak_superslab_take_run(3);
  U_CHECK(race_run != NULL, "take_run failed");
  pthread_t th[RACERS];
  for (int i = 0; i < RACERS; i++) u_start(&th[i], racer, (void *)(intptr_t)i);
  int wins_by[RACERS] = {0};
  for (int r = 0; r < RACE_ROUNDS; r++) {
    atomic_store(&arrived, 0);
    atomic_store(&round_no, r);
    spin_until(&arrived, RACERS);
    int w = atomic_load(&winners);
    U_CHECK(w == 1, "round %d: %d racers acquired the run", r, w);
    int i = atomic_load(&winner_idx);
    U_CHECK(hak_owner_of(race_run) == &fake[i], "round %d: owner is not the winner", r);
    wins_by[i]++;
    hak_owner_release(race_run, &fake[i]);
    atomic_store(&winners, 0);
  }
  for (int i = 0; i < RACERS; i++) u_join(th[i]);
  int total = 0;
  for (int i = 0; i < RACERS; i++) total += wins_by[i];
  U_CHECK(total == RACE_ROUNDS, "%d wins in %d rounds", total, RACE_ROUNDS);
  hak_superslab_release_run(race_run);
}

/* ---- frees by a non-owner -------------------------------------------------------------------- */

static void *stranger_block;
static int stranger_with_cache;

static void *stranger(void *arg) {
  (void)arg;
  if (stranger_with_cache) u_thread_cache();
  hak_free(stranger_block);
  return NULL;
}

static int on_chain(uintptr_t head, const void *base) {
  for (void *b = (void *)head; b != NULL; b = hak_link_get(b))
    if (b == base) return 1;
  return 0;
}

static int on_notify_stack(hak_tcache_t *tc, const hak_slab_t *m) {
  for (hak_slab_t *s = atomic_load(&tc->notify); s != NULL; s = s->notify_next)
    if (s == m) return 1;
  return 0;
}

static void check_remote_free(void) {
  hak_tcache_t *tc = u_thread_cache();
  const int c = 6;
  size_t sz = u_size_of_class(c);
  void *p[3];
  for (int i = 0; i < 3; i++) p[i] = hak_malloc(sz);
  hak_slab_t *m = t_run_of(hak_bridge_base(p[0]));
  U_CHECK(hak_owner_of(m) == tc, "main does not own the run of its block");
  U_CHECK(t_run_of(hak_bridge_base(p[1])) == m && t_run_of(hak_bridge_base(p[2])) == m,
          "three consecutive blocks in different runs");

  /* The owner's free goes to its SLL. */
  uint32_t sll0 = tc->sll[c].count, rc0 = atomic_load(&m->remote_count);
  hak_free(p[2]);
  U_CHECK(tc->sll[c].count == sll0 + 1, "owner free: SLL count %u -> %u", sll0, tc->sll[c].count);
  U_CHECK(atomic_load(&m->remote_count) == rc0, "owner free went remote");

  /* A thread with a cache of its own, then one that never allocated. */
  for (int k = 0; k < 2; k++) {
    hak_stats_t st0 = u_stats();
    uint32_t used0 = m->used;
    sll0 = tc->sll[c].count;
    rc0 = atomic_load(&m->remote_count);
    stranger_block = p[k];
    stranger_with_cache = k == 0;
    u_run_thread(stranger, NULL);
    hak_stats_t st1 = u_stats();
    U_CHECK(atomic_load(&m->remote_count) == rc0 + 1, "stranger %d: remote_count %u -> %u", k, rc0,
            atomic_load(&m->remote_count));
    U_CHECK(on_chain(atomic_load(&m->remote_head), hak_bridge_base(p[k])),
            "stranger %d: block not on the remote queue", k);
    U_CHECK(st1.remote_frees > st0.remote_frees, "stranger %d: remote_frees did not grow", k);
    U_CHECK(tc->sll[c].count == sll0, "stranger %d: the owner's SLL changed", k);
    U_CHECK(m->used == used0, "stranger %d: a remote push changed used", k);
    U_CHECK(hak_owner_of(m) == tc, "stranger %d: the owner changed", k);
    /* The first push onto an empty queue notifies the owner. */
    U_CHECK(atomic_load(&m->notified) == 1 && on_notify_stack(tc, m),
            "stranger %d: owner not notified", k);
  }
  /* The owner drains at its next refill: empty its SLL by allocating until a refill. */
  hak_stats_t st0 = u_stats();
  static void *more[4096];
  size_t n = 0;
  uint64_t refills0 = tc->stat[c].refills;
  while (tc->stat[c].refills < refills0 + 2 && n < 4096) more[n++] = hak_malloc(sz);
  U_CHECK(tc->stat[c].refills >= refills0 + 2, "no refill after %zu mallocs", n);
  hak_stats_t st1 = u_stats();
  U_CHECK(atomic_load(&m->remote_count) == 0 && atomic_load(&m->remote_head) == 0,
          "remote queue not drained by the owner's refill (count %u)",
          atomic_load(&m->remote_count));
  U_CHECK(st1.remote_drains > st0.remote_drains && st1.drained_blocks >= st0.drained_blocks + 2,
          "drains %llu -> %llu, blocks %llu -> %llu", (unsigned long long)st0.remote_drains,
          (unsigned long long)st1.remote_drains, (unsigned long long)st0.drained_blocks,
          (unsigned long long)st1.drained_blocks);
  U_CHECK(!on_notify_stack(tc, m) && atomic_load(&m->notified) == 0,
          "notify stack not collected at refill");
  while (n > 0) hak_free(more[--n]);
}

int main(void) {
  u_thread_cache();
  check_basic();
  check_release_by_stranger_aborts();
  check_race();
  check_remote_free();
  printf("unit_owner: OK\n");
  return 0;
}
