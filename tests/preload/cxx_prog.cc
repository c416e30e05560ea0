// A plain C++ program (not linked with hakmem) for the preload test "preload_cxx": exceptions,
// iostreams, std::thread, containers, thread_local and static destructors that allocate. Its
// output is deterministic, so a run under LD_PRELOAD=libhakmem.so must print exactly what a
// plain run prints.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Failure : std::runtime_error {
  explicit Failure(const std::string &what) : std::runtime_error(what) {}
};

std::uint64_t step(std::uint64_t x) { return x * 6364136223846793005ull + 1442695040888963407ull; }

// Builds and destroys containers; throws on every 7th item to exercise unwinding.
std::string worker(int id) {
  std::map<std::string, std::vector<int>> buckets;
  std::uint64_t x = static_cast<std::uint64_t>(id) + 1;
  int thrown = 0;
  for (int i = 0; i < 20000; i++) {
    x = step(x);
    std::string key = "k" + std::to_string(x % 257);
    try {
      if (i % 7 == 3)
        throw Failure("item " + std::to_string(i) + " of worker " + std::to_string(id));
      buckets[key].push_back(static_cast<int>(x >> 40));
    } catch (const Failure &f) {
      thrown += f.what()[0] == 'i';
    }
  }
  std::ostringstream out;
  long long sum = 0;
  for (const auto &kv : buckets)
    sum += std::accumulate(kv.second.begin(), kv.second.end(), 0LL);
  out << "worker " << id << ": buckets=" << buckets.size() << " sum=" << sum
      << " thrown=" << thrown;
  return out.str();
}

struct PerThread {
  std::unique_ptr<std::vector<std::string>> log;
  ~PerThread() {
    // Allocates during thread teardown.
    std::vector<std::string> copy(log ? log->size() : 0, std::string(64, 'd'));
    (void)copy;
  }
};
thread_local PerThread per_thread;

struct AtExit {
  ~AtExit() {
    // Allocates after main has returned.
    std::unordered_map<int, std::string> m;
    for (int i = 0; i < 1000; i++)
      m[i] = std::string(static_cast<std::size_t>(i % 50), 'e');
  }
} at_exit;

} // namespace

int main() {
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([t, &results] {
      per_thread.log = std::make_unique<std::vector<std::string>>(100, "entry");
      results[static_cast<std::size_t>(t)] = worker(t);
    });
  }
  for (auto &th : threads)
    th.join();
  for (const auto &r : results)
    std::cout << r << '\n';

  // Exceptions across std::thread via exception_ptr.
  std::exception_ptr error;
  std::thread([&error] {
    try {
      throw std::out_of_range(std::string(300, 'o'));
    } catch (...) {
      error = std::current_exception();
    }
  }).join();
  try {
    std::rethrow_exception(error);
  } catch (const std::out_of_range &e) {
    std::cout << "rethrown: " << std::string(e.what()).size() << " chars\n";
  }

  // iostreams formatting and a large string stream.
  std::ostringstream big;
  for (int i = 0; i < 100000; i++)
    big << std::hex << i * 2654435761u << ' ';
  std::string text = big.str();
  std::cout << "stream bytes: " << text.size() << " last: " << text.substr(text.size() - 9, 8)
            << '\n';

  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;)
    words.push_back(w);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  std::cout << "distinct words: " << words.size() << " first: " << words.front() << '\n';
  return 0;
}
