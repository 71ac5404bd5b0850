/// \file
/// Memory per sleeping task on corun (see workload.hpp): a million tasks asleep in
/// `sleep_for(1h)`, the RSS growth divided by them; destroying the runtime cancels them.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "sleep_memory/workload.hpp"
#include "storm/workload.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>

namespace bench::sleep_memory {
namespace {

using storm::sharded_counter;

corun::task<void> sleeper(sharded_counter& asleep) {
  asleep.increment();
  co_await corun::sleep_for(std::chrono::hours(1));
}

corun::task<void> spawn_sleepers(long total, sharded_counter& asleep) {
  for (long i = 0; i < total; ++i) {
    static_cast<void>(corun::spawn(sleeper(asleep)));
  }
  co_return;
}

/// What one run measured: from the first spawn until every task is asleep, and the RSS growth
/// over that time (negative if RSS cannot be read).
struct outcome {
  double seconds = 0.0;
  long grown_bytes = -1;
};

outcome sleep_once(const benchmark::State& state, long total) {
  sharded_counter asleep;  // outlives the runtime, whose destruction ends the sleepers
  corun::runtime rt(corun_options(state));
  release_free_memory();
  const long before = resident_bytes();
  const auto start = std::chrono::steady_clock::now();
  static_cast<void>(rt.spawn(spawn_sleepers(total, asleep)));
  // A sleeper counts itself just before it suspends: at most one per worker is still on its
  // way into the timer queue when the count is complete.
  while (asleep.total() < total) {
    std::this_thread::yield();
  }
  const auto end = std::chrono::steady_clock::now();
  const long after = resident_bytes();
  if (before < 0 || after < 0) {
    return outcome{};
  }
  return outcome{std::chrono::duration<double>(end - start).count(), after - before};
}

void run(benchmark::State& state) {
  const long total = tasks();
  double grown_bytes = 0.0;
  long runs = 0;
  for (auto _ : state) {
    const outcome measured = sleep_once(state, total);
    if (measured.grown_bytes < 0) {
      state.SkipWithError("cannot read /proc/self/statm");
      break;
    }
    state.SetIterationTime(measured.seconds);
    grown_bytes += static_cast<double>(measured.grown_bytes);
    ++runs;
  }
  report_tasks(state, static_cast<double>(total));
  if (runs > 0) {
    state.counters["bytes_per_task"] = grown_bytes / static_cast<double>(runs * total);
  }
}

}  // namespace

BENCHMARK(run)->Name("sleep_memory/corun")->Apply(per_thread_count_manual);

}  // namespace bench::sleep_memory
