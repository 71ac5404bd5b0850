/// \file
/// skynet on oneTBB: every inner node runs its ten children in a `task_group` and waits.

#include "common/harness.hpp"
#include "skynet/workload.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <array>
#include <cstddef>
#include <numeric>

namespace bench::skynet {
namespace {

long skynet(long first, long count) {
  if (count == 1) {
    return first;
  }
  const long child = count / fanout;
  std::array<long, fanout> sums{};
  tbb::task_group group;
  for (std::size_t i = 0; i < sums.size(); ++i) {
    group.run([&sums, i, first, child] {
      sums[i] = skynet(first + static_cast<long>(i) * child, child);
    });
  }
  group.wait();
  return std::accumulate(sums.begin(), sums.end(), 0L);
}

void run(benchmark::State& state) {
  const int tree_depth = depth();
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  measure(state, [&] {
    const long sum = arena.execute([tree_depth] { return skynet(0, leaves(tree_depth)); });
    return check(state, sum, reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

}  // namespace

BENCHMARK(run)->Name("skynet/tbb")->Apply(per_thread_count);

}  // namespace bench::skynet
