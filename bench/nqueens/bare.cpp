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

bare_task<long> nqueens(int n, int row, board queens) {
  if (row == n) {
    co_return 1;
  }
  std::array<std::uint8_t, max_n> safe_ones;
  const std::size_t count = safe_columns(n, row, queens, safe_ones);
  long found = 0;
  for (std::size_t i = 0; i < count; ++i) {
    queens[static_cast<std::size_t>(row)] = safe_ones[i];
    found += co_await nqueens(n, row + 1, queens);
  }
  co_return found;
}

void run(benchmark::State& state) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  measure(state, [&] {
    int argument = n;
    benchmark::DoNotOptimize(argument);  // the compiler must not hoist the tree out of the loop
    return check(state, nqueens(argument, 0, board{}).run(), expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("nqueens/bare_coroutine")->Apply(serial_only);

}  // namespace bench::nqueens
