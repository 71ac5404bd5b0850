/// \file
/// `shield`: run a task immune to cancellation from outside.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"

#include "corun/detail/task_node.hpp"

#include <stdexcept>
#include <utility>

namespace corun {

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
  detail::task_node& parent = detail::current_task_for("corun::shield");
  if (!t.valid()) {
    throw std::logic_error("corun: shield of an empty or moved-from corun::task");
  }
  auto frame = t.release();
  // Before the task is published (spawn_child pushes it), so every check sees the shield.
  frame.promise().m_shield = true;
  detail::spawn_child(frame.promise(), frame, parent);
  join_handle<T> handle{&frame.promise()};
  co_return co_await handle.wait_uncancellable();
}

}  // namespace corun
