/// \file
/// skynet on corun: every inner node spawns its ten children, keeps the join handles and awaits
/// them in order (cheaper than `when_all`, which builds a group and vectors).
/// `skynet/corun_nopool` runs the same code with `recycle_frames = false`; `skynet/corun_awaited`
/// awaits each child at once instead, which is what the coroutines cost without the scheduler.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "skynet/workload.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>

namespace bench::skynet {
namespace {

corun::task<long> skynet(long first, long count) {
  if (count == 1) {
    co_return first;
  }
  const long child = count / fanout;
  std::array<corun::join_handle<long>, fanout> children;
  for (std::size_t i = 0; i < children.size(); ++i) {
    children[i] = corun::spawn(skynet(first + static_cast<long>(i) * child, child));
  }
  long sum = 0;
  for (corun::join_handle<long>& handle : children) {
    sum += co_await handle;
  }
  co_return sum;
}

void run_awaited(benchmark::State& state) {
  const int tree_depth = depth();
  corun::runtime rt(corun_options(state));
  measure(state, [&] {
    return check(state, rt.block_on(awaited_tree<corun::task>(0, leaves(tree_depth))),
                 reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

void run(benchmark::State& state, bool recycle_frames) {
  const int tree_depth = depth();
  corun::runtime rt(corun_options(state, recycle_frames));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] {
    return check(state, rt.block_on(skynet(0, leaves(tree_depth))), reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK_CAPTURE(run, pool, true)->Name("skynet/corun")->Apply(per_thread_count);
BENCHMARK_CAPTURE(run, nopool, false)->Name("skynet/corun_nopool")->Apply(per_thread_count);
BENCHMARK(run_awaited)->Name("skynet/corun_awaited")->Apply(one_worker);

}  // namespace bench::skynet
