/// \file
/// Spawn storm on corun: the root spawns every child and drops its handle; structured
/// concurrency keeps the root from completing (and `block_on` from returning) before all
/// children have. Once 12 children wait on the root's worker, further spawns run their child
/// at once (work-first spawns, `runtime_options::eager_spawn_threshold`); `storm/corun_queued`
/// switches that off and queues all one million.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "storm/workload.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>

namespace bench::storm {
namespace {

corun::task<void> child(sharded_counter& counter) {
  counter.increment();
  co_return;
}

corun::task<void> storm(long count, sharded_counter& counter) {
  for (long i = 0; i < count; ++i) {
    // Dropping the handle detaches only the handle; the child stays a child of this task.
    static_cast<void>(corun::spawn(child(counter)));
  }
  co_return;
}

void run(benchmark::State& state, std::size_t eager_spawn_threshold) {
  const long count = size();
  sharded_counter counter;
  corun::runtime_options options = corun_options(state);
  options.eager_spawn_threshold = eager_spawn_threshold;
  corun::runtime rt(options);
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] {
    counter.reset();
    rt.block_on(storm(count, counter));
    return check(state, counter.total(), count);
  });
  report_tasks(state, static_cast<double>(count));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK_CAPTURE(run, eager, corun::runtime_options{}.eager_spawn_threshold)
    ->Name("storm/corun")
    ->Apply(per_thread_count);
BENCHMARK_CAPTURE(run, queued, 0)->Name("storm/corun_queued")->Apply(per_thread_count);

}  // namespace bench::storm
