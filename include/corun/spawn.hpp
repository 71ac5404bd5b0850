/// \file
/// The free `corun::spawn`: start a child of the current task.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"

#include "corun/detail/misuse.hpp"
#include "corun/detail/owned_call.hpp"
#include "corun/detail/task_node.hpp"

#include <utility>

namespace corun {

namespace detail {
[[nodiscard]] inline task_node& current_task_for(const char* what) {
  task_node* current = this_thread_state().current;
  if (CORUN_UNLIKELY(current == nullptr)) {
    throw_outside_task(what);
  }
  return *current;
}
}  // namespace detail

/// Spawns `t` on the current runtime as a child of the current task. Only inside a corun task.
///
/// The child runs concurrently; the current task does not complete until it has completed.
/// Cancelling the current task cancels the child. If the child fails and its handle was dropped
/// without being awaited, the current task is cancelled and fails with that error.
///
/// Work-first: while this worker already holds `runtime_options::eager_spawn_threshold` queued
/// tasks (16 by default), the child is not queued but runs at once, on this thread, until it
/// first suspends or completes; then `spawn` returns. A spawn storm thus keeps a bounded number
/// of frames alive. So the child must not block its thread on something the spawner does after
/// `spawn` (a `std::mutex` the spawner holds, a flag it sets later); awaiting is fine.
template <class T>
join_handle<T> spawn(task<T> t, spawn_options options) {
  detail::task_node& parent = detail::current_task_for("corun::spawn");
  if (CORUN_UNLIKELY(!t.valid())) {
    detail::throw_logic_error("corun: spawn of an empty or moved-from corun::task");
  }
  auto frame = t.release();
  detail::frame_guard guard(frame);
  if (!options.name.empty()) {
    detail::name_task(frame.promise(), std::move(options.name));
  }
  guard.dismiss();
  detail::spawn_child(frame.promise(), frame, parent);
  return join_handle<T>{&frame.promise()};
}

/// As above, without options (the hot path: no option object to build).
template <class T>
join_handle<T> spawn(task<T> t) {
  detail::task_node& parent = detail::current_task_for("corun::spawn");
  if (CORUN_UNLIKELY(!t.valid())) {
    detail::throw_logic_error("corun: spawn of an empty or moved-from corun::task");
  }
  auto frame = t.release();
  detail::spawn_child(frame.promise(), frame, parent);
  return join_handle<T>{&frame.promise()};
}

/// Spawns `fn(args...)` as a child of the current task. The callable and the arguments are moved
/// into storage that lives as long as the task, so a coroutine lambda's captures cannot dangle.
template <class F, class... Args>
  requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(F&& fn, Args&&... args) {
  return spawn(detail::call_owned(std::forward<F>(fn), std::forward<Args>(args)...));
}

/// As above, with options.
template <class F, class... Args>
  requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(spawn_options options, F&& fn, Args&&... args) {
  return spawn(detail::call_owned(std::forward<F>(fn), std::forward<Args>(args)...),
               std::move(options));
}

}  // namespace corun
