/// \file
/// The timer workloads on corun (see workload.hpp): `timers/corun` and `timers_virtual/corun`
/// (a task per timer, sleeping until its deadline), `timer_lateness/corun` and
/// `timer_lateness/corun_busy` (how late sleeps of 1..20 ms end, on idle and on busy workers).

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "storm/workload.hpp"
#include "timers/workload.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace bench::timers {
namespace {

using storm::sharded_counter;

/// What the sleepers of a `timers` run count: themselves just before they suspend, and again
/// once they woke.
struct sleeper_counts {
  sharded_counter asleep;
  sharded_counter woke;
};

corun::task<void> sleeper(corun::time_point deadline, sleeper_counts& counts) {
  counts.asleep.increment();
  co_await corun::sleep_until(deadline);
  counts.woke.increment();
}

/// Spawns a sleeper per timer and lets them go: the root completes once all of them woke.
corun::task<void> arm_all(corun::time_point first, long total, std::chrono::nanoseconds span,
                          sleeper_counts& counts) {
  for (long i = 0; i < total; ++i) {
    static_cast<void>(corun::spawn(sleeper(first + offset(i, total, span), counts)));
  }
  co_return;
}

/// How often the benchmark thread looks whether every sleeper is asleep.
constexpr std::chrono::microseconds poll_interval{100};

std::optional<run_phases> fire_once(benchmark::State& state, corun::runtime& rt, bool virtual_time,
                                    long total, std::chrono::nanoseconds lead,
                                    sleeper_counts& counts) {
  counts.asleep.reset();
  counts.woke.reset();
  const auto start = std::chrono::steady_clock::now();
  const corun::time_point first = rt.now() + lead;  // virtual time: on the runtime's clock
  auto root = rt.spawn(arm_all(first, total, spread(), counts));
  while (counts.asleep.total() < total) {
    std::this_thread::sleep_for(poll_interval);
  }
  const auto armed = std::chrono::steady_clock::now();
  root.get();
  const auto done = std::chrono::steady_clock::now();
  if (!check(state, counts.woke.total(), total)) {
    return std::nullopt;
  }
  // Real time: firing starts at the first deadline. Virtual time jumps there as soon as the
  // workers are idle, which they are once everything is armed.
  const auto firing = virtual_time ? armed : std::max(armed, first);
  return run_phases{armed - start, done - firing};
}

void run_timers(benchmark::State& state, bool virtual_time) {
  const long total = count();
  sleeper_counts counts;
  corun::runtime_options options = corun_options(state);
  options.virtual_time = virtual_time;
  corun::runtime rt(std::move(options));
  const corun::runtime_stats before = rt.stats();
  measure_phases(state, total, [&](std::chrono::nanoseconds lead) {
    return fire_once(state, rt, virtual_time, total, lead, counts);
  });
  report_corun_stats(state, before, rt.stats());
}

corun::task<void> timed_sleeper(long index, std::chrono::nanoseconds& lateness,
                                std::atomic<long>& armed) {
  const corun::time_point deadline = corun::now() + sleep_of(index);
  // Relaxed: only counted; the root waits for the count, not for data.
  armed.fetch_add(1, std::memory_order_relaxed);
  co_await corun::sleep_until(deadline);
  lateness = corun::now() - deadline;
}

/// Which worker threads already run a spinner; shared by the spinners of one run.
class spinner_seats {
 public:
  /// Takes a seat on the calling worker thread; false if it has one already.
  [[nodiscard]] bool take() {
    const std::lock_guard lock(m_mutex);
    const std::thread::id self = std::this_thread::get_id();
    if (std::find(m_taken.begin(), m_taken.end(), self) != m_taken.end()) {
      return false;
    }
    m_taken.push_back(self);
    return true;
  }

