/* Switch probe: runs one workload and checks expectations on the counters it moved, so that
 * every run-time switch (DESIGN §4) is shown to change behaviour. CMake registers it once per
 * switch state with an ENVIRONMENT and the matching expectations.
 *
 *   unit_switch_probe MODE EXPECTATION...
 *
 * MODE:
 *   churn   threads allocate one class, hand the blocks to main and exit; main frees them all;
 *           then more threads allocate the same class (adoption, or release by the last free)
 *   remote  a producer thread allocates, a consumer thread frees while the producer keeps
 *           running (remote frees and notifies). It begins with a phase that does not depend
 *           on timing: the producer exhausts several runs before the consumer frees anything,
 *           so they are armed (full, nothing queued) when the first remote free reaches them
 *   local   one thread allocates and frees one class, 200k operations (refills, spills, ACE,
 *           hint)
 *   idle    one allocation and one free (option parsing only)
 *
 * EXPECTATION: `lhs OP rhs`, OP one of = == != < <= > >=, each side a number or a name:
 *   a field of hak_stats_t (its growth over the workload), tls_cap / tls_cap0 (the workload
 *   class's TLS capacity of the main thread after / before), opt.NAME (hak_option_get(NAME)).
 *
 * Prints the counters, then `PROBE OK` when every expectation holds; otherwise a
 * `FAIL: ...` line per broken expectation and exit status 1. */
#include <stdlib.h>

#include "unit.h"

static hak_stats_t d; /* counter growth over the workload */
static uint32_t tls_cap0, tls_cap1;

/* ---- workloads ------------------------------------------------------------------------------ */

#define CHURN_CLASS 7
#define CHURN_THREADS 4
#define CHURN_BLOCKS 600
static void *churn_blocks[CHURN_THREADS][CHURN_BLOCKS];

static void *churn_alloc(void *arg) {
  void **out = arg;
  for (int i = 0; i < CHURN_BLOCKS; i++) {
    out[i] = hak_malloc(hak_class_size(CHURN_CLASS));
    T_CHECK(out[i] != NULL, "hak_malloc failed");
  }
  return NULL;
}

static void *churn_alloc_free(void *arg) {
  churn_alloc(arg);
  void **out = arg;
  for (int i = 0; i < CHURN_BLOCKS; i++) hak_free(out[i]);
  return NULL;
}

static void run_threads(void *(*fn)(void *)) {
  pthread_t th[CHURN_THREADS];
  for (int t = 0; t < CHURN_THREADS; t++)
    t_start(&th[t], fn, churn_blocks[t]);
  for (int t = 0; t < CHURN_THREADS; t++)
    t_join(th[t]);
}

static void workload_churn(void) {
  run_threads(churn_alloc); /* exit with every block out: runs orphaned */
  for (int t = 0; t < CHURN_THREADS; t++)
    for (int i = 0; i < CHURN_BLOCKS; i++) hak_free(churn_blocks[t][i]);
  run_threads(churn_alloc_free);
}

#define REMOTE_CLASS 5
#define BATCH 64
#define BATCHES 200
#define QCAP 8

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  void **q[QCAP];
  int head, tail, count;
  int produced_all, consumed_all;
  void **first;          /* the first phase's blocks, handed over at once */
  int first_ready, first_freed;
} rq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
static void *batches[BATCHES][BATCH];

/* Enough blocks to exhaust at least three runs of the class. */
#define FIRST_BLOCKS (3 * (HAK_SLAB_SIZE / 64) + 1)
static void *first_blocks[FIRST_BLOCKS];

static void remote_first_phase(void) {
  size_t n = 3 * (HAK_SLAB_SIZE / hak_class_size(REMOTE_CLASS)) + 1;
  T_CHECK(n <= FIRST_BLOCKS, "first phase larger than its array");
  for (size_t i = 0; i < n; i++) {
    first_blocks[i] = hak_malloc(hak_class_size(REMOTE_CLASS));
    T_CHECK(first_blocks[i] != NULL, "hak_malloc failed");
  }
  pthread_mutex_lock(&rq.lock);
  rq.first = first_blocks;
  rq.first_ready = (int)n;
  pthread_cond_broadcast(&rq.cond);
  while (!rq.first_freed) pthread_cond_wait(&rq.cond, &rq.lock);
  pthread_mutex_unlock(&rq.lock);
}

