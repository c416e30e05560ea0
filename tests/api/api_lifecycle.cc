// Allocation at the edges of a thread's and the process's life: thread_local destructors,
// pthread key destructors that run after hakmem's own thread teardown, atexit handlers and
// static destructors. Blocks allocated there are checked and freed elsewhere; at the end the
// live-block count is back where it started.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "hakmem.h"

namespace {

void fail(const char *what) {
  char buf[256];
  size_t n = strlen(what);
  if (n > 200) n = 200;
  memcpy(buf, "FAIL: ", 6);
  memcpy(buf + 6, what, n);
  buf[6 + n] = '\n';
  (void)!write(2, buf, 7 + n);
  _exit(1);
}

void say(const char *s) { (void)!write(1, s, strlen(s)); }

unsigned char pattern(const void *p, size_t i) {
  return (unsigned char)(((uintptr_t)p >> 4) + i * 31u);
}

void *alloc_filled(size_t n) {
  unsigned char *p = static_cast<unsigned char *>(hak_malloc(n));
  if (p == nullptr) fail("allocation returned NULL");
  for (size_t i = 0; i < n; i++) p[i] = pattern(p, i);
  return p;
}

void check_and_free(void *vp, size_t n) {
  unsigned char *p = static_cast<unsigned char *>(vp);
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern(p, i)) fail("block contents changed");
  hak_free(p);
}

struct Kept {
  void *p;
  size_t n;
};
std::mutex kept_lock;
std::vector<Kept> *kept;  // blocks made in destructors, freed by main

// Allocates and frees in a burst, keeps a few blocks for main.
void churn_and_keep(int salt) {
  void *tmp[64];
  for (int i = 0; i < 64; i++) tmp[i] = alloc_filled(16 + (size_t)((i * 37 + salt) % 3000));
  for (int i = 0; i < 64; i += 2) check_and_free(tmp[i], 16 + (size_t)((i * 37 + salt) % 3000));
  std::lock_guard<std::mutex> g(kept_lock);
  for (int i = 1; i < 64; i += 2) kept->push_back({tmp[i], 16 + (size_t)((i * 37 + salt) % 3000)});
}

struct TlsUser {
  int salt = 0;
  void *own = nullptr;
  ~TlsUser() {
    if (own) check_and_free(own, 100);
    churn_and_keep(salt);
  }
};
thread_local TlsUser tls_user;

pthread_key_t late_key;  // created after hakmem's key: its destructor runs after hakmem's
std::atomic<int> key_dtors{0};

void late_key_dtor(void *arg) {
  churn_and_keep((int)(uintptr_t)arg);
  key_dtors++;
}

void thread_body(int id) {
  tls_user.salt = id;
  tls_user.own = alloc_filled(100);
  pthread_setspecific(late_key, (void *)(uintptr_t)(id + 1));
  void *p = alloc_filled(200);
  check_and_free(p, 200);
}

struct StaticUser {
  ~StaticUser() {
    void *p = alloc_filled(5000);
    void *q = alloc_filled(40);
    check_and_free(p, 5000);
    check_and_free(q, 40);
    say("static dtor ok\n");
  }
};
StaticUser static_user;

void at_exit_handler() {
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = alloc_filled((size_t)(8 + i * 13));
  for (int i = 0; i < 100; i++) check_and_free(p[i], (size_t)(8 + i * 13));
  say("atexit ok; ");
}

}  // namespace

int main() {
  hak_free(hak_malloc(1));  // hakmem's own thread key exists before ours
  kept = new std::vector<Kept>();
  kept->reserve(100000);
  if (pthread_key_create(&late_key, late_key_dtor) != 0) fail("pthread_key_create");
  hak_stats_t before;
  hak_stats_get(&before);

  for (int round = 0; round < 4; round++) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) threads.emplace_back(thread_body, round * 8 + t);
    for (auto &th : threads) th.join();
  }
  if (key_dtors.load() != 32) fail("pthread key destructors did not all run");
  if (kept->size() != 64 * 32) fail("destructors did not all keep their blocks");
  for (const Kept &k : *kept) check_and_free(k.p, k.n);
  kept->clear();

  hak_stats_t after;
  hak_stats_get(&after);
  if (after.live_blocks != before.live_blocks) fail("live blocks not back to the start");
  if (after.threads_exited < before.threads_exited + 32) fail("thread exits not counted");
  atexit(at_exit_handler);
  say("threads ok; ");
  return 0;
}
