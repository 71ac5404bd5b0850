/// \file
/// nqueens on corun: a task per safe column, awaited through the kept join handles.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "nqueens/workload.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace bench::nqueens {
namespace {

// `queens` is taken by value: each task owns its board in its frame.
corun::task<long> nqueens(int n, int row, board queens) {
  if (row == n) {
    co_return 1;
  }
  std::array<corun::join_handle<long>, max_n> children;
  for (int column = 0; column < n; ++column) {
    queens[static_cast<std::size_t>(row)] = static_cast<std::uint8_t>(column);
    if (safe(queens, row)) {
      children[static_cast<std::size_t>(column)] = corun::spawn(nqueens(n, row + 1, queens));
    }
  }
  long found = 0;
  for (corun::join_handle<long>& child : children) {
    if (child.valid()) {
      found += co_await child;
    }
  }
  co_return found;
}

void run(benchmark::State& state) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  corun::runtime rt(corun_options(state));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] { return check(state, rt.block_on(nqueens(n, 0, board{})), expected); });
  report_tasks(state, static_cast<double>(tasks(n)));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK(run)->Name("nqueens/corun")->Apply(per_thread_count);

}  // namespace bench::nqueens
