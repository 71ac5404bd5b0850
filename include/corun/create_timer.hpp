/// \file
/// `create_timer`: run a task function at once and then every interval (aiotools'
/// `create_timer`), with a choice of what happens when a tick outlasts its interval
/// (`timer_delay_policy`: aiotools' two policies and tokio's three missed-tick behaviours).
///
/// The timer is a task (the driver) whose children are the ticks, one task per call of the
/// function. Its deadlines lie on the grid `start + k * interval` of the runtime clock, where
/// `start` is the time `create_timer` was called: a tick that starts a little late (the kernel's
/// wake-up latency) does not move the later ones.
///
/// Stopping. The timer never ends on its own: `cancel_and_await(handle)` cancels the driver,
/// which cancels every tick still running (their `cancelled` handlers run) and waits until all
/// have ended; no tick starts after the cancel request (the driver checks it before each tick).
/// A tick that ignores its cancellation keeps the stop waiting until it returns.
///
/// Failures. A failing tick (an exception other than `corun::cancelled`) stops the timer: the
/// ticks still running are cancelled and awaited, and the timer ends failed with that
/// exception. (In `accumulate` mode this is API.md's ownership rule, a failed child nobody
/// awaits fails its parent; the other modes await each tick and rethrow its failure.) Awaiting
/// the handle rethrows it, and so does `cancel_and_await`, also for a timer that had already
/// failed (it then returns at once, but with the failure: API.md, "any other exception of the
/// task propagates"). A failure nobody looked at reaches the owner of the timer when the handle
/// is dropped (the task that created it fails with it). A tick
/// that ends cancelled is not a failure: the timer goes on. If `fn()` itself throws, the timer
/// fails with that exception.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/runtime.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"
#include "corun/time.hpp"

