/* Edge cases of the glibc contract (DROPIN 7, 8, 9, 12, 16, 18, 23) and the introspection API.
 *
 * free(NULL); realloc(NULL, n) and realloc(p, 0); ENOMEM on overflowing and impossible sizes
 * with the old block left intact; reallocarray; calloc zeroing of recycled memory in every
 * size range; realloc across the size ranges; version macros; configuration, options and
 * class statistics; allocation from a pthread key destructor and from an atexit handler.
 *
 * Build-time expectations arrive as HAK_TEST_* definitions from tests/CMakeLists.txt; an
 * option to check arrives as HAK_TEST_EXPECT_OPTION=NAME=VALUE in the environment. */
#include <pthread.h>
#include <stdatomic.h>

#include "hak_test.h"

static uint64_t live(void) { return t_live_blocks(); }

static void check_free_null_and_realloc_null(void) {
  uint64_t before = live();
  T_FREE(NULL);
  t_check(live() == before, "free(NULL) changed live_blocks");
  unsigned char *p = T_REALLOC(NULL, 40);
  t_check(p != NULL, "realloc(NULL, 40) returned NULL");
  t_check(hak_owns(p), "hak_owns(realloc(NULL, 40)) is false");
  t_check(t_aligned(p, 16), "realloc(NULL, 40) = %p is not 16-aligned", (void *)p);
  t_check(T_USABLE(p) >= 40, "usable_size(realloc(NULL, 40)) = %zu", T_USABLE(p));
  t_check(live() == before + 1, "realloc(NULL, 40) did not add one live block");
  t_fill(p, 40, 1);
  t_verify(p, 40, 1);

  void *r = T_REALLOC(p, 0);
  t_check(r == NULL, "realloc(p, 0) returned %p, expected NULL (glibc frees)", r);
  t_check(live() == before, "realloc(p, 0) did not free: live_blocks %llu, expected %llu",
          (unsigned long long)live(), (unsigned long long)before);
}

/* Calls that must fail with ENOMEM, and must not disturb a block that is passed in. */
static void check_enomem(void) {
  volatile size_t max = SIZE_MAX;
  volatile size_t pmax1 = (size_t)PTRDIFF_MAX + 1;
  uint64_t before = live();
  struct {
    const char *what;
    void *got;
    int err;
  } r[8];
  int n = 0;
#define FAILING(call)                                                                              \
  do {                                                                                             \
    errno = 0;                                                                                     \
    r[n].got = (call);                                                                             \
    r[n].err = errno;                                                                              \
    r[n].what = #call;                                                                             \
    n++;                                                                                           \
  } while (0)
  FAILING(T_MALLOC(max));
  FAILING(T_MALLOC(pmax1));
  FAILING(T_MALLOC(max - 4095));
  FAILING(T_CALLOC(max / 2, 3));
  FAILING(T_CALLOC(3, max / 2));
  FAILING(T_CALLOC(1, max));
  FAILING(T_REALLOCARRAY(NULL, max / 2, 3));
  FAILING(T_REALLOC(NULL, max));
#undef FAILING
  for (int i = 0; i < n; i++)
    t_check(r[i].got == NULL && r[i].err == ENOMEM,
            "%s returned %p with errno %d, expected NULL "
            "and ENOMEM",
            r[i].what, r[i].got, r[i].err);
  t_check(live() == before, "failed allocations changed live_blocks");

  /* A failed realloc / reallocarray leaves the old block valid and unchanged. */
  static const size_t sizes[] = {24, 1000, 5000, 300000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    unsigned char *p = T_MALLOC(size);
    t_check(p != NULL, "malloc(%zu) returned NULL", size);
    t_fill(p, size, 2);
    errno = 0;
    void *q = T_REALLOC(p, max);
    t_check(q == NULL && errno == ENOMEM, "realloc(malloc(%zu), SIZE_MAX) returned %p, errno %d",
            size, q, errno);
    errno = 0;
    q = T_REALLOCARRAY(p, max / 2, 3);
    t_check(q == NULL && errno == ENOMEM,
            "reallocarray(malloc(%zu), SIZE_MAX / 2, 3) returned %p, errno %d", size, q, errno);
    errno = 0;
    q = T_REALLOC(p, pmax1);
    t_check(q == NULL && errno == ENOMEM,
            "realloc(malloc(%zu), PTRDIFF_MAX + 1) returned %p, errno %d", size, q, errno);
    t_check(hak_owns(p), "block %p is no longer owned after a failed realloc", (void *)p);
    t_check(T_USABLE(p) >= size, "usable_size changed after a failed realloc");
    t_verify(p, size, 2);
    T_FREE(p);
  }
  t_check(live() == before, "failed reallocs changed live_blocks");
}

