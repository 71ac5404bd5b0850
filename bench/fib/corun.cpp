/// \file
/// fib on corun: spawn fib(n - 1), await fib(n - 2) inline, then await the spawned half.
/// `fib/corun_nopool` runs the same code with `recycle_frames = false`, so every coroutine frame
/// is a plain `::operator new`: the difference is what the frame pool buys.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "fib/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::fib {
namespace {

corun::task<long> fib(int n) {
  if (n < 2) {
    co_return n;
  }
  auto a = corun::spawn(fib(n - 1));
  long b = co_await fib(n - 2);
  co_return co_await a + b;
}

void run(benchmark::State& state, bool recycle_frames) {
  const int n = size();
  corun::runtime rt(corun_options(state, recycle_frames));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] { return check(state, rt.block_on(fib(n)), reference(n)); });
  report_tasks(state, static_cast<double>(tasks(n)));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK_CAPTURE(run, pool, true)->Name("fib/corun")->Apply(per_thread_count);
BENCHMARK_CAPTURE(run, nopool, false)->Name("fib/corun_nopool")->Apply(per_thread_count);

}  // namespace bench::fib
