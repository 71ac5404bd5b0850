/// \file
/// Spawn storm on oneTBB: a task of one `task_group` runs every child into the same group; the
/// benchmark thread waits on the group.

#include "common/harness.hpp"
#include "storm/workload.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace bench::storm {
namespace {

void storm(long count, sharded_counter& counter) {
  tbb::task_group group;
  group.run([&group, &counter, count] {
    for (long i = 0; i < count; ++i) {
      group.run([&counter] { counter.increment(); });
    }
  });
  group.wait();
}

void run(benchmark::State& state) {
  const long count = size();
  sharded_counter counter;
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  measure(state, [&] {
    counter.reset();
    arena.execute([count, &counter] { storm(count, counter); });
    return check(state, counter.total(), count);
  });
  report_tasks(state, static_cast<double>(count));
}

}  // namespace

BENCHMARK(run)->Name("storm/tbb")->Apply(per_thread_count);

}  // namespace bench::storm
