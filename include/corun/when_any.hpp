/// \file
/// `when_any`: run tasks concurrently; the first to finish wins, the others are cancelled.
#pragma once

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"
#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"
#include "corun/when_all.hpp"

#include "corun/detail/group_scope.hpp"
#include "corun/detail/task_node.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun {

namespace detail {

/// Who finished first among the children of a `when_any`.
class race {
 public:
  static constexpr std::size_t no_winner = std::numeric_limits<std::size_t>::max();

  explicit race(group_scope& group) noexcept : m_group(&group) {}

  /// Child `index` finished with a value or a failure. The first one wins, and cancels the
  /// group (its siblings; the winner itself has no suspension point left).
  void finish(std::size_t index) noexcept {
    std::size_t expected = no_winner;
    // Relaxed: the winner is read only after the group's join, whose acq_rel counter orders it.
    if (m_winner.compare_exchange_strong(expected, index, std::memory_order_relaxed)) {
      m_group->request_cancel_nothrow("corun: when_any: another task finished first");
    }
  }
  /// After the join: the winner's index, or `no_winner`.
  [[nodiscard]] std::size_t winner() const noexcept {
    return m_winner.load(std::memory_order_relaxed);
  }

 private:
  group_scope* m_group;
  std::atomic<std::size_t> m_winner{no_winner};
};

/// The child `when_any` spawns for `inner`: runs it inline and reports how it ended to the race
/// (ending cancelled does not count as finishing).
template <class T>
task<T> race_entry(task<T> inner, race& r, std::size_t index) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(inner);
      r.finish(index);
    } else {
      decltype(auto) value = co_await std::move(inner);
      r.finish(index);
      co_return std::forward<T>(value);
    }
  } catch (const cancelled&) {
    throw;
  } catch (...) {
    r.finish(index);
    throw;
  }
}

/// Every child of a `when_any` ended cancelled: throws `cancelled` if the caller is cancelled,
/// else `task_cancelled` for the first child.
[[noreturn]] inline void throw_all_cancelled(std::uint64_t first_id,
                                             const std::string& first_name) {
  task_node& self = *this_thread_state().current;
  if (cancel_requested(self)) {
    throw_cancelled(self);
  }
  throw task_cancelled(first_id, first_name, "every when_any task ended cancelled");
}

}  // namespace detail

/// Runs every task of `tasks` concurrently as children of the current task. The first to
/// finish, with a value or a failure, wins: the others are cancelled, and awaited, before
/// `when_any` returns `{index of the winner, its value}` (`std::monostate` for `void`) or
/// rethrows the winner's exception. Tasks that end cancelled never win.
///
/// - A loser that fails anyway (it finished with an error before it noticed the cancellation, or
///   its cleanup threw) is not lost: then an `exception_group` is thrown holding the winner's
///   exception (if it failed) first, then the losers' failures.
/// - If every task ended cancelled: `cancelled` if the caller itself is cancelled, else
///   `task_cancelled`.
/// - A winner's own children still running when it finishes are cancelled with the losers.
/// Throws `std::logic_error` for an empty vector or an empty task.
template <class T>
task<std::pair<std::size_t, detail::non_void_t<T>>> when_any(std::vector<task<T>> tasks) {
  if (tasks.empty()) {
    throw std::logic_error("corun: when_any of no tasks");
  }
  for (const task<T>& t : tasks) {
    if (!t.valid()) {
      throw std::logic_error("corun: when_any of an empty or moved-from corun::task");
    }
  }
  detail::group_ref group(detail::group_scope::create(detail::current_task_for("when_any")));
  detail::race race(*group);
  // Every entry is made before the first spawn: spawning cannot fail, so no child is ever left
  // running in a group that cannot be joined.
  std::vector<task<T>> entries;
  entries.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    entries.push_back(detail::race_entry(std::move(tasks[i]), race, i));
  }
  std::vector<join_handle<T>> handles;
  handles.reserve(entries.size());  // no allocation between the spawns below
  for (task<T>& entry : entries) {
    handles.push_back(group->spawn(std::move(entry)));
  }
  std::vector<std::exception_ptr> failures = co_await group->join();
  const std::size_t winner = race.winner();
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (i != winner && handles[i].failed()) {
      failures.push_back(handles[i].exception());
    }
  }
  if (winner == detail::race::no_winner && failures.empty()) {
    detail::throw_all_cancelled(handles.front().id(), handles.front().name());
  }
  if (!failures.empty()) {
    if (winner != detail::race::no_winner && handles[winner].failed()) {
      failures.insert(failures.begin(), handles[winner].exception());
    }
    const std::size_t count = failures.size();
    throw exception_group("corun: when_any: " + std::to_string(count) +
                              (count == 1 ? " task failed" : " tasks failed"),
                          std::move(failures));
  }
  co_return std::pair<std::size_t, detail::non_void_t<T>>{winner,
                                                          detail::take_non_void(handles[winner])};
}

/// The variadic form: every task must have the same result type `T`.
template <class T, class... Ts>
task<std::pair<std::size_t, detail::non_void_t<T>>> when_any(task<T> first, task<Ts>... rest) {
  static_assert((std::is_same_v<T, Ts> && ...),
                "corun::when_any: every task must have the same result type; make them return a "
                "common type first (a std::variant, say)");
  std::vector<task<T>> tasks;
  tasks.reserve(1 + sizeof...(Ts));
  tasks.push_back(std::move(first));
  (tasks.push_back(std::move(rest)), ...);
  co_return co_await when_any(std::move(tasks));
}

}  // namespace corun
