// A plain C++17 program (not linked with hakmem: the realworld test only preloads it) for
// realworld_cxx: STL containers, exceptions carried across threads, iostreams, threads that free
// each other's objects, over-aligned new (alignas 64, 128, 256, 1024 and 4096: single objects,
// arrays, vectors, make_shared, nothrow) and sized delete (plain, array, aligned, through a
// virtual destructor). Every over-aligned pointer is checked against its type's alignment and
// every object's contents against what was written; a mismatch is printed and fails the exit
// status. What it prints is deterministic, so a run under LD_PRELOAD=libhakmem.so must print
// exactly what a plain run prints.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

std::mutex g_report_lock;
unsigned g_failures = 0;

void fail(const std::string &what) {
  std::lock_guard<std::mutex> guard(g_report_lock);
  ++g_failures;
  if (g_failures <= 20)
    std::cout << "FAIL: " << what << "\n";
}

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 31;
  x *= 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

// An over-aligned type of A bytes' alignment holding a recognisable pattern.
template <std::size_t A> struct alignas(A) Aligned {
  std::uint64_t seed;
  unsigned char fill[A + 24];
  explicit Aligned(std::uint64_t s = 0) : seed(s) { std::memset(fill, int(s & 0xff), sizeof fill); }
  bool intact() const {
    for (unsigned char c : fill)
      if (c != (seed & 0xff))
        return false;
    return true;
  }
};

template <typename T> void check_aligned(const T *p, const char *what) {
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0) {
    std::ostringstream msg;
    msg << what << " alignof " << alignof(T) << ": pointer off by "
        << reinterpret_cast<std::uintptr_t>(p) % alignof(T);
    fail(msg.str());
  }
}

// Single objects, arrays, vectors, shared and unique pointers and nothrow new of one alignment.
template <std::size_t A> std::uint64_t exercise_alignment(unsigned rounds) {
  using T = Aligned<A>;
  std::uint64_t sum = 0;
  for (unsigned r = 0; r < rounds; ++r) {
    T *one = new T(r);
    check_aligned(one, "new");
    std::size_t n = 1 + r % 9;
    T *many = new T[n];
    for (std::size_t i = 0; i < n; ++i)
      check_aligned(&many[i], "new[]");
    std::vector<T> vec;
    for (unsigned i = 0; i < 1 + r % 17; ++i) {
      vec.emplace_back(r + i);
      check_aligned(vec.data(), "vector");
    }
    auto shared = std::make_shared<T>(r * 3);
    check_aligned(shared.get(), "make_shared");
    auto unique = std::make_unique<T>(r * 5);
    check_aligned(unique.get(), "make_unique");
    T *nothrow = new (std::nothrow) T(r * 7);
    if (nothrow == nullptr)
      fail("nothrow new returned null");
    check_aligned(nothrow, "new(nothrow)");
    if (!one->intact() || !vec.back().intact() || !shared->intact() || !unique->intact() ||
        !nothrow->intact())
      fail("aligned object contents changed");
    sum += one->seed + vec.size() + shared->seed + unique->seed + nothrow->seed + n;
    delete one;
    delete[] many;
    delete nothrow;
  }
  // The raw operators, with the size and alignment the compiler would pass.
  for (unsigned r = 0; r < rounds; ++r) {
    std::size_t size = A * (1 + r % 5);
    void *p = ::operator new(size, std::align_val_t(A));
    if (reinterpret_cast<std::uintptr_t>(p) % A != 0)
      fail("operator new(size, align) misaligned");
    std::memset(p, 0x5a, size);
    ::operator delete(p, size, std::align_val_t(A));
    void *q = ::operator new[](size, std::align_val_t(A), std::nothrow);
    if (q == nullptr || reinterpret_cast<std::uintptr_t>(q) % A != 0)
      fail("operator new[](size, align, nothrow)");
    ::operator delete[](q, std::align_val_t(A), std::nothrow);
  }
  return sum;
}

