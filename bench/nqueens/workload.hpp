/// \file
/// nqueens: count the ways to place n non-attacking queens on an n x n board, one row at a time.
/// A task for row r tries every column and spawns a task for row r + 1 for every column where
/// the queen is safe (libfork's formulation: a spawn per valid column, no cutoff); a task that
/// has placed all n queens returns 1.
///
/// Tasks per run: every call counts (the root and every spawned task), counted once by the
/// serial reference: 856,189 for n = 12, the size DESIGN.md section 5 states its targets for.
#pragma once

#include "common/harness.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace bench::nqueens {

/// Largest board a run uses; boards are fixed-size arrays so a task can copy one cheaply.
inline constexpr int max_n = 12;

/// `board[r]` is the column of the queen in row r (rows below the current one are unused).
using board = std::array<std::uint8_t, max_n>;

/// n = 12 (14,200 solutions); n = 6 (4 solutions) in smoke mode.
[[nodiscard]] inline int size() noexcept { return smoke() ? 6 : max_n; }

/// Known solution counts (OEIS A000170), indexed by n: what every version is checked against.
inline constexpr std::array<long, max_n + 1> solutions = {1,  1,  0,   0,   2,    10,   4,
                                                          40, 92, 352, 724, 2680, 14200};

/// True if the queen in row `row` attacks none of the queens in rows 0 .. row - 1.
[[nodiscard]] inline bool safe(const board& queens, int row) noexcept {
  const int column = queens[static_cast<std::size_t>(row)];
  for (int other = 0; other < row; ++other) {
    const int other_column = queens[static_cast<std::size_t>(other)];
    if (other_column == column || std::abs(other_column - column) == row - other) {
      return false;
    }
  }
  return true;
}

/// The safe columns of `row` in ascending order, into `safe_ones`; returns how many. The
/// column loop of the versions that await each child at once (`corun_awaited`,
/// `bare_coroutine`): the same checks as the spawning versions', in a plain function, as g++
/// keeps every local of a coroutine in its frame.
inline std::size_t safe_columns(int n, int row, board& queens,
                                std::array<std::uint8_t, max_n>& safe_ones) noexcept {
  std::size_t count = 0;
  for (int column = 0; column < n; ++column) {
    queens[static_cast<std::size_t>(row)] = static_cast<std::uint8_t>(column);
    if (safe(queens, row)) {
      safe_ones[count++] = static_cast<std::uint8_t>(column);
    }
  }
  return count;
}

/// The tree with every child awaited at once, on the lazy coroutine type `Task<long>`: corun's
/// `task` for `nqueens/corun_awaited`, `bench::bare_task` for `nqueens/bare_coroutine`. A frame
/// per node, run by symmetric transfer and destroyed, and nothing scheduled.
template <template <class> class Task>
Task<long> awaited_tree(int n, int row, board queens) {
  if (row == n) {
    co_return 1;
  }
  std::array<std::uint8_t, max_n> safe_ones;
  const std::size_t count = safe_columns(n, row, queens, safe_ones);
  long found = 0;
  for (std::size_t i = 0; i < count; ++i) {
    queens[static_cast<std::size_t>(row)] = safe_ones[i];
    found += co_await awaited_tree<Task>(n, row + 1, queens);
  }
  co_return found;
}

/// Solutions and calls of the serial recursion.
struct count {
  long solutions = 0;
  long calls = 0;
};

/// The serial recursion the parallel versions mirror (used by `nqueens/serial` and to count the
/// tasks): places queens in rows `row` .. n - 1 below the ones in `queens`.
inline void serial(int n, int row, board queens, count& result) noexcept {
  ++result.calls;
  if (row == n) {
    ++result.solutions;
    return;
  }
  for (int column = 0; column < n; ++column) {
    queens[static_cast<std::size_t>(row)] = static_cast<std::uint8_t>(column);
    if (safe(queens, row)) {
      serial(n, row + 1, queens, result);
    }
  }
}

/// Tasks per run at size `n`: calls of the serial recursion.
[[nodiscard]] inline long tasks(int n) noexcept {
  count result;
  serial(n, 0, board{}, result);
  return result.calls;
}

}  // namespace bench::nqueens
