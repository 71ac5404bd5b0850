/// \file
/// fib on oneTBB: a `task_group` per call runs fib(n - 1), computes fib(n - 2) inline, waits.
/// A `task_arena` of the benchmark's width fixes the number of threads that take part.

#include "common/harness.hpp"
#include "fib/workload.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace bench::fib {
namespace {

long fib(int n) {
  if (n < 2) {
    return n;
  }
  long a = 0;
  tbb::task_group group;
  group.run([&a, n] { a = fib(n - 1); });
  const long b = fib(n - 2);
  group.wait();
  return a + b;
}

void run(benchmark::State& state) {
  const int n = size();
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  measure(state, [&] { return check(state, arena.execute([n] { return fib(n); }), reference(n)); });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("fib/tbb")->Apply(per_thread_count);

}  // namespace bench::fib