static void *remote_producer(void *arg) {
  (void)arg;
  remote_first_phase();
  for (int b = 0; b < BATCHES; b++) {
    for (int i = 0; i < BATCH; i++) {
      batches[b][i] = hak_malloc(hak_class_size(REMOTE_CLASS));
      T_CHECK(batches[b][i] != NULL, "hak_malloc failed");
    }
    pthread_mutex_lock(&rq.lock);
    while (rq.count == QCAP) pthread_cond_wait(&rq.cond, &rq.lock);
    rq.q[rq.tail] = batches[b];
    rq.tail = (rq.tail + 1) % QCAP;
    rq.count++;
    pthread_cond_broadcast(&rq.cond);
    pthread_mutex_unlock(&rq.lock);
  }
  /* Stay alive, owning the runs, until every block has been freed remotely. */
  pthread_mutex_lock(&rq.lock);
  rq.produced_all = 1;
  pthread_cond_broadcast(&rq.cond);
  while (!rq.consumed_all) pthread_cond_wait(&rq.cond, &rq.lock);
  pthread_mutex_unlock(&rq.lock);
  return NULL;
}

static void *remote_consumer(void *arg) {
  (void)arg;
  t_thread_cache();
  pthread_mutex_lock(&rq.lock);
  while (!rq.first_ready) pthread_cond_wait(&rq.cond, &rq.lock);
  pthread_mutex_unlock(&rq.lock);
  for (int i = 0; i < rq.first_ready; i++) hak_free(rq.first[i]);
  pthread_mutex_lock(&rq.lock);
  rq.first_freed = 1;
  pthread_cond_broadcast(&rq.cond);
  pthread_mutex_unlock(&rq.lock);
  for (;;) {
    pthread_mutex_lock(&rq.lock);
    while (rq.count == 0 && !rq.produced_all) pthread_cond_wait(&rq.cond, &rq.lock);
    if (rq.count == 0) {
      rq.consumed_all = 1;
      pthread_cond_broadcast(&rq.cond);
      pthread_mutex_unlock(&rq.lock);
      return NULL;
    }
    void **batch = rq.q[rq.head];
    rq.head = (rq.head + 1) % QCAP;
    rq.count--;
    pthread_cond_broadcast(&rq.cond);
    pthread_mutex_unlock(&rq.lock);
    for (int i = 0; i < BATCH; i++) hak_free(batch[i]);
  }
}

static void workload_remote(void) {
  pthread_t p, c;
  t_start(&p, remote_producer, NULL);
  t_start(&c, remote_consumer, NULL);
  t_join(c);
  t_join(p);
}

#define LOCAL_CLASS 3
#define LOCAL_WINDOW 300
#define LOCAL_OPS 200000

static void workload_local(void) {
  static void *w[LOCAL_WINDOW];
  for (int done = 0; done < LOCAL_OPS; done += 2 * LOCAL_WINDOW) {
    for (int i = 0; i < LOCAL_WINDOW; i++) {
      w[i] = hak_malloc(hak_class_size(LOCAL_CLASS));
      T_CHECK(w[i] != NULL, "hak_malloc failed");
    }
    for (int i = 0; i < LOCAL_WINDOW; i++) hak_free(w[i]);
  }
}

/* ---- expectations --------------------------------------------------------------------------- */

/* Every field of hak_stats_t, by name. */
#define FIELD(name, ...) {#name, offsetof(hak_stats_t, name)},
static const struct {
  const char *name;
  size_t off;
} fields[] = {HAKMEM_STATS_FIELDS(FIELD, FIELD, FIELD, FIELD)};
#undef FIELD

