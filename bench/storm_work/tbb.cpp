/// \file
/// Spawn storm of working tasks on oneTBB: a task of one `task_group` runs every child into the
/// same group, as in `storm/tbb`; the benchmark thread waits on the group.

#include "common/harness.hpp"
#include "storm_work/workload.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace bench::storm_work {
namespace {

void storm(long count, sharded_counter& counter) {
  tbb::task_group group;
  group.run([&group, &counter, count] {
    for (long i = 0; i < count; ++i) {
      group.run([&counter, i] { counter.add(work(i)); });
    }
  });
  group.wait();
}

void run(benchmark::State& state) {
  const long count = size();
  const long sum = expected(count);
  sharded_counter counter;
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  measure(state, [&] {
    counter.reset();
    arena.execute([count, &counter] { storm(count, counter); });
    return check(state, counter.total(), sum);
  });
  report_tasks(state, static_cast<double>(count));
}

}  // namespace

BENCHMARK(run)->Name("storm_work/tbb")->Apply(per_thread_count);

}  // namespace bench::storm_work
