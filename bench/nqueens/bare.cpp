/// \file
/// `nqueens/bare_coroutine`: the tree of `nqueens/corun_awaited` (the same column loop, every
/// child awaited at once) on `bench::bare_task`, the cheapest coroutine there is. Its time is
/// what a coroutine per node costs with nothing of a runtime around it, whichever runtime would
/// add its part (common/bare_task.hpp).

#include "common/bare_task.hpp"
#include "common/harness.hpp"
#include "nqueens/workload.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace bench::nqueens {
namespace {

void run(benchmark::State& state) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  measure(state, [&] {
    int argument = n;
    benchmark::DoNotOptimize(argument);  // the compiler must not hoist the tree out of the loop
    return check(state, awaited_tree<bare_task>(argument, 0, board{}).run(), expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("nqueens/bare_coroutine")->Apply(serial_only);

}  // namespace bench::nqueens
