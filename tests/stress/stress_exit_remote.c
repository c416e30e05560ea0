/* stress_exit_remote SECONDS: remote frees racing their owner's exit, orphaning and adoption.
 *
 * Waves of 4 owner threads and 3 freer threads. Each owner allocates 300 blocks of mixed tiny
 * sizes, filling each with a pattern keyed by address and serial number, and publishes them
 * one by one to a shared array; it keeps every 16th block back and exits as soon as the batch
 * is out. The freers claim published blocks while the owners are still allocating and exiting,
 * verify them and free them: remote frees into live runs, into runs being orphaned and into
 * orphaned runs. The blocks kept back are freed by the next wave's freers while that wave's
 * owners allocate the same classes, so last frees of orphaned runs race with their adoption.
 * At least 200 waves (times HAK_TEST_SCALE) run, and more until SECONDS have passed; a last
 * phase frees what the final wave kept back.
 *
 * After each wave, every block of the wave before was allocated and freed exactly once (a
 * bitmap of serial numbers). At the end: live_blocks is back at its starting value, every owner
 * orphaned a slab (it exited holding blocks), every orphaning ended in an adoption or a last-free
 * release, and with HAKMEM_TINY_SS_ADOPT=0 none was adopted and last frees released the orphans. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "hak_test.h"

#define OWNERS 4
#define FREERS 3
#define BATCH 300
#define HOLD_EVERY 16
#define HELD_PER_OWNER ((BATCH + HOLD_EVERY - 1) / HOLD_EVERY)
#define PUBLISHED_PER_OWNER (BATCH - HELD_PER_OWNER)
#define MIN_WAVES 200
#define WAVE_BLOCKS (OWNERS * BATCH)
#define RING_WAVES 3 /* waves whose blocks may be live at once (previous, current), plus one */
#define RING_BITS (RING_WAVES * WAVE_BLOCKS)

typedef struct item_s {
  void *p;
  size_t size;
  uint64_t serial; /* (wave * OWNERS + owner) * BATCH + index; also the pattern seed */
} item_t;

typedef struct owner_s {
  pthread_t thread;
  uint64_t serial0;                  /* serial of the first block */
  item_t items[PUBLISHED_PER_OWNER]; /* written by the owner before published counts them */
  _Atomic int published;             /* items[0..published) may be claimed */
  _Atomic int claimed;               /* items[0..claimed) were taken by a freer */
  item_t held[HELD_PER_OWNER];       /* kept back; read only after the owner was joined */
  int nheld;                         /* owner-private until joined */
} owner_t;

static owner_t owners[OWNERS];
static int nowners; /* owners of the current wave; set before any thread starts */

/* Blocks kept back by the previous wave, freed by this wave's freers. */
static item_t carry[OWNERS * HELD_PER_OWNER];
static size_t ncarry;            /* set before the freers start */
static atomic_size_t carry_next; /* next carry index to claim */

/* One bit per serial number of the last RING_WAVES waves (serial % RING_BITS): set by the owner
 * that allocated the block, by the freer that freed it; checked and cleared by main once the
 * wave's blocks are all back. Static, so the bookkeeping never allocates from hakmem. */
static _Atomic uint64_t alloc_bits[RING_BITS / 64 + 1];
static _Atomic uint64_t freed_bits[RING_BITS / 64 + 1];
static atomic_ullong allocated, freed;

/* Sets serial's bit in bits; returns the bit's previous value. */
static int mark(_Atomic uint64_t *bits, uint64_t serial) {
  uint64_t bit = serial % RING_BITS;
  uint64_t m = 1ull << (bit % 64);
  return (atomic_fetch_or(&bits[bit / 64], m) & m) != 0;
}

/* Mixed tiny sizes, weighted to the small classes most programs use. */
static size_t tiny_size(t_rng_t *rng) {
  return t_rng_below(rng, 100) < 60 ? t_rng_range(rng, 8, 128) : t_rng_range(rng, 129, 1024);
}

