/// \file
/// `when_all`: run tasks concurrently, wait for all of them.
#pragma once

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"
#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"

#include "corun/detail/group_scope.hpp"

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corun {

namespace detail {

/// `void` results appear as `std::monostate` in the tuple of the variadic `when_all`.
template <class T>
using non_void_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
non_void_t<T> take_non_void(join_handle<T>& handle) {
  if constexpr (std::is_void_v<T>) {
    handle.take_completed();
    return {};
  } else {
    return handle.take_completed();
  }
}

/// After the group joined: sort every child's outcome into failures and cancellations.
template <class T>
void collect_outcome(join_handle<T>& handle, std::vector<std::exception_ptr>& failures,
                     bool& any_cancelled) {
  if (handle.failed()) {
    failures.push_back(handle.exception());
  } else if (handle.cancelled()) {
    any_cancelled = true;
  }
}

inline void require_valid(bool valid) {
  if (!valid) {
    throw std::logic_error("corun: when_all of an empty or moved-from corun::task");
  }
}

/// Throws what a `when_all` whose children ended like this must throw, if anything.
void settle_when_all(std::vector<std::exception_ptr> failures, bool any_cancelled,
                     std::size_t count);

}  // namespace detail

/// Runs the tasks concurrently as children of the current task and waits for all of them.
/// Returns their values in order (`std::monostate` for `void`). On the first failure the other
/// tasks are cancelled; once all ended, throws an `exception_group` holding every failure
/// (cancellations left out). If the awaiting task is itself cancelled, it sees `cancelled`.
template <class... Ts>
task<std::tuple<detail::non_void_t<Ts>...>> when_all(task<Ts>... tasks) {
  (detail::require_valid(tasks.valid()), ...);
  detail::group_ref group(detail::group_scope::create(detail::current_task_for("when_all")));
  std::tuple<join_handle<Ts>...> handles{group->spawn(std::move(tasks))...};
  std::vector<std::exception_ptr> adopted = co_await group->join();
  std::vector<std::exception_ptr> failures;
  bool any_cancelled = false;
  std::apply([&](auto&... h) { (detail::collect_outcome(h, failures, any_cancelled), ...); },
             handles);
  failures.insert(failures.end(), adopted.begin(), adopted.end());
  detail::settle_when_all(std::move(failures), any_cancelled, sizeof...(Ts));
  co_return std::apply(
      [](auto&... h) { return std::tuple<detail::non_void_t<Ts>...>{detail::take_non_void(h)...}; },
      handles);
}

/// Runs every task of `tasks` concurrently and waits for all of them; values in input order.
/// Failure and cancellation behave as in the variadic form.
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(
    std::vector<task<T>> tasks) {
  for (const task<T>& t : tasks) {
    detail::require_valid(t.valid());
  }
  detail::group_ref group(detail::group_scope::create(detail::current_task_for("when_all")));
  std::vector<join_handle<T>> handles;
  handles.reserve(tasks.size());  // no allocation between the spawns below
  for (task<T>& t : tasks) {
    handles.push_back(group->spawn(std::move(t)));
  }
  std::vector<std::exception_ptr> adopted = co_await group->join();
  std::vector<std::exception_ptr> failures;
  bool any_cancelled = false;
  for (join_handle<T>& h : handles) {
    detail::collect_outcome(h, failures, any_cancelled);
  }
  failures.insert(failures.end(), adopted.begin(), adopted.end());
  detail::settle_when_all(std::move(failures), any_cancelled, handles.size());
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> values;
    values.reserve(handles.size());
    for (join_handle<T>& h : handles) {
      values.push_back(h.take_completed());
    }
    co_return values;
  }
}

}  // namespace corun
