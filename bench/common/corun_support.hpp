/// \file
/// What every corun benchmark shares: the runtime settings it starts from and the scheduler
/// counters it reports next to its time.
#pragma once

#include "corun/runtime.hpp"

#include "common/harness.hpp"

#include <benchmark/benchmark.h>

namespace bench {

/// A runtime as wide as the benchmark's worker count. `recycle_frames = false` is the
/// `<workload>/corun_nopool` variant: every coroutine frame a plain `::operator new`.
[[nodiscard]] inline corun::runtime_options corun_options(const benchmark::State& state,
                                                          bool recycle_frames = true) {
  // Assigned one by one: g++ 12 warns (-Wmissing-field-initializers) about designated
  // initializers that leave members to their defaults.
  corun::runtime_options options;
  options.workers = threads(state);
  options.recycle_frames = recycle_frames;
  return options;
}

/// Reports the runtime's steals and parks per run (counters `steals` and `parks`) between a
/// `runtime::stats()` snapshot taken before `measure` and one taken after it; the untimed
/// warm-up run counts as a run. They explain a time that scales badly with workers.
inline void report_corun_stats(benchmark::State& state, const corun::runtime_stats& before,
                               const corun::runtime_stats& after) {
  const double runs = static_cast<double>(state.iterations() + 1);
  state.counters["steals"] = static_cast<double>(after.steals - before.steals) / runs;
  state.counters["parks"] = static_cast<double>(after.parks - before.parks) / runs;
}

}  // namespace bench