static void check_reallocarray(void) {
  errno = 0;
  void *p = T_REALLOCARRAY(NULL, 0, 16);
  t_check(p != NULL, "reallocarray(NULL, 0, 16) returned NULL");
  t_check(errno == 0, "reallocarray(NULL, 0, 16) set errno to %d", errno);
  T_FREE(p);

  unsigned char *a = T_REALLOCARRAY(NULL, 10, 16);
  t_check(a != NULL && T_USABLE(a) >= 160, "reallocarray(NULL, 10, 16) failed");
  uint64_t key = t_key(a, 3);
  t_fill_key(a, 160, key);
  unsigned char *b = T_REALLOCARRAY(a, 1000, 16);
  t_check(b != NULL && T_USABLE(b) >= 16000, "reallocarray(p, 1000, 16) failed");
  t_verify_key(b, 160, key);
  T_FREE(b);
}

/* calloc must zero memory that was dirty when it was freed, in every size range. */
static void check_calloc_zeroes(void) {
  static const size_t sizes[] = {1, 8, 16, 24, 100, 512, 1024, 5000, 70000, 300000, 5u << 20};
  enum { K = 16 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    unsigned char *dirty[K];
    for (int k = 0; k < K; k++) {
      dirty[k] = T_MALLOC(size);
      t_check(dirty[k] != NULL, "malloc(%zu) returned NULL", size);
      memset(dirty[k], 0xAA, T_USABLE(dirty[k]));
    }
    for (int k = K - 1; k >= 0; k--)
      T_FREE(dirty[k]);
    for (int k = 0; k < K; k++) {
      /* Alternate count/size factorisations of the same byte count. */
      unsigned char *z = (k & 1) ? T_CALLOC(size, 1) : T_CALLOC(1, size);
      t_check(z != NULL, "calloc of %zu bytes returned NULL", size);
      t_check(T_USABLE(z) >= size, "usable_size(calloc(%zu)) = %zu", size, T_USABLE(z));
      for (size_t b = 0; b < size; b++)
        t_check(z[b] == 0, "calloc(%zu) = %p: byte %zu is 0x%02x, not zero", size, (void *)z, b,
                z[b]);
      dirty[k] = z;
    }
    for (int k = 0; k < K; k++)
      T_FREE(dirty[k]);
  }
  void *a = T_CALLOC(0, 16), *b = T_CALLOC(16, 0);
  t_check(a != NULL && b != NULL && a != b, "calloc(0, 16) / calloc(16, 0) gave %p and %p", a, b);
  T_FREE(a);
  T_FREE(b);
}

