// Every C++ operator new/delete form reaches hakmem (DROPIN 14, 16, 18). Built only when
// HAKMEM_OVERRIDE is on, linked with hakmem_static.
//
// Plain, array, nothrow, sized and align_val_t forms and their combinations return owned,
// aligned blocks; a failing throwing new calls the installed new_handler and then throws
// std::bad_alloc; a failing nothrow new returns nullptr; over-aligned types go through the
// aligned (sized) array forms; a thread_local destructor and a static destructor may allocate.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hak_test.h"

namespace {

const std::size_t kSizes[] = {0, 1, 8, 16, 100, 1024, 5000, 70000, 300000};

void check_block(void *p, std::size_t align, std::size_t size, const char *what) {
  t_check(p != nullptr, "%s(%zu) returned nullptr", what, size);
  t_check(hak_owns(p), "%s(%zu) = %p is not a hakmem block", what, size, p);
  t_check(t_aligned(p, align), "%s(%zu) = %p is not %zu-aligned", what, size, p, align);
  t_check(hak_usable_size(p) >= size, "usable size of %s(%zu) is %zu", what, size,
          hak_usable_size(p));
  t_fill(p, size, size + align);
  t_verify(p, size, size + align);
}

void check_plain_forms() {
  const std::size_t align = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
  for (std::size_t n : kSizes) {
    void *p = ::operator new(n);
    check_block(p, align, n, "operator new");
    ::operator delete(p);
    p = ::operator new(n);
    check_block(p, align, n, "operator new");
    ::operator delete(p, n);
    p = ::operator new[](n);
    check_block(p, align, n, "operator new[]");
    ::operator delete[](p);
    p = ::operator new[](n);
    check_block(p, align, n, "operator new[]");
    ::operator delete[](p, n);
    p = ::operator new(n, std::nothrow);
    check_block(p, align, n, "operator new(nothrow)");
    ::operator delete(p, std::nothrow);
    p = ::operator new[](n, std::nothrow);
    check_block(p, align, n, "operator new[](nothrow)");
    ::operator delete[](p, std::nothrow);
  }
}

void check_aligned_forms() {
  for (std::size_t a = 16; a <= (std::size_t{1} << 20); a *= 2) {
    const std::align_val_t al{a};
    for (std::size_t n : kSizes) {
      void *p = ::operator new(n, al);
      check_block(p, a, n, "operator new(align)");
      ::operator delete(p, al);
      p = ::operator new(n, al);
      check_block(p, a, n, "operator new(align)");
      ::operator delete(p, n, al);
      p = ::operator new[](n, al);
      check_block(p, a, n, "operator new[](align)");
      ::operator delete[](p, al);
      p = ::operator new[](n, al);
      check_block(p, a, n, "operator new[](align)");
      ::operator delete[](p, n, al);
      p = ::operator new(n, al, std::nothrow);
      check_block(p, a, n, "operator new(align, nothrow)");
      ::operator delete(p, al, std::nothrow);
      p = ::operator new[](n, al, std::nothrow);
      check_block(p, a, n, "operator new[](align, nothrow)");
      ::operator delete[](p, al, std::nothrow);
    }
  }
}

std::atomic<int> constructed{0}, destroyed{0};

template <std::size_t A> struct alignas(A) Over {
  unsigned char bytes[A / 2 + 3];
  Over() {
    t_check(t_aligned(this, A), "an alignas(%zu) object was constructed at %p", A,
            static_cast<void *>(this));
    bytes[0] = 0x5a;
    ++constructed;
  }
  ~Over() {
    t_check(bytes[0] == 0x5a, "an alignas(%zu) object was overwritten", A);
    ++destroyed;
  }
};

template <std::size_t A> void check_over_aligned_type() {
  constructed = destroyed = 0;
  for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{17}, std::size_t{100}}) {
    // A destructor means an array cookie; the Itanium C++ ABI pads it to alignof(T), so the
    // block hakmem returned starts A bytes before the first element.
    Over<A> *arr = new Over<A>[n];
    unsigned char *block = reinterpret_cast<unsigned char *>(arr) - A;
    t_check(hak_owns(block), "new Over<%zu>[%zu]: block %p is not a hakmem block", A, n,
            static_cast<void *>(block));
    for (std::size_t i = 0; i < n; i++)
      t_check(t_aligned(&arr[i], A), "element %zu of new Over<%zu>[] is misaligned", i, A);
    delete[] arr;
    Over<A> *one = new Over<A>;
    t_check(hak_owns(one), "new Over<%zu> = %p is not a hakmem block", A, static_cast<void *>(one));
    delete one;
    Over<A> *nt = new (std::nothrow) Over<A>;
    t_check(nt != nullptr && hak_owns(nt), "new (nothrow) Over<%zu> failed", A);
    delete nt;
  }
  t_check(constructed == destroyed && constructed > 0,
          "alignas(%zu): %d objects constructed, %d destroyed", A, constructed.load(),
          destroyed.load());
}

int handler_calls = 0;

void counting_handler() {
  handler_calls++;
  std::set_new_handler(nullptr); // the next attempt fails for good and throws
}

void throwing_handler() {
  handler_calls++;
  throw std::bad_alloc();
}

