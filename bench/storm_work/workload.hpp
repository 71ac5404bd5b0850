/// \file
/// Spawn storm of working tasks: one task spawns 100,000 independent children that each compute
/// for about half a microsecond (a chain of 300 dependent multiply-adds) and drop their handles.
/// `storm` measures the scheduler on children that do nothing; here the children are long
/// enough that a second worker should halve the time, so the two-worker column shows whether
/// the spawner shares its work. A spawner that keeps running children itself while an idle
/// worker waits (work-first spawns that trust a stale queue depth, see "Work-first spawns" in
/// runtime/scheduler/worker.cpp) shows up here as no speed-up at all.
///
/// Each child adds the low byte of its result to a sharded counter; the run checks the total
/// against the serial sum.
///
/// Tasks per run: the spawned children, 100,000.
#pragma once

#include "common/harness.hpp"
#include "storm/workload.hpp"

#include <cstdint>

namespace bench::storm_work {

using storm::sharded_counter;

/// Children per run: 100,000; 1,000 in smoke mode.
[[nodiscard]] inline long size() noexcept { return smoke() ? 1'000 : 100'000; }

/// Multiply-adds per child: about 0.5 us on the EPYC VM.
inline constexpr int steps = 300;

/// The work of child `index`: a chain of dependent multiply-adds the compiler cannot shorten.
[[nodiscard]] inline long work(long index) noexcept {
  auto x = static_cast<std::uint64_t>(index);
  for (int i = 0; i < steps; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  }
  return static_cast<long>(x & 0xff);
}

/// What every run's counter must reach: the sum of every child's `work`.
[[nodiscard]] inline long expected(long count) noexcept {
  long sum = 0;
  for (long i = 0; i < count; ++i) {
    sum += work(i);
  }
  return sum;
}

}  // namespace bench::storm_work
