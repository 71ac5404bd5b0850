/// \file
/// The memory-per-sleeper baseline (see workload.hpp): 10,000 `std::thread`s blocked on one
/// `std::condition_variable`, started by `<threads>` starter threads; the RSS growth divided by
/// the threads that started.

#include "common/harness.hpp"
#include "sleep_memory/workload.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace bench::sleep_memory {
namespace {

/// What the blocked threads wait on.
struct gate {
  std::mutex mutex;
  std::condition_variable opened;
  bool open = false;  // guarded by mutex
  long blocked = 0;   // guarded by mutex
};

void block(gate& g) {
  std::unique_lock lock(g.mutex);
  ++g.blocked;
  g.opened.wait(lock, [&g] { return g.open; });
}

/// Starts up to `count` threads blocked on `g` into `into`; stops at the first the system
/// refuses.
void start_blocked(gate& g, long count, std::vector<std::thread>& into) {
  into.reserve(static_cast<std::size_t>(count));
  for (long i = 0; i < count; ++i) {
    try {
      into.emplace_back([&g] { block(g); });
    } catch (const std::system_error&) {
      return;
    }
  }
}

/// What one run measured: from the first thread start until every started thread is blocked,
/// the RSS growth over that time (negative if RSS cannot be read) and how many threads started.
struct outcome {
  double seconds = 0.0;
  long grown_bytes = -1;
  long started = 0;
};

outcome block_once(long total, long starters) {
  gate g;
  std::vector<std::vector<std::thread>> blocked(static_cast<std::size_t>(starters));
  release_free_memory();
  const long before = resident_bytes();
  const auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> starting;
    starting.reserve(blocked.size());
    for (long s = 0; s < starters; ++s) {
      // The first `total % starters` starters take one more.
      const long share = total / starters + (s < total % starters ? 1 : 0);
      std::vector<std::thread>& into = blocked[static_cast<std::size_t>(s)];
      try {
        starting.emplace_back([&g, share, &into] { start_blocked(g, share, into); });
      } catch (const std::system_error&) {
        start_blocked(g, share, into);  // no thread for a starter: start its share from here
      }
    }
    for (std::thread& starter : starting) {
      starter.join();
    }
  }
  long started = 0;
  for (const std::vector<std::thread>& some : blocked) {
    started += static_cast<long>(some.size());
  }
  for (;;) {
    {
      const std::lock_guard lock(g.mutex);
      if (g.blocked == started) {
        break;
      }
    }
    std::this_thread::yield();
  }
  const auto end = std::chrono::steady_clock::now();
  const long after = resident_bytes();
  {
    const std::lock_guard lock(g.mutex);
    g.open = true;
  }
  g.opened.notify_all();
  for (std::vector<std::thread>& some : blocked) {
    for (std::thread& thread : some) {
      thread.join();
    }
  }
  if (before < 0 || after < 0) {
    return outcome{};
  }
  return outcome{std::chrono::duration<double>(end - start).count(), after - before, started};
}

void run(benchmark::State& state) {
  const long total = blocked_threads();
  const auto starters = static_cast<long>(threads(state));
  double grown_bytes = 0.0;
  double started = 0.0;
  long runs = 0;
  for (auto _ : state) {
    const outcome measured = block_once(total, starters);
    if (measured.grown_bytes < 0) {
      state.SkipWithError("cannot read /proc/self/statm");
      break;
    }
    if (measured.started == 0) {
      state.SkipWithError("the system refused to start a single thread");
      break;
    }
    state.SetIterationTime(measured.seconds);
    grown_bytes +=
        static_cast<double>(measured.grown_bytes) / static_cast<double>(measured.started);
    started += static_cast<double>(measured.started);
    ++runs;
  }
  if (runs == 0) {
    return;
  }
  const double mean_started = started / static_cast<double>(runs);
  report_tasks(state, mean_started);
  state.counters["bytes_per_task"] = grown_bytes / static_cast<double>(runs);
  state.counters["started_threads"] = mean_started;
  if (mean_started < static_cast<double>(total)) {
    state.SetLabel("the system refused some of the " + std::to_string(total) + " threads");
  }
}

}  // namespace

BENCHMARK(run)->Name("sleep_memory/threads")->Apply(per_thread_count_manual);

}  // namespace bench::sleep_memory
