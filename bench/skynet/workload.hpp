/// \file
/// skynet: a 10-ary tree of tasks whose leaves return their own number and whose inner nodes
/// spawn all ten children and sum their results. Depth 6 gives 1,000,000 leaves numbered
/// 0 .. 999,999, whose sum is 499,999,500,000.
///
/// Tasks per run: every node counts, 1 + 10 + ... + 10^6 = 1,111,111 of them.
#pragma once

#include "common/harness.hpp"

#include <cstddef>

namespace bench::skynet {

/// Children per inner node.
inline constexpr long fanout = 10;

/// Tree depth: 6 (1,000,000 leaves), 3 (1,000 leaves) in smoke mode.
[[nodiscard]] inline int depth() noexcept { return smoke() ? 3 : 6; }

/// fanout ^ depth.
[[nodiscard]] constexpr long leaves(int tree_depth) noexcept {
  long count = 1;
  for (int level = 0; level < tree_depth; ++level) {
    count *= fanout;
  }
  return count;
}

/// The sum of the leaf numbers 0 .. leaves - 1: the closed form every version is checked
/// against.
[[nodiscard]] constexpr long reference(int tree_depth) noexcept {
  const long count = leaves(tree_depth);
  return count * (count - 1) / 2;
}
static_assert(reference(6) == 499999500000);

/// Nodes of the tree: 1 + fanout + ... + fanout ^ depth.
[[nodiscard]] constexpr long tasks(int tree_depth) noexcept {
  long nodes = 0;
  for (int level = 0; level <= tree_depth; ++level) {
    nodes += leaves(level);
  }
  return nodes;
}
static_assert(tasks(6) == 1111111);

/// The tree with every child awaited at once, on the lazy coroutine type `Task<long>`: corun's
/// `task` for `skynet/corun_awaited`, `bench::bare_task` for `skynet/bare_coroutine`. A frame
/// per node, run by symmetric transfer and destroyed, and nothing scheduled.
template <template <class> class Task>
Task<long> awaited_tree(long first, long count) {
  if (count == 1) {
    co_return first;
  }
  const long child = count / fanout;
  long sum = 0;
  for (long i = 0; i < fanout; ++i) {
    sum += co_await awaited_tree<Task>(first + i * child, child);
  }
  co_return sum;
}

/// The serial recursion the parallel versions mirror (used by `skynet/serial`): the subtree
/// whose first leaf is `first` and that has `count` leaves.
[[nodiscard]] inline long serial(long first, long count) noexcept {
  if (count == 1) {
    return first;
  }
  const long child = count / fanout;
  long sum = 0;
  for (long i = 0; i < fanout; ++i) {
    sum += serial(first + i * child, child);
  }
  return sum;
}

}  // namespace bench::skynet
