/// \file
/// `corun::this_task`: what a task can ask about itself.
#pragma once

#include "corun/cancel.hpp"

#include "corun/detail/task_node.hpp"

#include <coroutine>
#include <cstdint>
#include <optional>
#include <string>

namespace corun::this_task {

namespace detail {
[[nodiscard]] corun::detail::task_node& current(const char* what);
}  // namespace detail

/// Awaitable returned by `yield()`.
class yield_awaiter {
 public:
  [[nodiscard]] bool await_ready() const {
    // Suspends even when already cancelled: a task that catches `cancelled` in a loop of yields
    // still lets the others run, among them a joiner woken by the cancel.
    static_cast<void>(detail::current("this_task::yield"));
    return false;
  }
  void await_suspend(std::coroutine_handle<> self) const { corun::detail::yield_current(self); }
  void await_resume() const {
    corun::detail::task_node& self = *corun::detail::this_thread_state().current;
    corun::detail::clear_wait(self);
    if (corun::detail::cancel_requested(self)) {
      corun::detail::throw_cancelled(self);
    }
  }
};

/// `co_await this_task::yield();` lets the other runnable tasks of this worker run first.
/// A suspension point: throws `corun::cancelled` if the task's scope is cancelled.
[[nodiscard]] inline yield_awaiter yield() noexcept { return {}; }

/// Awaitable returned by `sleep_forever()`.
class sleep_forever_awaiter {
 public:
  [[nodiscard]] bool await_ready() const {
    return corun::detail::cancel_requested(detail::current("this_task::sleep_forever"));
  }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
    // Nothing may follow: once registered, the task may be resumed on another worker.
    return corun::detail::suspend_until_cancelled(m_wake, h);
  }
  [[noreturn]] void await_resume() {
    corun::detail::task_node& self = *corun::detail::this_thread_state().current;
    corun::detail::deregister_cancel(m_wake);
    corun::detail::clear_wait(self);
    corun::detail::throw_cancelled(self);
  }

 private:
  corun::detail::task_wake m_wake;
};

/// `co_await this_task::sleep_forever();` suspends the task until it is cancelled, then throws
/// `corun::cancelled` (trio's and anyio's `sleep_forever`). Woken by its cancel callback, not
/// by polling; costs no CPU while it waits.
[[nodiscard]] inline sleep_forever_awaiter sleep_forever() noexcept { return {}; }

/// Awaitable returned by `checkpoint()`; it never suspends.
struct checkpoint_awaiter {
  [[nodiscard]] bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

/// Throws `corun::cancelled` if the current task's scope (or an unshielded parent scope) was
/// asked to cancel. Call it in long computations; `co_await this_task::checkpoint()` works too.
inline checkpoint_awaiter checkpoint() {
  corun::detail::task_node& self = detail::current("this_task::checkpoint");
  if (corun::detail::cancel_requested(self)) {
    // A joiner running us inline on its stack gets its cancel wake-up now, so that it need not
    // wait for us if we choose to go on.
    corun::detail::leave_stack(self);
    corun::detail::throw_cancelled(self);
  }
  return {};
}

/// The current task's cancel token: cancelled when the task (or an unshielded ancestor) is.
/// Keeps the task's node alive, not the task; a token kept past the task's end stays as it was.
[[nodiscard]] cancel_token token();

/// Why the current task is cancelled (who asked, and why: see `corun::cancelled::describe`), or
/// nothing if it is not. Does not throw `cancelled` itself.
[[nodiscard]] std::optional<cancelled> cancellation();

/// The current task's id (stable, unique within the process).
[[nodiscard]] std::uint64_t id();
/// The current task's name (empty if none was given at spawn).
[[nodiscard]] std::string name();

}  // namespace corun::this_task