static void *owner_main(void *arg) {
  owner_t *o = arg;
  t_rng_t rng;
  t_rng_seed(&rng, o->serial0);
  int n = 0;
  for (int j = 0; j < BATCH; j++) {
    size_t size = tiny_size(&rng);
    uint64_t serial = o->serial0 + (uint64_t)j;
    void *p = T_MALLOC(size);
    t_check(p != NULL, "owner: malloc(%zu) returned NULL", size);
    t_check(size <= 8 || t_aligned(p, 16), "owner: malloc(%zu) = %p is not 16-aligned", size, p);
    t_fill(p, size, serial);
    t_check(!mark(alloc_bits, serial), "serial %llu allocated twice", (unsigned long long)serial);
    item_t it = {p, size, serial};
    if (j % HOLD_EVERY == 0) {
      o->held[o->nheld++] = it;
    } else {
      o->items[n++] = it;
      atomic_store_explicit(&o->published, n, memory_order_release);
    }
  }
  atomic_fetch_add(&allocated, BATCH);
  return NULL; /* exit at once: the freers are still freeing into this thread's runs */
}

static void release(const item_t *it) {
  t_verify(it->p, it->size, it->serial);
  T_FREE(it->p);
  t_check(!mark(freed_bits, it->serial), "serial %llu (%p) freed twice",
          (unsigned long long)it->serial, it->p);
  atomic_fetch_add(&freed, 1);
}

/* Claims and frees one published block of o; returns 0 if none is available now. */
static int free_one_published(owner_t *o) {
  int c = atomic_load(&o->claimed);
  while (c < atomic_load_explicit(&o->published, memory_order_acquire)) {
    if (atomic_compare_exchange_weak(&o->claimed, &c, c + 1)) {
      release(&o->items[c]);
      return 1;
    }
  }
  return 0;
}

static int free_one_carried(void) {
  size_t c = atomic_fetch_add(&carry_next, 1);
  if (c >= ncarry)
    return 0;
  release(&carry[c]);
  return 1;
}

static int wave_done(void) {
  if (atomic_load(&carry_next) < ncarry)
    return 0;
  for (int i = 0; i < nowners; i++)
    if (atomic_load(&owners[i].claimed) < PUBLISHED_PER_OWNER)
      return 0;
  return 1;
}

static void *freer_main(void *arg) {
  int first = (int)(intptr_t)arg;
  while (!wave_done()) {
    int progress = free_one_carried();
    for (int k = 0; k < nowners; k++)
      progress |= free_one_published(&owners[(first + k) % nowners]);
    if (!progress)
      sched_yield();
  }
  return NULL;
}

/* One wave: n owners allocate and exit while the freers free the previous wave's carry and
 * this wave's published blocks; then this wave's held blocks become the carry. */
static void run_wave(uint64_t wave, int n) {
  nowners = n;
  for (int i = 0; i < n; i++) {
    owner_t *o = &owners[i];
    o->serial0 = wave * WAVE_BLOCKS + (uint64_t)i * BATCH;
    atomic_store(&o->published, 0);
    atomic_store(&o->claimed, 0);
    o->nheld = 0;
  }
  atomic_store(&carry_next, 0);
  for (int i = 0; i < n; i++)
    t_check(pthread_create(&owners[i].thread, NULL, owner_main, &owners[i]) == 0,
            "pthread_create failed in wave %llu", (unsigned long long)wave);
  pthread_t freers[FREERS];
  for (int i = 0; i < FREERS; i++)
    t_check(pthread_create(&freers[i], NULL, freer_main, (void *)(intptr_t)i) == 0,
            "pthread_create failed in wave %llu", (unsigned long long)wave);
  for (int i = 0; i < n; i++)
    t_check(pthread_join(owners[i].thread, NULL) == 0, "pthread_join failed");
  for (int i = 0; i < FREERS; i++)
    t_check(pthread_join(freers[i], NULL) == 0, "pthread_join failed");
  ncarry = 0;
  for (int i = 0; i < n; i++) {
    t_check(owners[i].nheld == HELD_PER_OWNER, "owner kept %d blocks, expected %d", owners[i].nheld,
            HELD_PER_OWNER);
    for (int j = 0; j < owners[i].nheld; j++)
      carry[ncarry++] = owners[i].held[j];
  }
}

