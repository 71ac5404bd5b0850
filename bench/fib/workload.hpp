/// \file
/// fib(n) with one spawn per call and no cutoff: the classic fork-join overhead benchmark.
/// Every call with n >= 2 forks fib(n - 1), computes fib(n - 2) inline and joins, so the work per
/// task is a few instructions and the time is almost all spawn, join and frame cost.
///
/// Tasks per run: every call counts, 2 * fib(n + 1) - 1 of them (2,692,537 for n = 30).
#pragma once

#include "common/harness.hpp"

namespace bench::fib {

/// fib(30), as in DESIGN.md section 5; fib(15) in smoke mode.
[[nodiscard]] inline int size() noexcept { return smoke() ? 15 : 30; }

/// Iterative fib: the reference the recursive versions are checked against.
[[nodiscard]] constexpr long reference(int n) noexcept {
  long previous = 0;
  long current = 1;
  if (n == 0) {
    return 0;
  }
  for (int i = 1; i < n; ++i) {
    const long next = previous + current;
    previous = current;
    current = next;
  }
  return current;
}
static_assert(reference(0) == 0 && reference(1) == 1 && reference(30) == 832040);

/// Calls made by the recursive fib(n): 2 * fib(n + 1) - 1.
[[nodiscard]] constexpr long tasks(int n) noexcept { return 2 * reference(n + 1) - 1; }
static_assert(tasks(2) == 3 && tasks(30) == 2692537);

/// The serial recursion the parallel versions mirror (used by `fib/serial`).
[[nodiscard]] inline long serial(int n) noexcept {
  if (n < 2) {
    return n;
  }
  return serial(n - 1) + serial(n - 2);
}

}  // namespace bench::fib
