/// \file
/// `cancel_and_await`: cancel a task and wait until it has finished (frequenz.core.asyncio).
#pragma once

#include "corun/cancelled.hpp"
#include "corun/join_handle.hpp"
#include "corun/task.hpp"

#include <exception>

namespace corun {

/// Cancels the task of `handle` and waits for it to finish. Suppresses only the cancellation it
/// asked for (the task ending cancelled, which its awaiter would see as `task_cancelled`); any
/// other exception of the task propagates, and so does the caller's own `cancelled` if the
/// caller is cancelled while it waits. The task's value, if it finished with one before the
/// cancel landed, is discarded.
///
/// Returns at once if the task is already done, but not quietly: a task that already failed
/// has its exception rethrown (and the failure counts as observed), as awaiting it would, every
/// time this is called, like the `task_handle` overload and Python's awaiting of a done task.
/// A task already done takes nothing from the handle.
///
/// After a wait the result is consumed: the handle is done and cannot be awaited again.
template <class T>
task<void> cancel_and_await(join_handle<T>& handle) {
  if (handle.done()) {
    // Not `co_await handle`: the result may have been taken already, and a task that ended
    // cancelled must not turn into the caller's own `cancelled` when nothing was waited for.
    if (handle.failed()) {
      std::rethrow_exception(handle.exception());
    }
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
/// wait at once). If the task failed, its exception is rethrown (and counts as observed), also
/// when it was already done; if it ended cancelled or with a value, this returns normally.
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
