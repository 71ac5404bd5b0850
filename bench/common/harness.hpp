/// \file
/// What every benchmark of `corun_bench` shares: the smoke switch, the worker counts each
/// benchmark runs at, the `ns_per_task` counter and the per-iteration result check.
///
/// Every workload lives in `bench/<workload>/`: `workload.hpp` holds its sizes, its serial
/// reference and its result check; `corun.cpp`, `tbb.cpp` (and `serial.cpp`) register one
/// benchmark family each, named `<workload>/<impl>`, whose argument is the worker count, so the
/// full names read `<workload>/<impl>/<threads>` (`fib/corun/1`, `fib/tbb/2`).
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <thread>
#include <type_traits>

namespace bench {

namespace detail {
/// Written once by `main` before any benchmark runs, read by the benchmarks afterwards.
inline bool g_smoke = false;
}  // namespace detail

/// Smoke mode (`corun_bench --smoke`): every workload runs at a tiny size, so CTest can run
/// each of them (also under the sanitizers) and they cannot rot.
[[nodiscard]] inline bool smoke() noexcept { return detail::g_smoke; }
inline void set_smoke(bool on) noexcept { detail::g_smoke = on; }

/// Worker counts a parallel benchmark runs at: 1 and every hardware thread.
inline void per_thread_count(benchmark::internal::Benchmark* family) {
  const unsigned hardware = std::thread::hardware_concurrency();
  family->Arg(1);
  if (hardware > 1) {
    family->Arg(hardware);
  }
  // The work runs on worker threads while the benchmark thread blocks, so CPU time of the
  // benchmark thread means nothing: measure (and size the iteration count by) wall time.
  family->UseRealTime()->Unit(benchmark::kMillisecond);
}

/// The same worker counts for a benchmark that times each iteration itself
/// (`State::SetIterationTime`), leaving out what it does not measure (set-up, teardown, waiting).
inline void per_thread_count_manual(benchmark::internal::Benchmark* family) {
  const unsigned hardware = std::thread::hardware_concurrency();
  family->Arg(1);
  if (hardware > 1) {
    family->Arg(hardware);
  }
  family->UseManualTime()->Unit(benchmark::kMillisecond);
}

/// The serial reference runs on the benchmark thread only: `<workload>/serial/1`.
inline void serial_only(benchmark::internal::Benchmark* family) {
  family->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
}

/// A corun variant that runs at one worker only: `<workload>/corun_awaited`, which awaits every
/// child at once and so schedules nothing another worker could take.
inline void one_worker(benchmark::internal::Benchmark* family) { serial_only(family); }

/// The worker count a benchmark was registered with.
[[nodiscard]] inline std::size_t threads(const benchmark::State& state) {
  return static_cast<std::size_t>(state.range(0));
}

/// Reports wall time per task as the counter `ns_per_task` (Google benchmark divides the
/// iterations' total of `tasks_per_iteration` by the wall time and inverts the rate; the console
/// shows it with an SI prefix, e.g. `14.2n` for 14.2 ns).
inline void report_tasks(benchmark::State& state, double tasks_per_iteration) {
  state.counters["ns_per_task"] =
      benchmark::Counter(tasks_per_iteration, benchmark::Counter::kIsIterationInvariantRate |
                                                  benchmark::Counter::kInvert);
}

/// Checks one iteration's answer. On a mismatch the benchmark is reported as failed (and
/// `corun_bench` exits non-zero); the caller must leave its loop when this returns false.
template <class T>
  requires std::is_arithmetic_v<T>
[[nodiscard]] bool check(benchmark::State& state, T got, T expected) {
  if (got == expected) {
    return true;
  }
  const std::string message =
      "wrong result: got " + std::to_string(got) + ", expected " + std::to_string(expected);
  state.SkipWithError(message.c_str());
  return false;
}

/// Runs the workload once untimed, then once per benchmark iteration; stops at the first wrong
/// answer. `iteration` runs the workload once and returns what `check` returned.
///
/// The untimed run is there because every benchmark starts a new runtime or arena: its first
/// run would also measure filling empty frame caches and faulting fresh memory in, and a
/// benchmark whose run takes longer than the minimum time (storm at one worker) is reported
/// from a single iteration.
template <class Iteration>
void measure(benchmark::State& state, Iteration iteration) {
  if (!iteration()) {
    return;
  }
  for (auto _ : state) {
    if (!iteration()) {
      break;
    }
  }
}

}  // namespace bench
