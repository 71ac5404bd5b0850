/// \file
/// `deadline_timer`: cancels a task, with provenance "deadline", when a deadline passes (the
/// engine of `timeout`, `move_on_after` and `create_timer`'s `cancel` policy).
#pragma once

#include "corun/join_handle.hpp"

#include "corun/detail/timer_entry.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

namespace corun::detail {

/// Armed on construction, disarmed by `disarm` or the destructor.
///
/// The target may be attached after arming (`attach`). Arming first is what makes a deadline
/// win a tie: timers that come due at the same instant fire in arming order, so a deadline
/// armed before its target task exists fires before any timer that task (or its children)
/// arms for the same instant, on any worker count.
///
/// THREAD SAFETY: the owner (the task that made it) calls everything; the fire function runs
/// on whichever worker found the deadline due, and `m_stage` settles who cancels the target
/// when the deadline passes before `attach`.
class deadline_timer : timer_entry {
 public:
  /// Arms the timer on the running task's runtime; `limit` is what the cancel message names.
  /// May throw (`std::bad_alloc`, `std::logic_error` outside a task); then nothing is armed.
  deadline_timer(clock_time when, std::chrono::nanoseconds limit);
  /// The same, with the target attached at once.
  deadline_timer(task_handle target, clock_time when, std::chrono::nanoseconds limit);
  deadline_timer(const deadline_timer&) = delete;
  deadline_timer& operator=(const deadline_timer&) = delete;
  ~deadline_timer() { disarm(); }

  /// Names the task to cancel; at most once. If the deadline already passed, cancels it now.
  void attach(task_handle target) noexcept;
  /// Stops the timer; afterwards it no longer touches the target. Idempotent.
  void disarm() noexcept;
  /// True once the deadline passed and the target was asked to cancel (stable after `disarm`).
  [[nodiscard]] bool fired() const noexcept { return m_fired; }

 private:
  /// `waiting` -> `attached` (by `attach`) or `waiting` -> `passed` (by the fire function, when
  /// the deadline comes before the target; `attach` then cancels it).
  enum class stage : std::uint8_t { waiting, attached, passed };

  static void fire_deadline(timer_entry& e) noexcept;
  void cancel_target() noexcept;

  task_handle m_target;
  std::chrono::nanoseconds m_limit;
  std::atomic<stage> m_stage{stage::waiting};
  bool m_fired = false;
  bool m_armed = false;
};

}  // namespace corun::detail
