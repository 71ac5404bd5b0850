/// \file
/// Mutex contention on corun (see workload.hpp): `lockers` child tasks of the root each lock one
/// `corun::async_mutex`, increment the shared counter and unlock, their share of the pairs.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "mutex/workload.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>

namespace bench::mutex {
namespace {

corun::task<void> locker(corun::async_mutex& mutex, long& counter, long pairs) {
  for (long i = 0; i < pairs; ++i) {
    auto guard = co_await mutex.lock();
    ++counter;
  }
}

corun::task<long> contend(long total) {
  corun::async_mutex mutex;
  long counter = 0;  // guarded by `mutex`; read after every locker was joined
  std::array<corun::join_handle<void>, lockers> tasks;
  for (long i = 0; i < lockers; ++i) {
    tasks[static_cast<std::size_t>(i)] =
        corun::spawn(locker(mutex, counter, share(total, lockers, i)));
  }
  for (corun::join_handle<void>& task : tasks) {
    co_await task;
  }
  co_return counter;
}

void run(benchmark::State& state, long total) {
  corun::runtime rt(corun_options(state));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] { return check(state, rt.block_on(contend(total)), total); });
  report_tasks(state, static_cast<double>(total));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK_CAPTURE(run, unfair_baseline, size())->Name("mutex/corun")->Apply(per_thread_count);
BENCHMARK_CAPTURE(run, fair_baseline, fair_size())
    ->Name("mutex_fair/corun")
    ->Apply(per_thread_count);

}  // namespace bench::mutex
