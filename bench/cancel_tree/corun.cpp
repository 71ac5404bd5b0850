/// \file
/// cancel_tree on corun: the whole tree suspended, then one cancel of the root.

#include "corun/corun.hpp"

#include "cancel_tree/workload.hpp"
#include "common/corun_support.hpp"
#include "common/harness.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

namespace bench::cancel_tree {
namespace {

corun::task<void> node(int level, std::atomic<long>& asleep) {
  if (level == 0) {
    asleep.fetch_add(1, std::memory_order_relaxed);
    co_await corun::this_task::sleep_forever();
  }
  std::array<corun::join_handle<void>, fanout> children;
  for (std::size_t i = 0; i < children.size(); ++i) {
    children[i] = corun::spawn(node(level - 1, asleep));
  }
  for (corun::join_handle<void>& child : children) {
    co_await child;  // our own cancellation ends the loop; the children end before we do
  }
}

/// One run; returns the cancel-to-quiescence time in seconds, or a negative value on failure.
double cancel_once(corun::runtime& rt, int tree_depth) {
  std::atomic<long> asleep{0};
  auto root = rt.spawn(node(tree_depth, asleep));
  while (asleep.load(std::memory_order_relaxed) < leaves(tree_depth)) {
    std::this_thread::yield();
  }
  const auto start = std::chrono::steady_clock::now();
  root.cancel("benchmark");
  try {
    root.get();
  } catch (const corun::task_cancelled&) {
  }
  const auto end = std::chrono::steady_clock::now();
  return root.cancelled() ? std::chrono::duration<double>(end - start).count() : -1.0;
}

void run(benchmark::State& state) {
  const int tree_depth = depth();
  corun::runtime rt(corun_options(state));
  if (cancel_once(rt, tree_depth) < 0) {  // untimed, as `measure` does
    state.SkipWithError("the root did not end cancelled");
    return;
  }
  for (auto _ : state) {
    const double seconds = cancel_once(rt, tree_depth);
    if (seconds < 0) {
      state.SkipWithError("the root did not end cancelled");
      break;
    }
    state.SetIterationTime(seconds);
  }
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

}  // namespace

BENCHMARK(run)->Name("cancel_tree/corun")->Apply(per_thread_count_manual);

}  // namespace bench::cancel_tree
