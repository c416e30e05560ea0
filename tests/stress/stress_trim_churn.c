/* stress_trim_churn SECONDS: short-lived producers, remote frees and malloc_trim at once.
 *
 * The scenario that crashed the old remote-free protocol (DESIGN §3, cross-thread rules): a run
 * loses its last block to a remote free while its owner exits, the run is released, and a
 * concurrent trim unmaps its SuperSlab; a free that still touches the run after its CAS then
 * faults.
 *
 * Producer threads live for a handful of allocations: each allocates 1 to 3 blocks of 64 KiB
 * (slab runs) and 8 tiny blocks of 16..1024 bytes, fills them with a pattern keyed by address
 * and serial number, hands them through a bounded queue to 4 long-lived consumers and exits.
 * The spawner (main) keeps up to 8 producers alive, joining the oldest before it starts the
 * next. Consumers verify each pattern and free. A fifth thread trims in a loop (malloc_trim(0)
 * where hakmem owns the libc names, hak_trim() always). At least 2,000 producers (times
 * HAK_TEST_SCALE) are started, and more until SECONDS have passed.
 *
 * At the end: every block handed over was freed exactly once (a bitmap of serial numbers),
 * live_blocks is back at its starting value, and every slab orphaned during the run was
 * adopted or released by its last free (or, with adoption off, released by its last free). */
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "hak_test.h"
#include "t_handoff.h"

#define CONSUMERS 4
#define MAX_ALIVE 8
#define BIG_SIZE (64 * 1024)
#define BIG_MAX 3
#define TINY_PER_PRODUCER 8
#define BLOCKS_MAX (BIG_MAX + TINY_PER_PRODUCER) /* serial numbers per producer */
#define MIN_PRODUCERS 2000
#define MAX_PRODUCERS (1u << 20)
#define SERIALS ((size_t)MAX_PRODUCERS * BLOCKS_MAX)

static t_handoff_t q = T_HANDOFF_INIT; /* items: tag = serial number, also the pattern seed */

/* One bit per serial number: set by the producer that handed the block, by the consumer that
 * freed it. Static, so the bookkeeping itself never allocates from hakmem. */
static _Atomic uint64_t handed_bits[SERIALS / 64 + 1];
static _Atomic uint64_t freed_bits[SERIALS / 64 + 1];

static atomic_ullong handed_big, handed_tiny, freed_blocks;
static atomic_int stop_trimming;

typedef struct producer_s {
  pthread_t thread;
  uint64_t id;
} producer_t;

/* Sets serial's bit in bits; returns the bit's previous value. */
static int mark(_Atomic uint64_t *bits, uint64_t serial) {
  uint64_t m = 1ull << (serial % 64);
  return (atomic_fetch_or(&bits[serial / 64], m) & m) != 0;
}

static void produce(uint64_t serial, size_t size) {
  void *p = T_MALLOC(size);
  t_check(p != NULL, "producer: malloc(%zu) returned NULL", size);
  t_check(t_aligned(p, 16), "producer: malloc(%zu) = %p is not 16-aligned", size, p);
  t_fill(p, size, serial);
  t_check(!mark(handed_bits, serial), "serial %llu handed over twice", (unsigned long long)serial);
  t_handoff_put(&q, (t_item_t){p, size, serial});
}

static void *producer_main(void *arg) {
  producer_t *pr = arg;
  t_rng_t rng;
  t_rng_seed(&rng, pr->id);
  uint64_t base = pr->id * BLOCKS_MAX;
  int nbig = (int)t_rng_range(&rng, 1, BIG_MAX);
  /* Interleave the sizes so big and tiny frees of one producer race each other. */
  int serial = 0;
  for (int i = 0; i < TINY_PER_PRODUCER; i++) {
    if (i < nbig)
      produce(base + (uint64_t)serial++, BIG_SIZE);
    produce(base + (uint64_t)serial++, t_rng_range(&rng, 16, 1024));
  }
  atomic_fetch_add(&handed_big, (unsigned long long)nbig);
  atomic_fetch_add(&handed_tiny, TINY_PER_PRODUCER);
  return NULL; /* exit at once: the consumers may still be freeing into this thread's runs */
}

static void *consumer_main(void *arg) {
  (void)arg;
  t_item_t it;
  while (t_handoff_take(&q, &it)) {
    t_verify(it.p, it.size, it.tag);
    t_check(T_USABLE(it.p) >= it.size, "usable size of %p is %zu, below the %zu requested", it.p,
            T_USABLE(it.p), it.size);
    T_FREE(it.p);
    t_check(!mark(freed_bits, it.tag), "serial %llu (%p) freed twice",
            (unsigned long long)it.tag, it.p);
    atomic_fetch_add(&freed_blocks, 1);
  }
  return NULL;
}

typedef struct trim_count_s {
  uint64_t trims;    /* calls made */
  uint64_t released; /* calls that reported memory returned */
} trim_count_t;

