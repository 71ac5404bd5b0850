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

bare_task<long> skynet(long first, long count) {
  if (count == 1) {
    co_return first;
  }
  const long child = count / fanout;
  long sum = 0;
  for (long i = 0; i < fanout; ++i) {
    sum += co_await skynet(first + i * child, child);
  }
  co_return sum;
}

void run(benchmark::State& state) {
  const int tree_depth = depth();
  measure(state, [&] {
    long count = leaves(tree_depth);
    benchmark::DoNotOptimize(count);  // the compiler must not hoist the tree out of the loop
    return check(state, skynet(0, count).run(), reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

}  // namespace

BENCHMARK(run)->Name("skynet/bare_coroutine")->Apply(serial_only);

}  // namespace bench::skynet
