/// \file
/// The runtime's clock and sleeping: `now()`, `sleep_for`, `sleep_until`.
///
/// Every runtime has a clock: `std::chrono::steady_clock`, or virtual time
/// (`runtime_options::virtual_time`), which moves only when told (`runtime::advance`) or, when
/// every worker is idle and timers are pending, jumps to the earliest deadline. Timers are
/// served by the workers themselves, between task steps (runtime/time/timer_queue.hpp gives
/// the resolution): a sleep ends no earlier than its deadline, and late by the kernel's wake-up
/// latency plus whatever task step was running when it came due.
#pragma once

#include "corun/detail/sleep_wait.hpp"
#include "corun/detail/timer_entry.hpp"
#include "corun/detail/waiter.hpp"

#include <chrono>
#include <coroutine>

namespace corun {

/// A point on a runtime's clock (a `std::chrono::steady_clock` time point, also under virtual
/// time, which starts at the real time the runtime was created).
using time_point = detail::clock_time;

/// The current time on the running task's runtime clock. `std::logic_error` outside a task
/// (use `runtime::now()` there).
[[nodiscard]] time_point now();

/// Awaitable returned by `sleep_until` and `sleep_for`.
class [[nodiscard("co_await the sleep")]] sleep_awaiter {
 public:
  explicit sleep_awaiter(time_point deadline) noexcept : m_deadline(deadline) {}
  [[nodiscard]] bool await_ready() {
    m_cancelled = detail::checkpoint_or_ready("sleep_until/sleep_for");
    return m_cancelled || detail::sleep_elapsed(m_deadline);
  }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
    m_suspended = true;
    return detail::sleep_suspend(m_wait, m_deadline, h);  // nothing may follow
  }
  void await_resume() {
    if (m_cancelled) {
      detail::throw_cancelled_current();
    }
    if (m_suspended) {
      detail::sleep_resumed(m_wait);
    }
  }

 private:
  time_point m_deadline;
  detail::sleep_wait m_wait;
  bool m_cancelled = false;
  bool m_suspended = false;
};

/// Suspends the task until `deadline` on its runtime's clock; returns at once if it passed
/// (without letting other tasks run: use `this_task::yield()` for that). A suspension point:
/// throws `corun::cancelled` if the task is cancelled before or while it sleeps, and a
/// cancelled sleep wakes at once (woken by its cancel callback, not by polling).
[[nodiscard]] inline sleep_awaiter sleep_until(time_point deadline) noexcept {
  return sleep_awaiter(deadline);
}

namespace detail {
/// `now() + d` on the running task's runtime clock (`std::logic_error` outside a task).
[[nodiscard]] time_point deadline_after(std::chrono::nanoseconds d);
/// Sleeps and timeouts longer than this are cut to it (and so never overflow the clock).
inline constexpr std::chrono::hours longest_wait{24 * 365 * 100};
/// `d`, at most `longest_wait`, rounded up to the clock's nanoseconds.
template <class Rep, class Period>
[[nodiscard]] std::chrono::nanoseconds clamp_wait(std::chrono::duration<Rep, Period> d) {
  using given = std::chrono::duration<Rep, Period>;
  // Compared in the caller's own unit: converting a huge duration to nanoseconds overflows.
  if (d > std::chrono::duration_cast<given>(longest_wait)) {
    return longest_wait;
  }
  return std::chrono::ceil<std::chrono::nanoseconds>(d);
}
}  // namespace detail

/// Suspends the task for `d` on its runtime's clock (see `sleep_until`); `d <= 0` returns at
/// once. `std::logic_error` outside a task.
template <class Rep, class Period>
[[nodiscard]] sleep_awaiter sleep_for(std::chrono::duration<Rep, Period> d) {
  return sleep_awaiter(detail::deadline_after(detail::clamp_wait(d)));
}

}  // namespace corun
