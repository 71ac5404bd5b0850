/// \file
/// The yield ping-pong analog on oneTBB (see workload.hpp): two chains of tasks in one
/// `task_group`, each step running its successor before it ends.

#include "common/harness.hpp"
#include "pingpong/workload.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace bench::pingpong {
namespace {

/// One player: `step` runs as a task, counts itself and runs the next step until `steps` is
/// reached. Steps of one chain never overlap (each starts after its predecessor ran it), so the
/// plain members need no synchronisation; `task_group::wait` publishes them to the waiter.
class chain {
 public:
  chain(tbb::task_group& group, long steps) noexcept : m_group(group), m_steps(steps) {}

  void start() {
    m_group.run([this] { step(); });
  }
  [[nodiscard]] long made() const noexcept { return m_made; }

 private:
  void step() {
    ++m_made;
    if (m_made < m_steps) {
      m_group.run([this] { step(); });
    }
  }

  tbb::task_group& m_group;
  long m_steps;
  long m_made = 0;
};

long match(long total) {
  tbb::task_group group;
  chain first(group, first_half(total));
  chain second(group, total - first_half(total));
  first.start();
  second.start();
  group.wait();
  return first.made() + second.made();
}

void run(benchmark::State& state) {
  const long total = size();
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  measure(state,
          [&] { return check(state, arena.execute([total] { return match(total); }), total); });
  report_tasks(state, static_cast<double>(total));
}

}  // namespace

BENCHMARK(run)->Name("pingpong/tbb")->Apply(per_thread_count);

}  // namespace bench::pingpong
