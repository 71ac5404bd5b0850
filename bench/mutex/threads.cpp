/// \file
/// The mutex contention baseline on `std::thread`s (see workload.hpp): as many threads as the
/// worker count, each locking one `std::mutex`, incrementing the shared counter and unlocking,
/// their share of the pairs. oneTBB has no mutex that suspends a task, hence no tbb version.

#include "common/harness.hpp"
#include "mutex/workload.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace bench::mutex {
namespace {

long contend(long total, long threads) {
  std::mutex mutex;
  long counter = 0;  // guarded by `mutex`; read after every thread was joined
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads));
  for (long i = 0; i < threads; ++i) {
    workers.emplace_back([&mutex, &counter, pairs = share(total, threads, i)] {
      for (long p = 0; p < pairs; ++p) {
        const std::lock_guard lock(mutex);
        ++counter;
      }
    });
  }
  for (std::thread& worker : workers) {
    worker.join();
  }
  return counter;
}

void run(benchmark::State& state) {
  const long total = size();
  const auto count = static_cast<long>(threads(state));
  measure(state, [&] { return check(state, contend(total, count), total); });
  report_tasks(state, static_cast<double>(total));
}

}  // namespace

BENCHMARK(run)->Name("mutex/threads")->Apply(per_thread_count);

}  // namespace bench::mutex
