/// \file
/// nqueens on corun: a task per safe column, awaited through the kept join handles.
/// `nqueens/corun_awaited` awaits each child at once instead, which is what the coroutines cost
/// without the scheduler.

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

using children = std::array<corun::join_handle<long>, max_n>;

corun::task<long> nqueens(int n, int row, board queens);

// The column loop is a plain function, as the oneTBB version's is, not part of the coroutine:
// g++ keeps every local of a coroutine in its frame, and the loop's counters were loads and
// stores there. The handles are packed in spawn order, so the joins test no empty slots (which
// safe columns are empty changes from task to task, so that test mispredicted often).
std::size_t spawn_safe_columns(int n, int row, board& queens, children& handles) {
  std::size_t spawned = 0;
  for (int column = 0; column < n; ++column) {
    queens[static_cast<std::size_t>(row)] = static_cast<std::uint8_t>(column);
    if (safe(queens, row)) {
      handles[spawned++] = corun::spawn(nqueens(n, row + 1, queens));
    }
  }
  return spawned;
}

// `queens` is taken by value: each task owns its board in its frame.
corun::task<long> nqueens(int n, int row, board queens) {
  if (row == n) {
    co_return 1;
  }
  children handles;
  const std::size_t spawned = spawn_safe_columns(n, row, queens, handles);
  long found = 0;
  for (std::size_t child = 0; child < spawned; ++child) {
    found += co_await handles[child];
  }
  co_return found;
}

void run_awaited(benchmark::State& state) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  corun::runtime rt(corun_options(state));
  measure(state, [&] {
    return check(state, rt.block_on(awaited_tree<corun::task>(n, 0, board{})), expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
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
BENCHMARK(run_awaited)->Name("nqueens/corun_awaited")->Apply(one_worker);

}  // namespace bench::nqueens