// Sized delete through a virtual destructor: the compiler passes the most derived type's size.
struct Shape {
  virtual ~Shape() = default;
  virtual std::uint64_t area() const = 0;
};
struct Square : Shape {
  std::uint64_t side;
  explicit Square(std::uint64_t s) : side(s) {}
  std::uint64_t area() const override { return side * side; }
};
struct Polygon : Shape {
  std::vector<std::uint64_t> sides;
  char label[200];
  explicit Polygon(std::uint64_t n) : sides(n % 40 + 3, n) {
    std::snprintf(label, sizeof label, "polygon-%llu", static_cast<unsigned long long>(n));
  }
  std::uint64_t area() const override { return sides.size() * sides[0] + std::strlen(label); }
};
struct alignas(128) AlignedShape : Shape {
  std::uint64_t v;
  explicit AlignedShape(std::uint64_t x) : v(x) {}
  std::uint64_t area() const override { return v + 128; }
};

std::uint64_t exercise_sized_delete(unsigned rounds) {
  std::uint64_t sum = 0;
  std::vector<std::unique_ptr<Shape>> shapes;
  for (unsigned i = 0; i < rounds; ++i) {
    switch (i % 3) {
    case 0: shapes.push_back(std::make_unique<Square>(i)); break;
    case 1: shapes.push_back(std::make_unique<Polygon>(i)); break;
    default: {
      auto p = std::make_unique<AlignedShape>(i);
      check_aligned(p.get(), "AlignedShape");
      shapes.push_back(std::move(p));
    }
    }
    if (i % 4 == 3)
      shapes.erase(shapes.begin() + static_cast<std::ptrdiff_t>(i % shapes.size()));
  }
  for (const auto &s : shapes)
    sum += s->area();
  // Explicit sized operators, as -fsized-deallocation emits them for complete types.
  for (unsigned i = 1; i < rounds; ++i) {
    std::size_t size = (i * 37) % 5000 + 1;
    void *p = ::operator new(size);
    std::memset(p, int(i), size);
    ::operator delete(p, size);
    void *q = ::operator new[](size);
    ::operator delete[](q, size);
  }
  return sum;
}

// Containers and strings, built and torn down, with an exception thrown on every 11th key.
struct Bad : std::runtime_error {
  explicit Bad(const std::string &w) : std::runtime_error(w) {}
};

std::string container_work(unsigned id, unsigned items) {
  std::map<std::string, std::vector<std::uint64_t>> by_name;
  std::unordered_map<std::uint64_t, std::string> by_key;
  std::set<std::string> names;
  std::list<std::string> recent;
  std::deque<std::uint64_t> queue;
  unsigned thrown = 0;
  std::uint64_t x = id + 1;
  for (unsigned i = 0; i < items; ++i) {
    x = mix(x + i);
    std::string name = "n" + std::to_string(x % 5003) + std::string(x % 61, 'x');
    try {
      if (x % 11 == 0)
        throw Bad("bad key " + name);
      by_name[name].push_back(x);
      by_key.emplace(x % 20011, name);
      names.insert(name.substr(0, 8));
      recent.push_front(name);
      if (recent.size() > 100)
        recent.pop_back();
      queue.push_back(x);
      if (queue.size() > 300)
        queue.pop_front();
    } catch (const Bad &e) {
      thrown += e.what()[0] == 'b';
    }
  }
  std::ostringstream out;
  std::uint64_t total = 0;
  for (const auto &[name, values] : by_name)
    total += values.size() * name.size();
  out << "worker " << id << ": names=" << by_name.size() << " keys=" << by_key.size()
      << " prefixes=" << names.size() << " thrown=" << thrown << " total=" << total
      << " last=" << (recent.empty() ? std::string("-") : recent.front().substr(0, 12));
  return out.str();
}

// Threads hand over objects (aligned ones included) that another thread frees, and exceptions
// that another thread rethrows and catches.
struct Handoff {
  std::vector<Aligned<256> *> blocks;
  std::vector<std::string *> strings;
  std::exception_ptr error;
};

