/// \file
/// Spawn storm of working tasks on corun: the root spawns every child and drops its handle, as
/// in `storm/corun`, with the default work-first spawns.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "storm_work/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::storm_work {
namespace {

corun::task<void> child(long index, sharded_counter& counter) {
  counter.add(work(index));
  co_return;
}

corun::task<void> storm(long count, sharded_counter& counter) {
  for (long i = 0; i < count; ++i) {
    static_cast<void>(corun::spawn(child(i, counter)));
  }
  co_return;
}

void run(benchmark::State& state) {
  const long count = size();
  const long sum = expected(count);
  sharded_counter counter;
  corun::runtime rt(corun_options(state));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] {
    counter.reset();
    rt.block_on(storm(count, counter));
    return check(state, counter.total(), sum);
  });
  report_tasks(state, static_cast<double>(count));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK(run)->Name("storm_work/corun")->Apply(per_thread_count);

}  // namespace bench::storm_work
