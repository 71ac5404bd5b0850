/// \file
/// nqueens as a plain recursive function on the benchmark thread.

#include "common/harness.hpp"
#include "nqueens/workload.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>

namespace bench::nqueens {
namespace {

void run(benchmark::State& state) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  measure(state, [&] {
    int argument = n;
    benchmark::DoNotOptimize(argument);  // the compiler must not hoist the call out of the loop
    count result;
    serial(argument, 0, board{}, result);
    return check(state, result.solutions, expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("nqueens/serial")->Apply(serial_only);

}  // namespace bench::nqueens
