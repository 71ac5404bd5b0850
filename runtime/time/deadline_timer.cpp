// deadline_timer (include/corun/detail/deadline_timer.hpp): a timer entry whose firing asks
// the target task to cancel, with provenance "deadline".
//
//  1. The constructor arms the entry; the target may come later (`attach`), so that the
//     deadline is armed before anything its target arms (ties fire in arming order).
//  2. Firing and attaching race on `m_stage`, one CAS each from `waiting`: if `attach` wins, the
//     fire function cancels the target; if the fire function wins (the deadline passed before
//     the target was attached), `attach` cancels it.
//  3. The timer queue runs the fire function outside its lock and `disarm` waits for it, so the
//     target (kept alive by the handle) is never touched after disarming.
#include "corun/detail/deadline_timer.hpp"

#include "scheduler/runtime_core.hpp"
#include "time/timer_queue.hpp"

#include <cassert>
#include <cstdint>
#include <string>
#include <utility>

namespace corun::detail {

deadline_timer::deadline_timer(clock_time when, std::chrono::nanoseconds limit)
    : timer_entry(&fire_deadline), m_limit(limit) {
  arm_timer(current_runtime("timeout/move_on_after"), *this, when);
  m_armed = true;
}

deadline_timer::deadline_timer(task_handle target, clock_time when, std::chrono::nanoseconds limit)
    : deadline_timer(when, limit) {
  attach(std::move(target));
}

void deadline_timer::attach(task_handle target) noexcept {
  m_target = std::move(target);
  stage expected = stage::waiting;
  // acq_rel: release publishes `m_target` to the fire function; acquire (on failure) pairs
  // with its release, so `m_fired` is settled when we cancel in its place.
  if (!m_stage.compare_exchange_strong(expected, stage::attached, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
    cancel_target();
  }
}

void deadline_timer::disarm() noexcept {
  if (m_armed) {
    m_armed = false;
    disarm_timer(*this);
  }
}

void deadline_timer::fire_deadline(timer_entry& e) noexcept {
  auto& self = static_cast<deadline_timer&>(e);
  // Read by the owner only after `disarm` waited for this function (timer_queue.cpp, step 3),
  // or after `attach` saw `passed` (acquire).
  self.m_fired = true;
  stage expected = stage::waiting;
  // acq_rel: see `attach`.
  if (self.m_stage.compare_exchange_strong(expected, stage::passed, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
    return;  // step 2: `attach` cancels the target
  }
  self.cancel_target();
}

void deadline_timer::cancel_target() noexcept {
  // The handle's own accessor throws on an empty handle; every caller attaches a spawned task,
  // so an empty one can only be a bug here: nothing to cancel.
  assert(m_target.m_node != nullptr);
  if (m_target.m_node == nullptr) {
    return;
  }
  task_node& target = *m_target.m_node;
  try {
    const std::int64_t ns = m_limit.count();
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