/* Every block of the wave was allocated and freed exactly once (mark catches the second time);
 * its bits are cleared for the wave that reuses them. Called once the wave is all back. */
static void check_wave_freed(uint64_t wave) {
  for (uint64_t serial = wave * WAVE_BLOCKS; serial < (wave + 1) * WAVE_BLOCKS; serial++) {
    uint64_t bit = serial % RING_BITS;
    uint64_t m = 1ull << (bit % 64);
    int a = (atomic_load(&alloc_bits[bit / 64]) & m) != 0;
    int f = (atomic_load(&freed_bits[bit / 64]) & m) != 0;
    t_check(a && f, "serial %llu (wave %llu) was %s", (unsigned long long)serial,
            (unsigned long long)wave, !a ? "never allocated" : "allocated but never freed");
    atomic_fetch_and(&alloc_bits[bit / 64], ~m);
    atomic_fetch_and(&freed_bits[bit / 64], ~m);
  }
}

/* Every owner orphans at least one slab; the orphans balance (t_check_orphans). */
static void check_orphans(const hak_stats_t *before, const hak_stats_t *after, uint64_t owners_run,
                          uint64_t slack) {
  uint64_t orphaned = after->orphaned_slabs - before->orphaned_slabs;
  uint64_t last_free = after->last_free_releases - before->last_free_releases;
  if (after->threads_exited == before->threads_exited) {
    printf("stress_exit_remote: note: hakmem does not count thread exits; orphan checks "
           "skipped\n");
    return;
  }
  /* Every owner exited holding the blocks it kept back: at least one slab each. */
  t_check(orphaned >= owners_run,
          "%llu owners exited holding blocks, but only %llu slabs were "
          "orphaned",
          (unsigned long long)owners_run, (unsigned long long)orphaned);
  t_check_orphans(before, after, slack);
  if (hak_option_get("HAKMEM_TINY_SS_ADOPT") == 0) {
    t_check(last_free > 0,
            "HAKMEM_TINY_SS_ADOPT=0 and %llu slabs orphaned, but no last free "
            "released one",
            (unsigned long long)orphaned);
  }
}

int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  size_t min_waves = t_scaled(MIN_WAVES);
  hak_stats_t before;
  hak_stats_get(&before);

  double deadline = t_now() + seconds;
  uint64_t waves = 0;
  while (waves < min_waves || t_now() < deadline) {
    run_wave(waves, OWNERS);
    if (waves > 0)
      check_wave_freed(waves - 1); /* its carry went with this wave */
    waves++;
  }
  run_wave(waves, 0); /* frees the last wave's carry */
  check_wave_freed(waves - 1);

  uint64_t total = waves * WAVE_BLOCKS;
  t_check(atomic_load(&allocated) == total, "owners allocated %llu blocks, expected %llu",
          (unsigned long long)atomic_load(&allocated), (unsigned long long)total);
  t_check(atomic_load(&freed) == total, "freers freed %llu blocks, %llu were allocated",
          (unsigned long long)atomic_load(&freed), (unsigned long long)total);
  t_check_stats_moved(&before, total);
  uint64_t slack = 4 * (OWNERS + FREERS + 1) + 16;
  t_check_live(before.live_blocks, slack);

  hak_stats_t after;
  hak_stats_get(&after);
  check_orphans(&before, &after, waves * OWNERS, t_libc_is_hakmem() ? slack : 0);
  printf("stress_exit_remote: waves=%llu owners=%llu blocks=%llu remote_frees=%llu "
         "notifies=%llu orphaned_slabs=%llu adoptions=%llu last_free_releases=%llu\n",
         (unsigned long long)waves, (unsigned long long)(waves * OWNERS), (unsigned long long)total,
         (unsigned long long)(after.remote_frees - before.remote_frees),
         (unsigned long long)(after.notifies - before.notifies),
         (unsigned long long)(after.orphaned_slabs - before.orphaned_slabs),
         (unsigned long long)(after.adoptions - before.adoptions),
         (unsigned long long)(after.last_free_releases - before.last_free_releases));
  return 0;
}
