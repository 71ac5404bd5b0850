/// \file
/// Spawn storm on corun: the root spawns every child and drops its handle; structured
/// concurrency keeps the root from completing (and `block_on` from returning) before all
/// children have.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "storm/workload.hpp"

#include <benchmark/benchmark.h>

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

void run(benchmark::State& state) {
  const long count = size();
  sharded_counter counter;
  corun::runtime rt(corun_options(state));
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

BENCHMARK(run)->Name("storm/corun")->Apply(per_thread_count);

}  // namespace bench::storm