template <typename F> void expect_bad_alloc(F alloc, const char *what) {
  bool thrown = false;
  try {
    void *p = alloc();
    t_fail("%s succeeded with %p", what, p);
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  t_check(thrown, "%s did not throw std::bad_alloc", what);
}

void check_failures() {
  volatile std::size_t huge = SIZE_MAX - 4096;
  const std::align_val_t al{256};
  expect_bad_alloc([&] { return ::operator new(huge); }, "operator new(huge)");
  expect_bad_alloc([&] { return ::operator new[](huge); }, "operator new[](huge)");
  expect_bad_alloc([&] { return ::operator new(huge, al); }, "operator new(huge, align)");
  expect_bad_alloc([&] { return ::operator new[](huge, al); }, "operator new[](huge, align)");
  t_check(::operator new(huge, std::nothrow) == nullptr, "nothrow new(huge) is not nullptr");
  t_check(::operator new[](huge, std::nothrow) == nullptr, "nothrow new[](huge) is not nullptr");
  t_check(::operator new(huge, al, std::nothrow) == nullptr,
          "nothrow aligned new(huge) is not nullptr");

  // The installed handler runs once, uninstalls itself, and new then throws.
  handler_calls = 0;
  std::set_new_handler(counting_handler);
  expect_bad_alloc([&] { return ::operator new(huge); }, "operator new(huge) with a handler");
  t_check(handler_calls == 1, "new_handler was called %d times, expected 1", handler_calls);

  handler_calls = 0;
  std::set_new_handler(counting_handler);
  expect_bad_alloc([&] { return ::operator new(huge, al); },
                   "aligned operator new(huge) with a handler");
  t_check(handler_calls == 1, "new_handler (aligned new) was called %d times", handler_calls);

  handler_calls = 0;
  std::set_new_handler(counting_handler);
  t_check(::operator new(huge, std::nothrow) == nullptr, "nothrow new(huge) with a handler");
  t_check(handler_calls == 1, "new_handler (nothrow new) was called %d times", handler_calls);

  handler_calls = 0;
  std::set_new_handler(throwing_handler);
  t_check(::operator new[](huge, std::nothrow) == nullptr,
          "nothrow new[](huge) with a throwing handler did not return nullptr");
  expect_bad_alloc([&] { return ::operator new(huge); }, "new with a throwing handler");
  t_check(handler_calls == 2, "throwing new_handler was called %d times, expected 2",
          handler_calls);
  std::set_new_handler(nullptr);

  // Still healthy afterwards.
  void *p = ::operator new(64);
  check_block(p, 16, 64, "operator new after failures");
  ::operator delete (p, std::size_t{64});
}

// ---- the library on top --------------------------------------------------------------------

void check_library_use() {
  std::map<std::string, std::vector<std::string>> m;
  for (int i = 0; i < 2000; i++)
    m[std::to_string(i % 97)].push_back(std::string(static_cast<std::size_t>(i % 300), 'x'));
  std::size_t total = 0;
  for (const auto &kv : m)
    for (const auto &s : kv.second)
      total += s.size();
  std::size_t expect = 0;
  for (int i = 0; i < 2000; i++)
    expect += static_cast<std::size_t>(i % 300);
  t_check(total == expect, "std::map/vector/string lost data: %zu != %zu", total, expect);
  t_check(hak_owns(m.begin()->second.data()) || m.begin()->second.front().empty(),
          "std::vector storage is not a hakmem block");
  int caught = 0;
  for (int i = 0; i < 100; i++) {
    try {
      throw std::runtime_error(std::string(200, 'e'));
    } catch (const std::runtime_error &e) {
      caught += std::string(e.what()).size() == 200;
    }
  }
  t_check(caught == 100, "caught %d of 100 exceptions", caught);
}

// ---- thread_local destructor (DROPIN 16) ----------------------------------------------------

std::atomic<int> tls_dtor_ok{0};

struct ThreadState {
  std::vector<std::string> *strings = nullptr;
  ~ThreadState() {
    auto *late = new std::string(500, 'z');
    t_check(hak_owns(late->data()), "allocation in a thread_local destructor is not hakmem's");
    delete late;
    delete strings;
    tls_dtor_ok++;
  }
};

thread_local ThreadState thread_state;

void check_thread_local_dtor() {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back(
        [] { thread_state.strings = new std::vector<std::string>(100, std::string(100, 'q')); });
  for (auto &th : threads)
    th.join();
  t_check(tls_dtor_ok == 4, "%d of 4 thread_local destructors completed", tls_dtor_ok.load());
}

// ---- static destructor after main (DROPIN 18) ----------------------------------------------

struct LateUser {
  ~LateUser() {
    auto *v = new std::vector<int>(10000, 7);
    t_check(hak_owns(v->data()), "allocation in a static destructor is not hakmem's");
    long sum = 0;
    for (int x : *v)
      sum += x;
    t_check(sum == 70000, "static destructor: vector sum %ld", sum);
    delete v;
    void *a = ::operator new (100, std::align_val_t{128});
    t_check(t_aligned(a, 128) && hak_owns(a), "aligned new in a static destructor");
    ::operator delete (a, std::align_val_t{128});
  }
} late_user;

} // namespace

int main() {
  char *probe = static_cast<char *>(malloc(16));
  t_check(probe != nullptr, "malloc(16) returned NULL");
  probe[0] = 1;
  t_check(hak_owns(probe), "malloc(16) is not a hakmem block: the override is not linked in");
  free(probe);
  check_plain_forms();
  check_aligned_forms();
  check_over_aligned_type<64>();
  check_over_aligned_type<256>();
  check_over_aligned_type<4096>();
  check_failures();
  check_library_use();
  check_thread_local_dtor();
  std::printf("api_cxx: ok\n");
  return 0;
}
