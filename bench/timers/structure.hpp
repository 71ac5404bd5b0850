/// \file
/// `timer_structure`: the runtime's timer heap (`corun::detail::timer_queue`,
/// runtime/time/timer_queue.hpp) against a hierarchical timing wheel (timing_wheel.hpp), on the
/// data structures alone: one thread, no tasks, a clock moved by hand. This is the measurement
/// behind the choice of the heap; the figures are in the comment at the top of timer_queue.hpp.
///
/// Both structures sit under the runtime's `spin_lock` (uncontended here), as the heap does in
/// the runtime, and both fire through a function pointer in an entry embedded in its owner, so
/// what differs is the structure. Timed in the benchmark thread's CPU time rather than wall
/// time (one thread that never blocks: the difference is time other processes held the core).
/// Two workloads, both reporting `ns_per_op`:
///
/// - `arm_fire`: 1,000,000 timers with pseudo-random deadlines (nanosecond resolution, uniform
///   over 10 s) are armed, then the clock moves forward in 1 ms steps, each firing what came
///   due, until all fired. An op is one timer, armed and fired; counters `arm_ns` and `fire_ns`
///   split it. The check: every timer fired, none before its deadline; the heap's in deadline
///   order as well (the wheel's are in order only to a tick).
/// - `churn`: 10,000 timers pending at all times, most cancelled before they fire, as the
///   timeouts around operations that finish in time are. Each op moves the clock 1 us forward
///   (firing what came due), cancels the timer of one of the 10,000 slots (taken in turn, so
///   each slot's timer lives 10 ms) unless it fired, and arms it again: 90% of the new
///   deadlines lie 10..100 ms ahead (cancelled at the slot's next turn), 10% 1 us..10 ms ahead
///   (they fire). An op is that poll, cancel and arm; counter `fired_share` is the share of
///   timers that fired rather than being cancelled. The check: none fired early; on the heap,
///   exactly the timers due before their slot's next turn fired.
///
/// The wheel runs at two ticks: 1 ms (tokio's, `tick_us:1000`), where a deadline fires up to a
/// tick late, and 1 us (`tick_us:1`), which costs more levels of cascading. The heap has no
/// tick: it orders by the deadline's nanoseconds. Counter `max_late_us` is the largest lateness
/// seen, the clock's 1 ms or 1 us step included.
#pragma once

#include "common/harness.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace bench::timers::structure {

/// `arm_fire` timers per run: 1,000,000; 1,000 in smoke mode.
[[nodiscard]] inline long arm_fire_count() noexcept { return smoke() ? 1'000 : 1'000'000; }
/// `arm_fire` deadlines lie in [0, 10 s) after the run's start.
inline constexpr std::chrono::nanoseconds arm_fire_span = std::chrono::seconds(10);
/// `arm_fire` moves the clock in steps of 1 ms.
inline constexpr std::chrono::nanoseconds arm_fire_step = std::chrono::milliseconds(1);

/// `churn` timers pending at all times: 10,000; 100 in smoke mode.
[[nodiscard]] inline long churn_pending() noexcept { return smoke() ? 100 : 10'000; }
/// `churn` ops per run: 1,000,000; 10,000 in smoke mode.
[[nodiscard]] inline long churn_ops() noexcept { return smoke() ? 10'000 : 1'000'000; }
/// `churn` moves the clock by 1 us per op.
inline constexpr std::chrono::nanoseconds churn_step = std::chrono::microseconds(1);

/// A fixed pseudo-random number per index (splitmix64), so both structures see the same input.
[[nodiscard]] inline std::uint64_t mix(std::uint64_t index) noexcept {
  std::uint64_t x = index + 0x9E37'79B9'7F4A'7C15;
  x = (x ^ (x >> 30)) * 0xBF58'476D'1CE5'E4B9;
  x = (x ^ (x >> 27)) * 0x94D0'49BB'1331'11EB;
  return x ^ (x >> 31);
}

/// The `arm_fire` deadlines, in ns after the run's start.
[[nodiscard]] inline std::vector<std::int64_t> arm_fire_deadlines() {
  std::vector<std::int64_t> deadlines(static_cast<std::size_t>(arm_fire_count()));
  const auto span = static_cast<std::uint64_t>(arm_fire_span.count());
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    deadlines[i] = static_cast<std::int64_t>(mix(i) % span);
  }
  return deadlines;
}

/// The `churn` delays, one per op, in ns: 90% in (T, 10 T], 10% in [step, T), where T is the
/// time a slot's timer lives before its slot comes round again (pending x step).
[[nodiscard]] inline std::vector<std::int64_t> churn_delays() {
  std::vector<std::int64_t> delays(static_cast<std::size_t>(churn_ops()));
  const auto step = static_cast<std::uint64_t>(churn_step.count());
  const std::uint64_t turn = static_cast<std::uint64_t>(churn_pending()) * step;
  for (std::size_t i = 0; i < delays.size(); ++i) {
    const std::uint64_t x = mix(i);
    const bool fires = x % 10 == 0;
    const std::uint64_t r = x >> 8;
    delays[i] =
        static_cast<std::int64_t>(fires ? step + r % (turn - step) : turn + 1 + r % (9 * turn));
  }
  return delays;
}

/// What the fire functions of one run record. Written by the one benchmark thread.
struct fire_log {
  /// The clock, in ns after the run's start, while a structure fires.
  std::int64_t now = 0;
  long fired = 0;
  long early = 0;
  long out_of_order = 0;
  std::int64_t last_deadline = 0;
  std::int64_t max_late = 0;

  void record(std::int64_t deadline) noexcept {
    ++fired;
    early += deadline > now ? 1 : 0;
    out_of_order += deadline < last_deadline ? 1 : 0;
    last_deadline = deadline;
    max_late = now - deadline > max_late ? now - deadline : max_late;
  }
};

}  // namespace bench::timers::structure
