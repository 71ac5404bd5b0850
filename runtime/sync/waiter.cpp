// The claim protocol of suspended waiters (include/corun/detail/waiter.hpp).
//
// Exactly one of the object and the cancel request moves a waiter out of `none`/`armed`, with
// a CAS, so a result can never be both delivered and lost:
//  - the object claims only armed waiters, under its lock (arming happens under that lock);
//  - the cancel callback claims from either state, and schedules the task only if it was armed:
//    a waiter that is not armed belongs to a task still inside `await_suspend`, which will see
//    the claim when it tries to arm and then not suspend.
#include "corun/detail/waiter.hpp"

#include "corun/this_task.hpp"

#include "corun/detail/spin_lock.hpp"

#include "scheduler/runtime_core.hpp"
#include "trace/task_tracker.hpp"

namespace corun::detail {

void waiter::fire(cancel_registration& r) noexcept {
  auto& self = static_cast<waiter&>(r);
  // Relaxed: the request was published (seq_cst) before this callback ran, and the task reads
  // the claim after `deregister_cancel` took the shard lock we hold.
  waiter::claim state = self.m_claim.load(std::memory_order_relaxed);
  while (state == claim::none || state == claim::armed) {
    if (self.m_claim.compare_exchange_weak(state, claim::cancel, std::memory_order_relaxed,
                                           std::memory_order_relaxed)) {
      if (state == claim::armed) {
        task_node& task = *self.task;
        task.m_resume = self.handle;
        task.m_rt->schedule_nothrow(task);
      }
      return;
    }
  }
}

bool checkpoint_or_ready(const char* what) {
  return cancel_requested(this_task::detail::current(what));
}

bool arm_and_unlock(waiter& w, std::coroutine_handle<> h, wait_kind kind,
                    spin_lock& lock) noexcept {
  task_node& self = *tl_thread.current;
  leave_stack(self);  // a joiner running us inline must not wait for us through this suspension
  if (CORUN_UNLIKELY(self.m_rt->tracker() != nullptr)) {
    // Relaxed: read racily by dumps.
    self.m_wait.store(static_cast<std::uint8_t>(kind), std::memory_order_relaxed);
  }
  w.task = &self;
  w.handle = h;
  w.scope = &self;
  if (!register_cancel(w)) {
    // Relaxed: nobody else can see the waiter claimed or not yet (we hold the object's lock,
    // and the cancel wake-up never got registered).
    w.m_claim.store(waiter::claim::cancel, std::memory_order_relaxed);
    lock.unlock();
    return false;
  }
  waiter::claim expected = waiter::claim::none;
  // Relaxed: the cancel callback that may race us runs under the shard lock, which
  // `deregister_cancel` takes before the task reads the claim again.
  const bool armed = w.m_claim.compare_exchange_strong(
      expected, waiter::claim::armed, std::memory_order_relaxed, std::memory_order_relaxed);
  lock.unlock();
  return armed;
}

void wake(waiter& w) noexcept {
  task_node& task = *w.task;
  task.m_resume = w.handle;
  task.m_rt->schedule_nothrow(task);
}

bool resumed(waiter& w) noexcept {
  deregister_cancel(w);
  clear_wait(*tl_thread.current);
  // Relaxed: the claimer's writes reach us through the run queue (object) or the shard lock
  // taken by deregister_cancel (cancel).
  return w.m_claim.load(std::memory_order_relaxed) == waiter::claim::object;
}

void throw_cancelled_current() { throw_cancelled(*tl_thread.current); }

}  // namespace corun::detail
