/// \file
/// skynet without a runtime, on the benchmark thread: `skynet/serial`, the plain recursion, and
/// `skynet/bare_coroutine`, the tree of `skynet/corun_awaited` (every child awaited at once) on
/// `bench::bare_task`, the cheapest coroutine there is: what a coroutine per node costs with
/// nothing of a runtime around it, whichever runtime would add its part
/// (common/bare_task.hpp).

#include "common/bare_task.hpp"
#include "common/harness.hpp"
#include "skynet/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::skynet {
namespace {

/// Times `sum_of_leaves(count)`, the sum over a tree of `count` leaves, on this thread.
template <class SumOfLeaves>
void run_here(benchmark::State& state, SumOfLeaves sum_of_leaves) {
  const int tree_depth = depth();
  measure(state, [&] {
    long count = leaves(tree_depth);
    benchmark::DoNotOptimize(count);  // the compiler must not hoist the tree out of the loop
    return check(state, sum_of_leaves(count), reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

void run(benchmark::State& state) {
  run_here(state, [](long count) { return serial(0, count); });
}

void run_bare(benchmark::State& state) {
  run_here(state, [](long count) { return awaited_tree<bare_task>(0, count).run(); });
}

}  // namespace

BENCHMARK(run)->Name("skynet/serial")->Apply(serial_only);
BENCHMARK(run_bare)->Name("skynet/bare_coroutine")->Apply(serial_only);

}  // namespace bench::skynet
