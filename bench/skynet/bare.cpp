/// \file
/// `skynet/bare_coroutine`: the tree of `skynet/corun_awaited` (every child awaited at once) on
/// `bench::bare_task`, the cheapest coroutine there is. Its time is what a coroutine per node
/// costs with nothing of a runtime around it, whichever runtime would add its part
/// (common/bare_task.hpp).

#include "common/bare_task.hpp"
#include "common/harness.hpp"
#include "skynet/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::skynet {
namespace {

void run(benchmark::State& state) {
  const int tree_depth = depth();
  measure(state, [&] {
    long count = leaves(tree_depth);
    benchmark::DoNotOptimize(count);  // the compiler must not hoist the tree out of the loop
    return check(state, awaited_tree<bare_task>(0, count).run(), reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

}  // namespace

BENCHMARK(run)->Name("skynet/bare_coroutine")->Apply(serial_only);

}  // namespace bench::skynet
