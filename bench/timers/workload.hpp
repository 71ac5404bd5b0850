/// \file
/// Timers: what corun's timer queue (runtime/time/timer_queue.hpp, a 4-ary heap under one lock,
/// served by the workers between task steps) costs and how late it fires. Three workloads:
///
/// - `timers`: 1,000,000 timers armed and fired. The root task spawns one task per timer and
///   each does `co_await sleep_until(first + offset)`: the offsets lie on a 1 ms grid over
///   100 ms (10,000 timers per distinct deadline, as timeouts rounded to milliseconds), in
///   scrambled order. `first`, the earliest deadline, lies far enough after the run's start
///   that every timer is queued before the first one comes due, so the heap really holds the
///   million (a deadline that already passed would not be queued at all: `sleep_until` returns
///   at once). The run checks that every task woke.
///   Timed by hand, in two phases that leave out the idle wait in between: arming (from the
///   start until every task is asleep) and firing (from the first deadline until every task
///   woke and completed). `ns_per_task` is ns per timer over both, counting the task around
///   it: spawn, frame, arm, fire, resume, completion; counters `arm_ns` and `fire_ns` split it.
///   Firing cannot take less than the 100 ms spread: `fire_ns` cannot drop below 100.
///   The lead before the first deadline starts at 1 s and then is twice the longest arming
///   phase seen (plus 1 ms), so the runs do not idle for long.
///   Baseline `timers/threads`: a classic timer thread. A `std::priority_queue` of {deadline,
///   callback} under a `std::mutex`; `<threads>` threads arm their share of the same deadlines
///   (notifying a `std::condition_variable` when a deadline becomes the earliest), and one more
///   thread waits on it until the earliest deadline, pops what is due and calls each callback
///   (a counter increment) after unlocking. No task and no allocation per timer there.
/// - `timers_virtual`: the same timers on a runtime with `virtual_time`: the clock jumps to the
///   earliest deadline whenever every worker is idle, so nothing waits for real time and the
///   figure is the queue's (and the tasks') own cost: 100 jumps, one per distinct deadline.
/// - `timer_lateness`: 2,000 tasks each sleep a pseudo-random 1..20 ms of real time and measure
///   `now()` when they run again minus their deadline. Counters `p50_us` and `p99_us` are the
///   median and 99th percentile of that lateness, in microseconds, over every run.
///   `timer_lateness/corun` runs the sleepers on otherwise idle workers (a parked worker sleeps
///   in the kernel until the earliest deadline); `timer_lateness/corun_busy` also keeps every
///   worker busy with a CPU-bound task that computes for 50 us between yields, so that timers
///   are served only between task steps. No `ns_per_task`: its time is the sleeps.
///   Both figures include the kernel's share: a futex timeout on an ordinary (SCHED_OTHER)
///   thread ends up to its timer slack (50 us by default) late, and on a loaded machine a woken
///   worker may wait milliseconds for a CPU. `chrt -f 1 corun_bench ...` shows the runtime's
///   own share (no slack, no waiting for a CPU).
///
/// `timer_structure` (structure.hpp) measures the heap alone against a timing wheel, without
/// tasks or workers.
#pragma once

#include "common/harness.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace bench::timers {

