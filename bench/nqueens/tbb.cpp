/// \file
/// nqueens on oneTBB: a `task_group` per call runs a task per safe column and waits.

#include "common/harness.hpp"
#include "nqueens/workload.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <numeric>

namespace bench::nqueens {
namespace {

long nqueens(int n, int row, const board& queens) {
  if (row == n) {
    return 1;
  }
  std::array<board, max_n> boards;
  std::array<long, max_n> found{};
  tbb::task_group group;
  for (int column = 0; column < n; ++column) {
    const auto slot = static_cast<std::size_t>(column);
    boards[slot] = queens;
    boards[slot][static_cast<std::size_t>(row)] = static_cast<std::uint8_t>(column);
    if (safe(boards[slot], row)) {
      group.run(
          [&boards, &found, n, row, slot] { found[slot] = nqueens(n, row + 1, boards[slot]); });
    }
  }
  group.wait();
  return std::accumulate(found.begin(), found.end(), 0L);
}

void run(benchmark::State& state) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  measure(state, [&] {
    return check(state, arena.execute([n] { return nqueens(n, 0, board{}); }), expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("nqueens/tbb")->Apply(per_thread_count);

}  // namespace bench::nqueens
