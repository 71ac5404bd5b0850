// deadline_timer (include/corun/detail/deadline_timer.hpp): a timer entry whose firing asks
// the target task to cancel, with provenance "deadline". The timer queue runs the fire
// function outside its lock and `disarm` waits for it, so the target (kept alive by the
// handle) is never touched after disarming.
#include "corun/detail/deadline_timer.hpp"

#include "scheduler/runtime_core.hpp"
#include "time/timer_queue.hpp"

#include <cstdint>
#include <string>

namespace corun::detail {

deadline_timer::deadline_timer(task_handle target, clock_time when, std::chrono::nanoseconds limit)
    : timer_entry(&fire_deadline), m_target(std::move(target)), m_limit(limit) {
  arm_timer(current_runtime("timeout/move_on_after"), *this, when);
  m_armed = true;
}

void deadline_timer::disarm() noexcept {
  if (m_armed) {
    m_armed = false;
    disarm_timer(*this);
  }
}

void deadline_timer::fire_deadline(timer_entry& e) noexcept {
  auto& self = static_cast<deadline_timer&>(e);
  // Read by the owner only after `disarm` waited for this function (timer_queue.cpp, step 3).
  self.m_fired = true;
  task_node& target = self.m_target.node();
  try {
    const std::int64_t ns = self.m_limit.count();
    std::string message = "timed out after ";
    if (ns % 1'000'000 == 0) {
      message += std::to_string(ns / 1'000'000) + " ms";
    } else if (ns % 1'000 == 0) {
      message += std::to_string(ns / 1'000) + " us";
    } else {
      message += std::to_string(ns) + " ns";
    }
    target.request_cancel(std::move(message), cancel_origin::deadline);
  } catch (...) {
    target.request_cancel_nothrow("timed out", cancel_origin::deadline);
  }
}

}  // namespace corun::detail