#include "corun/detail/deadline_timer.hpp"

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace corun {

/// What a timer does when a tick is still running at the next deadline.
enum class timer_delay_policy : std::uint8_t {
  /// aiotools' default: every tick starts at its deadline, as a new child of the timer, while
  /// earlier ones may still run; all of them are cancelled when the timer stops.
  accumulate,
  /// aiotools' `CANCEL`: at the next deadline a tick still running is cancelled (its `cancelled`
  /// has origin `cancel_origin::deadline`, message "timed out after <interval>") and awaited,
  /// as aiotools does, before the next tick starts; at most one tick runs at a time. If it
  /// takes so long to unwind that it overruns more deadlines, those are skipped: the next tick
  /// starts as soon as it ended and is cut at the first deadline after its own start. A tick
  /// ending exactly at the next deadline may or may not be cancelled (the two timers tie).
  cancel,
  /// tokio's `MissedTickBehavior::Skip`. Ticks run one at a time (the timer awaits each). When
  /// a tick ends after the next deadline, the missed tick starts at once, and the one after
  /// it at the first deadline of the grid after that late start: the other missed ones are
  /// skipped.
  skip,
  /// tokio's `MissedTickBehavior::Delay`. Ticks run one at a time. When a tick ends after the
  /// next deadline, the missed tick starts at once and the grid restarts from there: the later
  /// ticks come every interval after that late start.
  delay,
  /// tokio's `MissedTickBehavior::Burst`. Ticks run one at a time. When a tick ends after the
  /// next deadline, every missed tick runs, back to back, until the timer caught up with the
  /// grid, which never moves.
  burst,
};

namespace detail {

/// `fn()` makes the `task<void>` of one tick.
template <class F>
concept timer_function =
    std::invocable<F&> && std::same_as<std::invoke_result_t<F&>, corun::task<void>>;

/// The first point of the grid `start + k * interval` strictly after `t` (`t >= start`).
[[nodiscard]] inline time_point grid_after(time_point start, std::chrono::nanoseconds interval,
                                           time_point t) noexcept {
  return start + ((t - start) / interval + 1) * interval;
}

/// `interval` in the clock's nanoseconds; `std::invalid_argument` unless it is positive.
template <class Rep, class Period>
[[nodiscard]] std::chrono::nanoseconds timer_interval(std::chrono::duration<Rep, Period> interval) {
  if (interval <= std::chrono::duration<Rep, Period>::zero()) {
    throw std::invalid_argument("corun: create_timer needs a positive interval");
  }
  return clamp_wait(interval);
}

/// The driver of a timer. `fn` is a parameter, so it lives in this frame, which outlives every
/// tick (a task completes only after its children): the ticks' captures cannot dangle.
template <class F>
task<void> run_timer(F fn, time_point start, std::chrono::nanoseconds interval,
                     timer_delay_policy policy) {
  time_point next = start;  // the deadline of the next tick
  for (;;) {
    co_await sleep_until(next);  // a cancellation checkpoint even when the deadline passed
    // Named, not spawned as a temporary (g++ 12, README "Known compiler bugs").
    task<void> tick = std::invoke(fn);
    if (policy == timer_delay_policy::cancel) {
      next = grid_after(start, interval, corun::now());
      // Armed before the tick starts: it wins a tie with a sleep inside the tick that ends at
      // the next tick's deadline (ties fire in arming order).
      deadline_timer cut(next, interval);
      join_handle<void> running = corun::spawn(std::move(tick));
      cut.attach(running);
      try {
        co_await running;
      } catch (const task_cancelled&) {
        // Cut at the next deadline, or ended cancelled on its own: not a failure.
      }
      continue;
    }
    join_handle<void> running = corun::spawn(std::move(tick));
    if (policy == timer_delay_policy::accumulate) {
      next = grid_after(start, interval, corun::now());
      continue;  // the handle is dropped: the tick runs on as a child of the timer
    }
    try {
      co_await running;
    } catch (const task_cancelled&) {
      // Ended cancelled on its own (the timer's own cancellation arrives as `cancelled`).
    }
    // Where the next tick belongs if this one did not overrun.
    const time_point due =
        policy == timer_delay_policy::skip ? grid_after(start, interval, next) : next + interval;
    const time_point ended = corun::now();
    next = (policy == timer_delay_policy::burst || ended <= due) ? due : ended;
  }
}

}  // namespace detail

/// Starts a timer as a child of the current task: `fn()` runs at once (its first tick, at the
/// time of this call on the runtime clock) and then every `interval`, each tick a `task<void>`
/// spawned as a child of the timer; `policy` says what happens when a tick outlasts its
/// interval (`timer_delay_policy`). Returns the timer's handle: stop it with
/// `cancel_and_await(handle)`, which cancels and awaits the ticks still running. The timer
/// never completes on its own; it fails with the first failure of a tick (see the file
/// comment). Like any child, a timer whose handle is dropped keeps the current task from
/// completing, so keep the handle and stop the timer.
///
/// `fn` is moved (or copied) into the timer and lives until its last tick ended, so the
/// captures of a coroutine lambda cannot dangle; it is called on the timer's task, one call at
/// a time. Only inside a corun task (`std::logic_error` otherwise); `std::invalid_argument`
/// unless `interval` is positive.
template <class F, class Rep, class Period>
  requires detail::timer_function<std::decay_t<F>>
[[nodiscard("keep the handle: stop the timer with cancel_and_await(handle)")]] join_handle<void>
create_timer(F&& fn, std::chrono::duration<Rep, Period> interval,
             timer_delay_policy policy = timer_delay_policy::accumulate) {
  const std::chrono::nanoseconds period = detail::timer_interval(interval);
  static_cast<void>(detail::current_task_for("corun::create_timer"));
  task<void> driver =
      detail::run_timer<std::decay_t<F>>(std::forward<F>(fn), corun::now(), period, policy);
  return corun::spawn(std::move(driver));
}

/// The same from outside a task (or from a task that wants the timer not to be its child):
/// the timer is a root task of `rt`, its first tick at `rt.now()`. Callable from any thread.
template <class F, class Rep, class Period>
  requires detail::timer_function<std::decay_t<F>>
[[nodiscard("keep the handle: stop the timer with cancel_and_await(handle)")]] join_handle<void>
create_timer(runtime& rt, F&& fn, std::chrono::duration<Rep, Period> interval,
             timer_delay_policy policy = timer_delay_policy::accumulate) {
  const std::chrono::nanoseconds period = detail::timer_interval(interval);
  task<void> driver =
      detail::run_timer<std::decay_t<F>>(std::forward<F>(fn), rt.now(), period, policy);
  return rt.spawn(std::move(driver));
}

}  // namespace corun