static int value_of(const char *s, long long *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end != s && *end == '\0') {
    *out = v;
    return 1;
  }
  if (strncmp(s, "opt.", 4) == 0) {
    *out = hak_option_get(s + 4);
    return 1;
  }
  if (strcmp(s, "tls_cap") == 0) return *out = tls_cap1, 1;
  if (strcmp(s, "tls_cap0") == 0) return *out = tls_cap0, 1;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (strcmp(s, fields[i].name) == 0) {
      uint64_t v64;
      memcpy(&v64, (const char *)&d + fields[i].off, sizeof v64);
      *out = (long long)v64;
      return 1;
    }
  return 0;
}

/* Returns 1 when the expectation holds; prints a FAIL line otherwise. */
static int check_expectation(const char *e) {
  static const char *const ops[] = {">=", "<=", "==", "!=", ">", "<", "="};
  const char *at = NULL, *op = NULL;
  for (const char *p = e; *p && at == NULL; p++)
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
      if (strncmp(p, ops[i], strlen(ops[i])) == 0) {
        at = p;
        op = ops[i];
        break;
      }
  char lhs[128], rhs[128];
  if (at == NULL || (size_t)(at - e) >= sizeof lhs || strlen(at + strlen(op)) >= sizeof rhs) {
    fprintf(stderr, "FAIL: malformed expectation '%s'\n", e);
    return 0;
  }
  memcpy(lhs, e, (size_t)(at - e));
  lhs[at - e] = '\0';
  strcpy(rhs, at + strlen(op));
  long long a, b;
  if (!value_of(lhs, &a) || !value_of(rhs, &b)) {
    fprintf(stderr, "FAIL: unknown name in expectation '%s'\n", e);
    return 0;
  }
  int ok = strcmp(op, ">=") == 0   ? a >= b
           : strcmp(op, "<=") == 0 ? a <= b
           : strcmp(op, "!=") == 0 ? a != b
           : strcmp(op, ">") == 0  ? a > b
           : strcmp(op, "<") == 0  ? a < b
                                   : a == b;
  printf("  expect %-32s %s (%lld %s %lld)\n", e, ok ? "ok" : "BROKEN", a, op, b);
  if (!ok) fprintf(stderr, "FAIL: expectation '%s' broken: %s = %lld, %s = %lld\n", e, lhs, a, rhs, b);
  return ok;
}

static void print_counters(const char *mode) {
  printf("probe %s:", mode);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    uint64_t v;
    memcpy(&v, (const char *)&d + fields[i].off, sizeof v);
    printf(" %s=%llu", fields[i].name, (unsigned long long)v);
  }
  printf(" tls_cap0=%u tls_cap=%u\n", tls_cap0, tls_cap1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "FAIL: usage: %s churn|remote|local|idle EXPECTATION...\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  int cls = strcmp(mode, "local") == 0 ? LOCAL_CLASS : strcmp(mode, "remote") == 0 ? REMOTE_CLASS
                                                                                  : CHURN_CLASS;
  /* The main thread's cache exists (and its class capacity is the initial one) before the
   * baseline is taken. */
  void *p = hak_malloc(hak_class_size(cls));
  T_CHECK(p != NULL, "hak_malloc failed");
  hak_free(p);
  hak_class_stats_t cs;
  hak_class_stats_get(cls, &cs);
  tls_cap0 = cs.tls_cap;
  hak_stats_t before = t_stats();

  if (strcmp(mode, "churn") == 0) {
    workload_churn();
  } else if (strcmp(mode, "remote") == 0) {
    workload_remote();
  } else if (strcmp(mode, "local") == 0) {
    workload_local();
  } else if (strcmp(mode, "idle") != 0) {
    fprintf(stderr, "FAIL: unknown mode '%s'\n", mode);
    return 2;
  }

  hak_stats_t after = t_stats();
  hak_class_stats_get(cls, &cs);
  tls_cap1 = cs.tls_cap;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    uint64_t a, b;
    memcpy(&a, (const char *)&after + fields[i].off, sizeof a);
    memcpy(&b, (const char *)&before + fields[i].off, sizeof b);
    uint64_t g = a >= b ? a - b : 0;
    memcpy((char *)&d + fields[i].off, &g, sizeof g);
  }
  print_counters(mode);
  int ok = 1;
  for (int i = 2; i < argc; i++) ok &= check_expectation(argv[i]);
  if (!ok) return 1;
  printf("PROBE OK\n");
  return 0;
}
