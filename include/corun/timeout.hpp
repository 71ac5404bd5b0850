/// \file
/// Deadlines around a task: `timeout` (throws `timeout_error`) and `move_on_after` (gives up
/// quietly). Both run the task as a child of the calling task and, when the deadline passes,
/// cancel it with provenance `cancel_origin::deadline` and wait until it ended.
///
/// The deadline is armed before the task starts, so it wins a tie: a sleep inside the task that
/// ends at the same instant as the deadline is cut short (ties fire in arming order), on any
/// worker count, also under virtual time.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"
#include "corun/time.hpp"

#include "corun/detail/deadline_timer.hpp"

#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace corun {

/// Thrown by `timeout` when the deadline passed before the task completed.
class timeout_error : public std::exception {
 public:
  [[nodiscard]] const char* what() const noexcept override {
    return "corun: the operation timed out";
  }
};

namespace detail {
/// Runs `t` as a child under a deadline `d`; returns whether it completed (then `*out`, for a
/// non-void `T`, holds its value), false if the deadline cancelled it. Every other outcome
/// (the child's failure, the caller's own cancellation) propagates.
template <class T, class Out>
task<bool> run_with_deadline(std::chrono::nanoseconds d, task<T> t, Out* out) {
  // Armed before the child exists, so that it fires before any timer the child arms for the
  // same instant (see the file comment).
  deadline_timer deadline(deadline_after(d), d);
  auto handle = corun::spawn(std::move(t));
  deadline.attach(handle);
  try {
    if constexpr (std::is_void_v<T>) {
      co_await handle;
    } else {
      out->emplace(co_await handle);
    }
    // A value that arrived even though the deadline fired is kept: completion beats
    // cancellation.
    co_return true;
  } catch (const task_cancelled&) {
    deadline.disarm();
    if (!deadline.fired()) {
      throw;  // cancelled by something else than our deadline
    }
  }
  co_return false;
}
}  // namespace detail

/// Runs `t` as a child of the calling task; if it has not completed after `d` on the runtime
/// clock, cancels it, waits until it ended, and throws `timeout_error` if it ended cancelled.
///
/// The deadline only requests cancellation: `timeout_error` means "the deadline's cancellation
/// ended the task", not "the task took longer than `d`". A task that catches the deadline's
/// `cancelled` (or completes before it passes another suspension point) and then returns a
/// value keeps it: `timeout` returns that value, later than `d`, and throws nothing; if the
/// task throws something else instead, that propagates. This is "completion beats
/// cancellation" (a result that exists is never thrown away), and trio's `fail_after`, which
/// raises `TooSlowError` only when its scope actually caught the `Cancelled`. A task that must
/// not overrun its deadline lets `cancelled` propagate.
///
/// The `cancelled` the task sees says it was a deadline: `origin()` is
/// `cancel_origin::deadline`, `message()` names the limit ("timed out after 250 ms"; "us" or
/// "ns" when `d` is not whole milliseconds), and `describe()` reads "cancelled: deadline
/// exceeded: timed out after 250 ms", followed by " (requested on task #N)" in the task's own
/// children, whose scopes the request reached through it. A value or failure of `t` propagates
/// as from `co_await`; if the caller itself is cancelled, its own `cancelled` propagates (the
/// child, in its subtree, is cancelled with it).
template <class Rep, class Period, class T>
task<T> timeout(std::chrono::duration<Rep, Period> d, task<T> t) {
  // The inner tasks are named, not awaited as temporaries: g++ 12 destroys a temporary task
  // of a `co_await` full-expression twice (README, "Known compiler bugs").
  if constexpr (std::is_void_v<T>) {
    task<bool> run =
        detail::run_with_deadline<T, void>(detail::clamp_wait(d), std::move(t), nullptr);
    if (!co_await std::move(run)) {
      throw timeout_error();
    }
  } else {
    std::optional<T> value;
    task<bool> run = detail::run_with_deadline(detail::clamp_wait(d), std::move(t), &value);
    if (!co_await std::move(run)) {
      throw timeout_error();
    }
    co_return std::move(*value);
  }
}

/// Like `timeout`, but when the deadline cancels the task it returns an empty optional (trio's
/// `move_on_after`). For a `task<void>`: `true` if it completed, `false` if it was cut short.
template <class Rep, class Period, class T>
auto move_on_after(std::chrono::duration<Rep, Period> d, task<T> t)
    -> task<std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>> {
  if constexpr (std::is_void_v<T>) {
    task<bool> run =
        detail::run_with_deadline<T, void>(detail::clamp_wait(d), std::move(t), nullptr);
    co_return co_await std::move(run);
  } else {
    std::optional<T> value;
    task<bool> run = detail::run_with_deadline(detail::clamp_wait(d), std::move(t), &value);
    co_await std::move(run);
    co_return value;
  }
}

}  // namespace corun
