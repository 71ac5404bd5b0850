/// \file
/// nqueens without tasks, on the benchmark thread: `nqueens/serial`, the plain recursion as the
/// compiler best optimises it, and `nqueens/plain_calls`, one opaque call per task, which is the
/// per-node work every task version does with nothing of a task around it.

#include "common/harness.hpp"
#include "nqueens/workload.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

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
  const int n = size();
  const long expected = solutions[static_cast<std::size_t>(n)];
  measure(state, [&] {
    int argument = n;
    benchmark::DoNotOptimize(argument);
    return check(state, plain_calls(argument, 0, board{}), expected);
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("nqueens/serial")->Apply(serial_only);
BENCHMARK(run_plain_calls)->Name("nqueens/plain_calls")->Apply(serial_only);

}  // namespace bench::nqueens