 private:
  std::mutex m_mutex;
  std::vector<std::thread::id> m_taken;  // guarded by m_mutex
};

/// A CPU-bound task: computes for `busy_step` between yields until `stop` is set, alone on its
/// worker. A yielded task goes on its worker's private list, which no other worker steals from,
/// so a spinner stays where it first yields; left to chance, at two workers both spinners
/// often end up on one worker while the other idles and serves the timers on time. So a
/// spinner that finds its worker taken spawns a fresh copy of itself into `group` and ends:
/// the copy goes on the deque, where the worker without a spinner steals it.
///
/// Not a chain of spawned steps either: a worker runs the newest task of its deque first, and a
/// chain's next step is always the newest, so whatever lay below it (sleepers a thief took
/// along with a step) would wait until the chain ends, which here is never.
corun::task<void> spinner(corun::task_group& group, spinner_seats& seats,
                          const std::atomic<bool>& stop) {
  // Relaxed loads of `stop`: the flag carries no data; the root joins the group after setting it.
  if (!seats.take()) {
    if (!stop.load(std::memory_order_relaxed)) {
      static_cast<void>(group.spawn(spinner(group, seats, stop)));
    }
    co_return;
  }
  while (!stop.load(std::memory_order_relaxed)) {
    const auto until = std::chrono::steady_clock::now() + busy_step;
    while (std::chrono::steady_clock::now() < until) {
    }
    co_await corun::this_task::yield();
  }
}

/// One `timer_lateness` run: the sleepers' lateness goes to `lateness` (one slot each), while
/// `spinners` spinners (none, or one per worker) keep the workers busy.
///
/// The spinners start only once every sleeper has armed its timer, so that none of the sleepers
/// waits behind them to start; the ones the timers wake go on a deque, which a worker empties
/// before it turns to its yielded tasks.
corun::task<void> sleep_all(std::vector<std::chrono::nanoseconds>& lateness, long spinners) {
  std::atomic<long> armed{0};
  std::vector<corun::join_handle<void>> sleeping;
  sleeping.reserve(lateness.size());
  for (std::size_t i = 0; i < lateness.size(); ++i) {
    sleeping.push_back(corun::spawn(timed_sleeper(static_cast<long>(i), lateness[i], armed)));
  }
  while (armed.load(std::memory_order_relaxed) < static_cast<long>(lateness.size())) {
    co_await corun::this_task::yield();  // the deque, holding the sleepers, goes first
  }
  std::atomic<bool> stop{false};
  spinner_seats seats;
  corun::task_group busy;
  for (long i = 0; i < spinners; ++i) {
    static_cast<void>(busy.spawn(spinner(busy, seats, stop)));
  }
  for (corun::join_handle<void>& handle : sleeping) {
    co_await handle;
  }
  stop.store(true, std::memory_order_relaxed);
  co_await busy.join();
}

void run_lateness(benchmark::State& state, bool busy_workers) {
  const auto sleeping = static_cast<std::size_t>(sleepers());
  const long spinners = busy_workers ? static_cast<long>(threads(state)) : 0;
  corun::runtime rt(corun_options(state));
  std::vector<std::chrono::nanoseconds> lateness(sleeping);
  std::vector<std::chrono::nanoseconds> all;
  measure(state, [&] {
    rt.block_on(sleep_all(lateness, spinners));
    all.insert(all.end(), lateness.begin(), lateness.end());
    // A sleep must never end before its deadline.
    const auto early =
        std::count_if(lateness.begin(), lateness.end(),
                      [](std::chrono::nanoseconds late) { return late.count() < 0; });
    return check(state, static_cast<long>(early), 0L);
  });
  if (!all.empty()) {
    state.counters["p50_us"] = percentile_us(all, 0.50);
    state.counters["p99_us"] = percentile_us(all, 0.99);
  }
}

}  // namespace

BENCHMARK_CAPTURE(run_timers, real, false)->Name("timers/corun")->Apply(per_thread_count_manual);
BENCHMARK_CAPTURE(run_timers, virtual, true)
    ->Name("timers_virtual/corun")
    ->Apply(per_thread_count_manual);
BENCHMARK_CAPTURE(run_lateness, idle, false)->Name("timer_lateness/corun")->Apply(per_thread_count);
BENCHMARK_CAPTURE(run_lateness, busy, true)
    ->Name("timer_lateness/corun_busy")
    ->Apply(per_thread_count);

}  // namespace bench::timers
