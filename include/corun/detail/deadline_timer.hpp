/// \file
/// `deadline_timer`: cancels a task, with provenance "deadline", when a deadline passes (the
/// engine of `timeout` and `move_on_after`).
#pragma once

#include "corun/join_handle.hpp"

#include "corun/detail/timer_entry.hpp"

#include <chrono>

namespace corun::detail {

class deadline_timer : timer_entry {
 public:
  /// Arms the timer on the running task's runtime; `limit` is what the cancel message names.
  /// May throw (`std::bad_alloc`, `std::logic_error` outside a task); then nothing is armed.
  deadline_timer(task_handle target, clock_time when, std::chrono::nanoseconds limit);
  deadline_timer(const deadline_timer&) = delete;
  deadline_timer& operator=(const deadline_timer&) = delete;
  ~deadline_timer() { disarm(); }

  /// Stops the timer; afterwards it no longer touches the target. Idempotent.
  void disarm() noexcept;
  /// True once the deadline passed and the target was asked to cancel (stable after `disarm`).
  [[nodiscard]] bool fired() const noexcept { return m_fired; }

 private:
  static void fire_deadline(timer_entry& e) noexcept;

  task_handle m_target;
  std::chrono::nanoseconds m_limit;
  bool m_fired = false;
  bool m_armed = false;
};

}  // namespace corun::detail
