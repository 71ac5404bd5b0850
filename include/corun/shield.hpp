/// \file
/// `shield`: run a task immune to cancellation from outside.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"

#include "corun/detail/task_node.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace corun {

namespace detail {

/// Spawns `t` as a shielded child of the current task (see `shield`) and returns its handle,
/// for callers that run several shielded children at once (`with_all`'s teardowns). Await it
/// with `wait_uncancellable()`, or the shield buys nothing.
template <class T>
join_handle<T> spawn_shielded(task<T> t, const char* what) {
  task_node& parent = current_task_for(what);
  if (!t.valid()) {
    throw std::logic_error(std::string("corun: ") + what +
                           " of an empty or moved-from corun::task");
  }
  auto frame = t.release();
  // Before the task is published (spawn_child pushes it), so every check sees the shield.
  frame.promise().m_shield = true;
  spawn_child(frame.promise(), frame, parent);
  return join_handle<T>{&frame.promise()};
}

}  // namespace detail

/// Runs `t` as a child of the current task whose scope is shielded: cancel requests of the
/// current task and its ancestors do not reach it (nor anything it spawns), while scopes opened
/// inside it (its own `cancel()`, groups, sources derived from its token) still can cancel it.
/// `co_await shield(t)` waits for it to finish, even if the awaiting task is cancelled
/// meanwhile (trio's shielded cancel scope, not asyncio's `shield`, which abandons the inner
/// task); the awaiting task then sees `cancelled` at its next suspension point.
///
/// Returns `t`'s value or rethrows its exception (`task_cancelled` if it ended cancelled).
template <class T>
task<T> shield(task<T> t) {
  join_handle<T> handle = detail::spawn_shielded(std::move(t), "corun::shield");
  co_return co_await handle.wait_uncancellable();
}

}  // namespace corun
