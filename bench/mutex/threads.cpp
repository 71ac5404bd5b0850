/// \file
/// The mutex contention baseline on `std::thread`s (see workload.hpp): as many threads as the
/// worker count, each locking one `std::mutex`, incrementing the shared counter and unlocking,
/// their share of the pairs; and the same on a FIFO ticket lock (`mutex_fair`). oneTBB has no
/// mutex that suspends a task, hence no tbb version.

#include "common/harness.hpp"
#include "mutex/workload.hpp"

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace bench::mutex {
namespace {

/// A FIFO ticket lock: `lock` takes the next ticket and waits until it is served; `unlock`
/// serves the next one. No barging: under contention every unlock hands the lock over to the
/// oldest waiter, as `corun::async_mutex` does.
class fifo_mutex {
 public:
  void lock() {
    std::unique_lock<std::mutex> held(m_state);
    const unsigned long ticket = m_next++;
    m_turn.wait(held, [&] { return m_serving == ticket; });
  }
  void unlock() {
    {
      const std::lock_guard<std::mutex> held(m_state);
      ++m_serving;
    }
    m_turn.notify_all();  // the waiters hold different tickets: only one of them goes on
  }

 private:
  std::mutex m_state;
  std::condition_variable m_turn;
  unsigned long m_next = 0;     // the next ticket to hand out
  unsigned long m_serving = 0;  // the ticket holding the lock
};

template <class Mutex>
long contend(long total, long threads) {
  Mutex mutex;
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

template <class Mutex>
void run(benchmark::State& state, long total) {
  const auto count = static_cast<long>(threads(state));
  measure(state, [&] { return check(state, contend<Mutex>(total, count), total); });
  report_tasks(state, static_cast<double>(total));
}

void run_std_mutex(benchmark::State& state, long total) { run<std::mutex>(state, total); }
void run_fifo_mutex(benchmark::State& state, long total) { run<fifo_mutex>(state, total); }

}  // namespace

BENCHMARK_CAPTURE(run_std_mutex, std_mutex, size())->Name("mutex/threads")->Apply(per_thread_count);
BENCHMARK_CAPTURE(run_fifo_mutex, fifo_mutex, fair_size())
    ->Name("mutex_fair/threads")
    ->Apply(per_thread_count);

}  // namespace bench::mutex
