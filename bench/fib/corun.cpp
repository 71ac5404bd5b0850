/// \file
/// fib on corun: spawn fib(n - 1), await fib(n - 2) inline, then await the spawned half.
/// `fib/corun_nopool` runs the same code with `recycle_frames = false`, so every coroutine frame
/// is a plain `::operator new`: the difference is what the frame pool buys.
/// `fib/corun_awaited` awaits both halves at once instead: what the coroutines cost without the
/// scheduler.
/// `fib/corun_cancel_churn` runs it while another thread cancels an unrelated cancel_source
/// every 20 us: each request moves the global cancel epoch, so every fib task then walks its
/// scope chain once more. Against `fib/corun` it is the price of cancel requests elsewhere.
/// `fib/corun_no_cancel_check` (corun_no_cancel_check.cpp) is the same code on a runtime built
/// without the hot-path cancellation check: against `fib/corun` it is the price of the check.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "fib/corun_fib.hpp"
#include "fib/no_cancel_check.hpp"
#include "fib/workload.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace bench::fib {
namespace {

void run(benchmark::State& state, bool recycle_frames) {
  const int n = size();
  corun::runtime rt(corun_options(state, recycle_frames));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] { return check(state, rt.block_on(fib(n)), reference(n)); });
  report_tasks(state, static_cast<double>(tasks(n)));
  report_corun_stats(state, before, rt.stats());
}

// The same recursion with both halves awaited at once instead of one spawned: a coroutine frame
// per call, created, run by symmetric transfer and destroyed, and nothing scheduled. Its time is
// what the coroutines cost on their own, the floor under `fib/corun` at one worker.
corun::task<long> fib_awaited(int n) {
  if (n < 2) {
    co_return n;
  }
  const long a = co_await fib_awaited(n - 1);
  co_return a + co_await fib_awaited(n - 2);
}

void run_awaited(benchmark::State& state) {
  const int n = size();
  corun::runtime rt(corun_options(state));
  measure(state, [&] { return check(state, rt.block_on(fib_awaited(n)), reference(n)); });
  report_tasks(state, static_cast<double>(tasks(n)));
}

void run_with_cancel_churn(benchmark::State& state) {
  const int n = size();
  corun::runtime rt(corun_options(state, true));
  std::atomic<bool> stop{false};
  std::atomic<long> requests{0};
  std::thread churn([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      corun::cancel_source source;
      source.request_cancel("churn");
      requests.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  measure(state, [&] { return check(state, rt.block_on(fib(n)), reference(n)); });
  stop.store(true);
  churn.join();
  report_tasks(state, static_cast<double>(tasks(n)));
  state.counters["cancels"] =
      benchmark::Counter(static_cast<double>(requests.load()), benchmark::Counter::kAvgIterations);
}

}  // namespace

// Registration order is run order. The A/B pair of the cancellation check comes first and back
// to back. Registered after fib/corun_nopool (whose frames are plain `new`s), the copy measured
// up to 53% slower than fib/corun at one worker, while interleaved repetitions of the pair
// agreed within noise: the order, not the check (the cause was not pinned down; the heap left
// by the plain allocations is the suspect).
BENCHMARK_CAPTURE(run, pool, true)->Name("fib/corun")->Apply(per_thread_count);
#if defined(CORUN_BENCH_HAS_NO_CANCEL_CHECK)
BENCHMARK(run_without_check)->Name("fib/corun_no_cancel_check")->Apply(per_thread_count);
#endif
BENCHMARK(run_with_cancel_churn)->Name("fib/corun_cancel_churn")->Apply(per_thread_count);
BENCHMARK_CAPTURE(run, nopool, false)->Name("fib/corun_nopool")->Apply(per_thread_count);
BENCHMARK(run_awaited)->Name("fib/corun_awaited")->Apply(one_worker);

}  // namespace bench::fib