static int trim_once(uint64_t i) {
#if HAK_TEST_OVERRIDE
  /* malloc_trim is hakmem's here; alternate it with the prefixed name. */
  if (i % 2 == 0)
    return malloc_trim(0);
#else
  (void)i;
#endif
  return hak_trim();
}

static void *trimmer_main(void *arg) {
  trim_count_t *tc = arg;
  do {
    tc->released += trim_once(tc->trims) != 0;
    tc->trims++;
    sched_yield();
  } while (!atomic_load(&stop_trimming));
  return NULL;
}

static uint64_t spawn_producers(double seconds) {
  size_t min_producers = t_scaled(MIN_PRODUCERS);
  size_t alive = t_scaled(MAX_ALIVE);
  if (alive < 2)
    alive = 2;
  producer_t slots[MAX_ALIVE];
  double deadline = t_now() + seconds;
  uint64_t started = 0;
  while (started < MAX_PRODUCERS && (started < min_producers || t_now() < deadline)) {
    producer_t *pr = &slots[started % alive];
    if (started >= alive)
      t_check(pthread_join(pr->thread, NULL) == 0, "pthread_join failed");
    pr->id = started;
    t_check(pthread_create(&pr->thread, NULL, producer_main, pr) == 0,
            "pthread_create failed after %llu producers", (unsigned long long)started);
    started++;
  }
  for (uint64_t i = 0; i < alive && i < started; i++)
    t_check(pthread_join(slots[i].thread, NULL) == 0, "pthread_join failed");
  return started;
}

/* Every serial handed over was freed, and nothing else was. */
static void check_exactly_once(uint64_t producers) {
  size_t words = (size_t)(producers * BLOCKS_MAX + 63) / 64;
  for (size_t w = 0; w < words; w++) {
    uint64_t h = atomic_load(&handed_bits[w]), f = atomic_load(&freed_bits[w]);
    if (h != f) {
      uint64_t diff = h ^ f;
      uint64_t serial = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(diff);
      t_fail("serial %llu was %s", (unsigned long long)serial,
             (h & diff) ? "handed over but never freed" : "freed but never handed over");
    }
  }
}


int main(int argc, char **argv) {
  double seconds = t_seconds_arg(argc, argv);
  hak_stats_t before;
  hak_stats_get(&before);

  pthread_t consumers[CONSUMERS], trimmer;
  trim_count_t trims = {0, 0};
  for (int i = 0; i < CONSUMERS; i++)
    t_check(pthread_create(&consumers[i], NULL, consumer_main, NULL) == 0, "pthread_create failed");
  t_check(pthread_create(&trimmer, NULL, trimmer_main, &trims) == 0, "pthread_create failed");

  uint64_t producers = spawn_producers(seconds);

  t_handoff_close(&q);
  for (int i = 0; i < CONSUMERS; i++)
    t_check(pthread_join(consumers[i], NULL) == 0, "pthread_join failed");
  atomic_store(&stop_trimming, 1);
  t_check(pthread_join(trimmer, NULL) == 0, "pthread_join failed");

  uint64_t big = atomic_load(&handed_big), tiny = atomic_load(&handed_tiny);
  uint64_t freed = atomic_load(&freed_blocks);
  t_check(tiny == producers * TINY_PER_PRODUCER, "%llu tiny blocks handed over, expected %llu",
          (unsigned long long)tiny, (unsigned long long)(producers * TINY_PER_PRODUCER));
  t_check(big >= producers && big <= producers * BIG_MAX,
          "%llu big blocks handed over by %llu producers", (unsigned long long)big,
          (unsigned long long)producers);
  t_check(freed == big + tiny, "consumers freed %llu blocks, %llu were handed over",
          (unsigned long long)freed, (unsigned long long)(big + tiny));
  check_exactly_once(producers);
  t_check(trims.trims > 0, "the trimmer never ran");
  t_check_stats_moved(&before, freed);
  uint64_t slack = 4 * (MAX_ALIVE + CONSUMERS + 2) + 16;
  t_check_live(before.live_blocks, slack);

  hak_stats_t after;
  hak_stats_get(&after);
  t_check_orphans(&before, &after, t_libc_is_hakmem() ? slack : 0);
  printf("stress_trim_churn: producers=%llu blocks=%llu (64KiB=%llu tiny=%llu) trims=%llu "
         "(released=%llu) orphaned_slabs=%llu adoptions=%llu last_free_releases=%llu "
         "superslabs_unmapped=%llu\n",
         (unsigned long long)producers, (unsigned long long)freed, (unsigned long long)big,
         (unsigned long long)tiny, (unsigned long long)trims.trims,
         (unsigned long long)trims.released,
         (unsigned long long)(after.orphaned_slabs - before.orphaned_slabs),
         (unsigned long long)(after.adoptions - before.adoptions),
         (unsigned long long)(after.last_free_releases - before.last_free_releases),
         (unsigned long long)(after.superslabs_unmapped - before.superslabs_unmapped));
  return 0;
}
