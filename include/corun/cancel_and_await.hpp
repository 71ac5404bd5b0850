/// \file
/// `cancel_and_await`: cancel a task and wait until it has finished (frequenz.core.asyncio).
#pragma once

#include "corun/cancelled.hpp"
#include "corun/join_handle.hpp"
#include "corun/task.hpp"

namespace corun {

/// Cancels the task of `handle` and waits for it to finish. Returns at once if it is already
/// done. Suppresses only the cancellation it asked for (the task ending cancelled, which its
/// awaiter would see as `task_cancelled`); any other exception of the task propagates, and so
/// does the caller's own `cancelled` if the caller is cancelled while it waits. The task's value,
/// if it finished with one before the cancel landed, is discarded.
///
/// The result is consumed: afterwards the handle is done and cannot be awaited again.
template <class T>
task<void> cancel_and_await(join_handle<T>& handle) {
  if (handle.done()) {
    co_return;
  }
  handle.cancel("cancel_and_await");
  try {
    static_cast<void>(co_await handle);
  } catch (const task_cancelled&) {
    // The cancellation we asked for.
  }
}

/// Cancels the task of `handle` and waits for it to finish, as the `join_handle` overload does,
/// without taking its result (a `task_handle` may have copies, and any number of tasks may
/// wait at once). If the task failed, its exception is rethrown (and counts as observed); if
/// it ended cancelled or with a value, this returns normally.
inline task<void> cancel_and_await(task_handle& handle) {
  if (!handle.done()) {
    handle.cancel("cancel_and_await");
    co_await handle.wait();
  }
  if (handle.failed()) {
    handle.rethrow();
  }
}

}  // namespace corun