/// Timers per `timers` run: 1,000,000; 1,000 in smoke mode.
[[nodiscard]] inline long count() noexcept { return smoke() ? 1'000 : 1'000'000; }

/// The deadlines lie in [first, first + spread): 100 ms; 5 ms in smoke mode.
[[nodiscard]] inline std::chrono::nanoseconds spread() noexcept {
  return smoke() ? std::chrono::milliseconds(5) : std::chrono::milliseconds(100);
}

/// The deadlines are multiples of this after the first one.
inline constexpr std::chrono::milliseconds grid{1};

/// The deadline of timer `index` of `total`, as an offset from the first deadline: the indices
/// scrambled by a multiplicative hash (a permutation when `total` shares no factor with the odd
/// multiplier, as 1,000,000 and 1,000 do not), spaced evenly over `span` and rounded down to
/// the grid.
[[nodiscard]] inline std::chrono::nanoseconds offset(long index, long total,
                                                     std::chrono::nanoseconds span) noexcept {
  constexpr std::uint64_t multiplier = 2'654'435'761;  // Knuth's, 2^32 / golden ratio
  const auto n = static_cast<std::uint64_t>(total);
  const std::uint64_t slot = (static_cast<std::uint64_t>(index) * multiplier) % n;
  const std::chrono::nanoseconds even(
      static_cast<std::int64_t>(slot * static_cast<std::uint64_t>(span.count()) / n));
  return std::chrono::floor<std::chrono::milliseconds>(even);
}

/// The two timed phases of a `timers` run.
struct run_phases {
  /// From the start until every timer is queued.
  std::chrono::duration<double> arm{};
  /// From the first deadline (or the end of arming, if that came later) until every timer
  /// fired and its task (or callback) ran.
  std::chrono::duration<double> fire{};
};

/// Runs a `timers` workload: once untimed, then once per benchmark iteration, each timed by its
/// two phases; reports `ns_per_task`, `arm_ns` and `fire_ns`. `once(lead)` runs the workload
/// with the first deadline `lead` after its start and returns its phases, or nothing if its
/// answer was wrong (it called `check`, which reported it).
template <class Once>
void measure_phases(benchmark::State& state, long total, Once once) {
  std::chrono::nanoseconds lead = smoke() ? std::chrono::milliseconds(50) : std::chrono::seconds(1);
  std::chrono::duration<double> longest_arm{};
  std::chrono::duration<double> arm{};
  std::chrono::duration<double> fire{};
  const auto run = [&]() -> std::optional<run_phases> {
    std::optional<run_phases> phases = once(lead);
    if (phases) {
      longest_arm = std::max(longest_arm, phases->arm);
      lead = 2 * std::chrono::ceil<std::chrono::nanoseconds>(longest_arm) + grid;
    }
    return phases;
  };
  if (!run()) {
    return;
  }
  for (auto _ : state) {
    const std::optional<run_phases> phases = run();
    if (!phases) {
      break;
    }
    state.SetIterationTime((phases->arm + phases->fire).count());
    arm += phases->arm;
    fire += phases->fire;
  }
  report_tasks(state, static_cast<double>(total));
  const double timers = static_cast<double>(state.iterations()) * static_cast<double>(total);
  if (timers > 0) {
    state.counters["arm_ns"] = std::chrono::duration<double, std::nano>(arm).count() / timers;
    state.counters["fire_ns"] = std::chrono::duration<double, std::nano>(fire).count() / timers;
  }
}

/// Sleepers per `timer_lateness` run: 2,000; 50 in smoke mode.
[[nodiscard]] inline long sleepers() noexcept { return smoke() ? 50 : 2'000; }

/// How long sleeper `index` sleeps: 1..20 ms, pseudo-random (a fixed hash of the index, so
/// every run sleeps the same set); 1..2 ms in smoke mode.
[[nodiscard]] inline std::chrono::microseconds sleep_of(long index) noexcept {
  std::uint64_t x = static_cast<std::uint64_t>(index) + 0x9E37'79B9'7F4A'7C15;  // splitmix64
  x = (x ^ (x >> 30)) * 0xBF58'476D'1CE5'E4B9;
  x = (x ^ (x >> 27)) * 0x94D0'49BB'1331'11EB;
  x ^= x >> 31;
  const std::uint64_t range_us = smoke() ? 1'000 : 19'000;
  return std::chrono::microseconds(1'000 + static_cast<std::int64_t>(x % (range_us + 1)));
}

/// `timer_lateness/corun_busy`: how long its CPU-bound tasks compute between yields.
inline constexpr std::chrono::microseconds busy_step{50};

/// The `fraction` quantile of `samples` (nearest rank: the smallest sample that at least that
/// fraction of them do not exceed), in microseconds; sorts `samples`, which must not be empty.
[[nodiscard]] inline double percentile_us(std::vector<std::chrono::nanoseconds>& samples,
                                          double fraction) {
  std::sort(samples.begin(), samples.end());
  const auto rank =
      static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(samples.size())));
  const std::chrono::nanoseconds value =
      samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
  return std::chrono::duration<double, std::micro>(value).count();
}

}  // namespace bench::timers
