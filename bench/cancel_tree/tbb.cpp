/// \file
/// cancel_tree on oneTBB: nested task_groups, leaves spinning until the group is cancelling.

#include "cancel_tree/workload.hpp"
#include "common/harness.hpp"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/task.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace bench::cancel_tree {
namespace {

void node(int level, std::atomic<long>& running) {
  if (level == 0) {
    running.fetch_add(1, std::memory_order_relaxed);
    while (!tbb::is_current_task_group_canceling()) {
      std::this_thread::yield();
    }
    return;
  }
  tbb::task_group group;  // bound to the enclosing group's context: cancelled with it
  for (long i = 0; i < fanout; ++i) {
    group.run([level, &running] { node(level - 1, running); });
  }
  group.wait();
}

double cancel_once(tbb::task_arena& arena, int tree_depth, std::size_t workers) {
  std::atomic<long> running{0};
  tbb::task_group root;
  tbb::task_group_status status = tbb::not_complete;
  std::chrono::steady_clock::time_point end;
  // The arena's threads (this one included) run the tree; we cancel from outside it.
  std::thread driver([&] {
    arena.execute([&] {
      root.run([&] { node(tree_depth, running); });
      status = root.wait();
    });
    end = std::chrono::steady_clock::now();
  });
  // Every thread of the arena is down in the tree, spinning in a leaf.
  while (running.load(std::memory_order_relaxed) < static_cast<long>(workers)) {
    std::this_thread::yield();
  }
  const auto start = std::chrono::steady_clock::now();
  root.cancel();
  driver.join();
  return status == tbb::canceled ? std::chrono::duration<double>(end - start).count() : -1.0;
}

void run(benchmark::State& state) {
  const int tree_depth = depth();
  tbb::task_arena arena(static_cast<int>(threads(state)));
  arena.initialize();
  if (cancel_once(arena, tree_depth, threads(state)) < 0) {
    state.SkipWithError("the tree was not cancelled");
    return;
  }
  for (auto _ : state) {
    const double seconds = cancel_once(arena, tree_depth, threads(state));
    if (seconds < 0) {
      state.SkipWithError("the tree was not cancelled");
      break;
    }
    state.SetIterationTime(seconds);
  }
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

}  // namespace

BENCHMARK(run)->Name("cancel_tree/tbb")->Apply(per_thread_count_manual);

}  // namespace bench::cancel_tree