void produce(unsigned id, unsigned n, Handoff &out) {
  for (unsigned i = 0; i < n; ++i) {
    out.blocks.push_back(new Aligned<256>(id * 1000 + i));
    out.strings.push_back(new std::string(100 + i % 900, char('a' + id % 26)));
  }
  try {
    throw std::out_of_range("producer " + std::to_string(id) + std::string(5000, '!'));
  } catch (...) {
    out.error = std::current_exception();
  }
}

std::string consume(Handoff &in) {
  std::uint64_t sum = 0;
  for (auto *b : in.blocks) {
    check_aligned(b, "handoff");
    if (!b->intact())
      fail("handed-over block changed");
    sum += b->seed;
    delete b;
  }
  for (auto *s : in.strings) {
    sum += s->size();
    delete s;
  }
  std::string caught;
  try {
    std::rethrow_exception(in.error);
  } catch (const std::out_of_range &e) {
    caught = std::string(e.what()).substr(0, 11);
  }
  in.error = nullptr;
  return caught + " sum=" + std::to_string(sum);
}

} // namespace

int main() {
  std::cout << "aligned 64: " << exercise_alignment<64>(400) << "\n";
  std::cout << "aligned 128: " << exercise_alignment<128>(400) << "\n";
  std::cout << "aligned 256: " << exercise_alignment<256>(300) << "\n";
  std::cout << "aligned 1024: " << exercise_alignment<1024>(200) << "\n";
  std::cout << "aligned 4096: " << exercise_alignment<4096>(100) << "\n";
  std::cout << "sized delete: " << exercise_sized_delete(20000) << "\n";

  // Aligned allocations from several threads at once.
  {
    std::vector<std::future<std::uint64_t>> jobs;
    for (unsigned t = 0; t < 4; ++t)
      jobs.push_back(std::async(std::launch::async, [t] {
        return exercise_alignment<64>(200 + t) + exercise_alignment<4096>(50 + t) +
               exercise_alignment<1024>(60);
      }));
    std::uint64_t sum = 0;
    for (auto &j : jobs)
      sum += j.get();
    std::cout << "threaded aligned: " << sum << "\n";
  }

  // Containers in four threads, results printed in thread order.
  {
    std::vector<std::string> lines(4);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t)
      threads.emplace_back([t, &lines] { lines[t] = container_work(t, 60000); });
    for (auto &th : threads)
      th.join();
    for (const auto &l : lines)
      std::cout << l << "\n";
  }

  // Producer/consumer pairs: each consumer frees what its producer allocated.
  for (unsigned round = 0; round < 3; ++round) {
    std::vector<Handoff> handoffs(4);
    std::vector<std::thread> producers;
    for (unsigned t = 0; t < 4; ++t)
      producers.emplace_back(produce, t + round * 4, 2000, std::ref(handoffs[t]));
    for (auto &th : producers)
      th.join();
    std::vector<std::string> results(4);
    std::vector<std::thread> consumers;
    for (unsigned t = 0; t < 4; ++t)
      consumers.emplace_back([t, &handoffs, &results] { results[(t + 1) % 4] = consume(handoffs[(t + 1) % 4]); });
    for (auto &th : consumers)
      th.join();
    for (unsigned t = 0; t < 4; ++t)
      std::cout << "handoff " << round << "." << t << ": " << results[t] << "\n";
  }

  // iostreams: formatting and parsing a few hundred kilobytes.
  {
    std::ostringstream out;
    for (unsigned i = 0; i < 20000; ++i)
      out << std::setw(8) << std::hex << mix(i) % 0xffffffu << ' ' << std::dec << i * 3 << '\n';
    std::istringstream in(out.str());
    std::string hex;
    std::uint64_t value = 0, sum = 0, lines = 0;
    while (in >> hex >> value) {
      sum += value + hex.size();
      ++lines;
    }
    std::cout << "iostream: " << out.str().size() << " bytes, " << lines << " lines, sum " << sum
              << "\n";
  }

  std::cout << "failures: " << g_failures << "\n";
  return g_failures == 0 ? 0 : 1;
}
