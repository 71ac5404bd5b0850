// Sleeping on the runtime clock (include/corun/time.hpp), on top of the timer queue and the
// waiter claim protocol: the sleep's waiter is armed under the queue's lock, so the firing
// thread (which takes the entry off the queue under that lock) always finds it armed; the
// timer and a cancel request then race to claim it, and the loser does nothing.
#include "corun/runtime.hpp"
#include "corun/this_task.hpp"
#include "corun/time.hpp"

#include "corun/detail/sleep_wait.hpp"

#include "scheduler/runtime_core.hpp"
#include "time/timer_queue.hpp"

#include <mutex>
#include <new>
#include <stdexcept>

namespace corun {

namespace detail {

runtime_core& current_runtime(const char* what) { return *this_task::detail::current(what).m_rt; }

clock_time runtime_now(const runtime_core& rt) noexcept {
  return const_cast<runtime_core&>(rt).timers().now();
}

void arm_timer(runtime_core& rt, timer_entry& e, clock_time deadline) {
  e.rt = &rt;
  if (rt.timers().arm(e, deadline)) {
    rt.timers_changed();
  }
}

bool disarm_timer(timer_entry& e) noexcept {
  if (e.rt == nullptr) {
    return false;  // never armed
  }
  return e.rt->timers().disarm(e);
}

time_point deadline_after(std::chrono::nanoseconds d) {
  const time_point start = current_runtime("sleep_for").timers().now();
  if (d <= std::chrono::nanoseconds::zero()) {
    return start;
  }
  // `d` is at most `longest_wait` (clamp_wait), far from the clock's range.
  return start + d;
}

void sleep_wait::fire_sleep(timer_entry& e) noexcept {
  auto& self = static_cast<sleep_wait&>(e);
  if (try_claim(self.m_waiter)) {
    wake(self.m_waiter);
  }
}

bool sleep_elapsed(clock_time deadline) {
  return current_runtime("sleep_until/sleep_for").timers().now() >= deadline;
}

bool sleep_suspend(sleep_wait& s, clock_time deadline, std::coroutine_handle<> h) noexcept {
  // Locals only past the arming: the frame holding `s` may be gone once it returned true.
  runtime_core& rt = *tl_thread.current->m_rt;
  timer_queue& timers = rt.timers();
  s.rt = &rt;
  timers.lock().lock();
  bool earliest = false;
  try {
    earliest = timers.arm_locked(s, deadline);
  } catch (const std::bad_alloc&) {
    timers.lock().unlock();
    s.rt = nullptr;
    s.m_no_memory = true;
    return false;
  }
  const bool suspended = arm_and_unlock(s.m_waiter, h, wait_kind::sleep, timers.lock());
  if (earliest) {
    rt.timers_changed();
  }
  return suspended;
}

void sleep_resumed(sleep_wait& s) {
  if (s.m_no_memory) {
    throw std::bad_alloc();
  }
  const bool by_timer = resumed(s.m_waiter);
  // Fired or not, the queue must be done with the entry before the frame may go.
  disarm_timer(s);
  if (!by_timer) {
    throw_cancelled_current();
  }
}

}  // namespace detail

time_point now() { return detail::current_runtime("corun::now").timers().now(); }

}  // namespace corun
