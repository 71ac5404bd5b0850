// Waiting for a task to complete without taking its result (`task_handle::wait`), by any number
// of tasks at once. The join protocol has one waiter slot; these waiters queue in the task's
// extras instead, under the waiter claim protocol (include/corun/detail/waiter.hpp):
//  1. The waiter makes sure the extras exist (it may throw `bad_alloc` there, before
//     suspending), then, unless DONE_WAITERS is set, adds a reference and sets the bit with an
//     RMW. If the RMW shows the bit already set, it drops its extra reference; if it shows
//     DONE, the completer did not see the bit: it drops the reference and does not suspend.
//  2. Under `done_lock`: if the waiters were drained already, it does not suspend; otherwise it
//     queues and arms itself.
//  3. The completer, whose step-3 RMW (task_lifecycle.cpp) saw the bit, drains: under the lock
//     it marks the queue drained and claims every waiter; after unlocking it wakes the claimed
//     ones, then drops the bit's reference. The bit's reference is what keeps the extras alive
//     while it does so, even if every handle is dropped meanwhile.
//  4. A waiter claimed by its cancel takes itself out of the queue under the lock; the handle
//     it waits through keeps the task alive until then.
// Whoever does not suspend sees DONE: by the acquire load or RMW that showed it, or through the
// lock, which the completer released after publishing DONE.
#include "corun/join_handle.hpp"

#include "scheduler/task_extras.hpp"

#include <mutex>

namespace corun::detail {

void drain_done_waiters(task_node& node) noexcept {
  // Acquire: the waiter created the extras before setting the bit, which our RMW read.
  task_extras& extras = *node.m_extras.load(std::memory_order_acquire);
  waiter_queue claimed;
  {
    const std::lock_guard lock(extras.done_lock);
    extras.done_drained = true;
    while (waiter* w = extras.done_waiters.pop_front()) {
      if (try_claim(*w)) {
        claimed.push_back(*w);
      }
    }
  }
  while (waiter* w = claimed.pop_front()) {
    wake(*w);
  }
  release_ref(node);
}

bool done_wait_ready(task_node& node) {
  if (checkpoint_or_ready("task_handle::wait")) {
    return true;  // await_resume throws cancelled
  }
  if (node.done()) {
    return true;
  }
  static_cast<void>(ensure_extras(node));  // step 1; may throw bad_alloc
  return false;
}

bool done_wait_suspend(task_node& node, waiter& w, std::coroutine_handle<> h) noexcept {
  // Acquire: a DONE seen here makes the outcome visible.
  const std::uint32_t state = node.m_state.load(std::memory_order_acquire);
  if ((state & task_node::done_bit) != 0) {
    return false;
  }
  if ((state & task_node::done_waiters_bit) == 0) {
    node.add_ref();
    // acq_rel: release publishes the extras to the completer; acquire sees DONE if it came
    // first (then the outcome too).
    const std::uint32_t prev =
        node.m_state.fetch_or(task_node::done_waiters_bit, std::memory_order_acq_rel);
    if ((prev & (task_node::done_waiters_bit | task_node::done_bit)) != 0) {
      release_ref(node);  // not the last: our handle holds one
      if ((prev & task_node::done_bit) != 0) {
        return false;
      }
    }
  }
  // Acquire: pairs with the ensure_extras in done_wait_ready (same thread) or another's.
  task_extras& extras = *node.m_extras.load(std::memory_order_acquire);
  extras.done_lock.lock();
  if (extras.done_drained) {
    extras.done_lock.unlock();
    return false;
  }
  extras.done_waiters.push_back(w);
  return arm_and_unlock(w, h, wait_kind::join, extras.done_lock);
}

void done_wait_resumed(task_node& node, waiter& w) {
  if (w.task == nullptr) {  // never armed: the task was done, or we are cancelled
    if (!node.done()) {
      throw_cancelled_current();
    }
    return;
  }
  if (!resumed(w)) {
    task_extras& extras = *node.m_extras.load(std::memory_order_acquire);
    {
      const std::lock_guard lock(extras.done_lock);
      extras.done_waiters.remove(w);
    }
    throw_cancelled_current();
  }
}

}  // namespace corun::detail