/* realloc walks the size ranges up and down and keeps min(old, new) bytes each time. */
static void check_realloc_chain(void) {
  static const size_t chain[] = {8, 1000, 5000, 300000, 3u << 20, 100, 24, 70000, 16};
  uint64_t before = live();
  size_t size = chain[0];
  unsigned char *p = T_MALLOC(size);
  t_check(p != NULL, "malloc(%zu) returned NULL", size);
  uint64_t key = t_key(p, 4);
  t_fill_key(p, size, key);
  for (size_t i = 1; i < sizeof chain / sizeof chain[0]; i++) {
    size_t next = chain[i];
    unsigned char *q = T_REALLOC(p, next);
    t_check(q != NULL, "realloc(%zu -> %zu) returned NULL", size, next);
    t_check(t_aligned(q, 16), "realloc(%zu -> %zu) = %p is not 16-aligned", size, next, (void *)q);
    t_check(T_USABLE(q) >= next, "usable_size after realloc(%zu -> %zu) is %zu", size, next,
            T_USABLE(q));
    t_verify_key(q, size < next ? size : next, key);
    key = t_key(q, 4 + i);
    t_fill_key(q, next, key);
    p = q;
    size = next;
  }
  /* Growing to exactly the usable size keeps every usable byte. */
  size_t usable = T_USABLE(p);
  key = t_key(p, 99);
  t_fill_key(p, usable, key);
  unsigned char *q = T_REALLOC(p, usable);
  t_check(q != NULL, "realloc(p, usable_size(p) = %zu) returned NULL", usable);
  t_verify_key(q, usable, key);
  t_check(live() == before + 1, "the realloc chain changed live_blocks by more than its block");
  t_check(T_REALLOC(q, 0) == NULL, "realloc(p, 0) did not return NULL");
  t_check(live() == before, "realloc(p, 0) at the end of the chain did not free");
}

static void check_version_and_config(void) {
  t_check(HAKMEM_VERSION ==
              HAKMEM_VERSION_MAJOR * 10000 + HAKMEM_VERSION_MINOR * 100 + HAKMEM_VERSION_PATCH,
          "HAKMEM_VERSION disagrees with its parts");
  t_check(hak_version() == HAKMEM_VERSION, "hak_version() = %d but the header says %d",
          hak_version(), HAKMEM_VERSION);

  hak_config_t cfg;
  memset(&cfg, 0xff, sizeof cfg);
  hak_config_get(&cfg);
  t_check(cfg.tiny_max >= 1024, "config tiny_max = %zu, expected >= 1024", cfg.tiny_max);
  t_check(cfg.mid_max >= cfg.tiny_max, "config mid_max = %zu < tiny_max = %zu", cfg.mid_max,
          cfg.tiny_max);
  t_check(cfg.headerless == HAK_TEST_HEADERLESS, "config headerless = %d, built with %d",
          cfg.headerless, HAK_TEST_HEADERLESS);
  t_check(cfg.tls_hint == HAK_TEST_TLS_HINT, "config tls_hint = %d, built with %d", cfg.tls_hint,
          HAK_TEST_TLS_HINT);
  t_check(cfg.override == HAK_TEST_OVERRIDE, "config override = %d, built with %d", cfg.override,
          HAK_TEST_OVERRIDE);
  t_check(cfg.asan == HAK_TEST_ASAN, "config asan = %d, built with %d", cfg.asan, HAK_TEST_ASAN);

  t_check(hak_option_get("HAKMEM_NO_SUCH_OPTION") == -1,
          "hak_option_get of an unknown name did not return -1");
  const char *expect = getenv("HAK_TEST_EXPECT_OPTION");
  if (expect != NULL) {
    char name[128];
    const char *eq = strchr(expect, '=');
    t_check(eq != NULL && (size_t)(eq - expect) < sizeof name,
            "malformed HAK_TEST_EXPECT_OPTION '%s'", expect);
    memcpy(name, expect, (size_t)(eq - expect));
    name[eq - expect] = '\0';
    long want = strtol(eq + 1, NULL, 10);
    long got = hak_option_get(name);
    t_check(got == want, "hak_option_get(\"%s\") = %ld, but the environment sets %ld", name, got,
            want);
  }
}

