/// \file
/// nqueens without a runtime, on the benchmark thread: `nqueens/serial`, the plain recursion as
/// the compiler best optimises it; `nqueens/plain_calls`, one opaque call per task, which is the
/// per-node work every task version does with nothing of a task around it; and
/// `nqueens/bare_coroutine`, the tree of `nqueens/corun_awaited` (the same column loop, every
/// child awaited at once) on `bench::bare_task`, the cheapest coroutine there is: what a
/// coroutine per node costs with nothing of a runtime around it, whichever runtime would add its
/// part (common/bare_task.hpp).

#include "common/bare_task.hpp"
#include "common/harness.hpp"
#include "nqueens/workload.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

namespace bench::nqueens {
namespace {

/// Times `solve(n)`, the number of solutions at size n, on this thread.
template <class Solve>
void run_here(benchmark::State& state, Solve solve) {
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  measure(state, [&] {
    int argument = n;
    benchmark::DoNotOptimize(argument);  // the compiler must not hoist the work out of the loop
    return check(state, solve(argument), expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

void run(benchmark::State& state) {
  run_here(state, [](int n) {
    count result;
    serial(n, 0, board{}, result);
    return result.solutions;
  });
}

// The task versions' node as a plain function: the same column loop and checks, the board
// copied into every call, the solutions returned. Kept a real call at every level: inlined into
// itself (`serial`), g++ specialises each level of the recursion for its row and unrolls the
// checks, which a task body, reached through a coroutine frame or a oneTBB task, never gets.
// Its time is what the work alone costs, the floor under any version that spawns per node.
#if defined(__GNUC__) && !defined(__clang__)
[[gnu::noinline, gnu::noclone]]
#else
[[gnu::noinline]]
#endif
long plain_calls(int n, int row, board queens) noexcept {
  if (row == n) {
    return 1;
  }
  long found = 0;
  for (int column = 0; column < n; ++column) {
    queens[static_cast<std::size_t>(row)] = static_cast<std::uint8_t>(column);
    if (safe(queens, row)) {
      found += plain_calls(n, row + 1, queens);
    }
  }
  return found;
}

void run_plain_calls(benchmark::State& state) {
  run_here(state, [](int n) { return plain_calls(n, 0, board{}); });
}

void run_bare(benchmark::State& state) {
  run_here(state, [](int n) { return awaited_tree<bare_task>(n, 0, board{}).run(); });
}

}  // namespace

BENCHMARK(run)->Name("nqueens/serial")->Apply(serial_only);
BENCHMARK(run_plain_calls)->Name("nqueens/plain_calls")->Apply(serial_only);
BENCHMARK(run_bare)->Name("nqueens/bare_coroutine")->Apply(serial_only);

}  // namespace bench::nqueens