static void check_stats_and_classes(void) {
  hak_stats_t st;
  hak_stats_get(&st);
  t_check(st.live_blocks == st.allocs - st.frees, "live_blocks %llu != allocs %llu - frees %llu",
          (unsigned long long)st.live_blocks, (unsigned long long)st.allocs,
          (unsigned long long)st.frees);

  int classes = hak_class_count();
  t_check(classes > 0, "hak_class_count() = %d", classes);
  uint64_t allocs_before = 0;
  size_t prev = 0;
  for (int c = 0; c < classes; c++) {
    hak_class_stats_t cs;
    hak_class_stats_get(c, &cs);
    t_check(cs.block_size > prev, "class %d block_size %zu is not above class %d's %zu", c,
            cs.block_size, c - 1, prev);
    prev = cs.block_size;
    allocs_before += cs.allocs;
  }
  enum { N = 100 };
  void *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = T_MALLOC(24);
    t_check(blocks[i] != NULL, "malloc(24) returned NULL");
  }
  uint64_t allocs_after = 0;
  for (int c = 0; c < classes; c++) {
    hak_class_stats_t cs;
    hak_class_stats_get(c, &cs);
    allocs_after += cs.allocs;
  }
  for (int i = 0; i < N; i++)
    T_FREE(blocks[i]);
  t_check(allocs_after - allocs_before >= N,
          "%d tiny allocations raised the per-class alloc counts by only %llu", N,
          (unsigned long long)(allocs_after - allocs_before));

  int trimmed = hak_trim();
  t_check(trimmed == 0 || trimmed == 1, "hak_trim() returned %d", trimmed);
}

/* ---- allocation during thread teardown (DROPIN 16) ---------------------------------------- */

static pthread_key_t teardown_key;
static atomic_int teardown_runs;
static void *_Atomic teardown_leftover;

/* Runs in several destructor rounds (it re-arms its key), so at least one round comes after
 * whatever hakmem does at thread exit. */
static void teardown_dtor(void *value) {
  t_verify(value, 100, 11);
  T_FREE(value);
  int round = atomic_fetch_add(&teardown_runs, 1) + 1;
  unsigned char *q = T_MALLOC(100);
  t_check(q != NULL, "malloc in a key destructor (round %d) returned NULL", round);
  t_fill(q, 100, 11);
  if (round < 3) {
    pthread_setspecific(teardown_key, q);
  } else {
    atomic_store(&teardown_leftover, q); /* freed by main after the thread is gone */
  }
}

static void *teardown_thread(void *arg) {
  (void)arg;
  unsigned char *p = T_MALLOC(100);
  t_check(p != NULL, "malloc(100) in a thread returned NULL");
  t_fill(p, 100, 11);
  pthread_setspecific(teardown_key, p);
  void *scratch = T_MALLOC(5000);
  T_FREE(scratch);
  return NULL;
}

static void check_thread_teardown(void) {
  t_check(pthread_key_create(&teardown_key, teardown_dtor) == 0, "pthread_key_create failed");
  pthread_t th;
  t_check(pthread_create(&th, NULL, teardown_thread, NULL) == 0, "pthread_create failed");
  pthread_join(th, NULL);
  t_check(atomic_load(&teardown_runs) == 3, "the key destructor ran %d times, expected 3",
          atomic_load(&teardown_runs));
  void *left = atomic_load(&teardown_leftover);
  t_check(left != NULL && hak_owns(left), "the block allocated in the last destructor round is "
                                          "not a live hakmem block");
  t_verify(left, 100, 11);
  T_FREE(left);
}

/* ---- allocation after main returns (DROPIN 18) -------------------------------------------- */

static void after_main(void) {
  static const size_t sizes[] = {16, 200, 3000, 70000, 400000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = T_MALLOC(sizes[i]);
    t_check(p != NULL, "malloc(%zu) from an atexit handler returned NULL", sizes[i]);
    uint64_t key = t_key(p, 12);
    t_fill_key(p, sizes[i], key);
    unsigned char *q = T_REALLOC(p, sizes[i] * 2);
    t_check(q != NULL, "realloc from an atexit handler returned NULL");
    t_verify_key(q, sizes[i], key);
    T_FREE(q);
  }
}

int main(void) {
  t_check(atexit(after_main) == 0, "atexit failed");
  check_free_null_and_realloc_null();
  check_enomem();
  check_reallocarray();
  check_calloc_zeroes();
  check_realloc_chain();
  check_version_and_config();
  check_stats_and_classes();
  check_thread_teardown();
  hak_stats_print();
  printf("api_edge: ok\n");
  return 0;
}
