// async_mutex (include/corun/async_mutex.hpp): the waiter claim protocol of
// include/corun/detail/waiter.hpp applied to a lock that is handed over, never re-contended.
//
//  1. Lock, fast path (`await_ready`): a cancelled task stops at `checkpoint_or_ready`; else one
//     CAS `unlocked -> locked` takes a free lock. It fails whenever waiters are queued, as their
//     state is `locked_waiters`: a newcomer cannot barge past them.
//  2. Lock, slow path (`await_suspend`), under the spin lock: take the lock if it became free;
//     else move the state to `locked_waiters` (a holder's uncontended unlock now fails and takes
//     the spin lock), queue the waiter at the back and end with `arm_and_unlock`.
//  3. Unlock, fast path: one CAS `locked -> unlocked`. It fails on `locked_waiters`.
//  4. Unlock, slow path, under the spin lock: pop waiters from the front until one is claimed
//     (`try_claim`). A waiter whose claim fails was claimed by its cancel: it will only take
//     itself out of the queue (already done by the pop) and throw, so the hand-off passes on to
//     the next one. The claimed waiter now holds the lock (the state stays `locked` or
//     `locked_waiters`, by whether others still wait); it is woken after the spin lock is
//     released. If nobody could be claimed, the state becomes `unlocked`.
//  5. A waiter resumed by its cancel (`resumed()` false) takes itself out of the queue under the
//     spin lock, moves `locked_waiters` back to `locked` if the queue became empty (so that the
//     holder's unlock is a fast one again), and throws `cancelled`. It never held the lock.
//
// The frame of a queued waiter stays alive while the spin lock is held: its task, resumed by a
// cancel, must take the spin lock before it can leave. A claimed waiter's frame stays alive until
// `wake()`, which only the unlocker calls.
#include "corun/async_mutex.hpp"

#include <stdexcept>

namespace corun {

bool async_mutex::lock_awaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  async_mutex& m = *m_mutex;
  m.m_lock.lock();
  // Relaxed: under the spin lock; the CASes below say why they order what they order.
  std::uint8_t state = m.m_state.load(std::memory_order_relaxed);
  for (;;) {
    if (state == unlocked) {
      // Acquire: as in try_lock (the last holder freed it with a release).
      if (m.m_state.compare_exchange_weak(state, locked, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        m.m_lock.unlock();
        return false;
      }
    } else if (state == locked) {
      // Release: a holder whose unlock CAS fails on this value (acquire) then takes the spin
      // lock after we took it, so it finds us queued.
      if (m.m_state.compare_exchange_weak(state, locked_waiters, std::memory_order_release,
                                          std::memory_order_relaxed)) {
        break;
      }
    } else {
      break;  // locked_waiters: only spin lock holders change it, and we hold it
    }
  }
  m.m_waiters.push_back(m_waiter);
  m_suspended = true;
  return detail::arm_and_unlock(m_waiter, h, detail::wait_kind::lock, m.m_lock);
}

void async_mutex::lock_awaiter::leave_queue_and_throw() {
  async_mutex& m = *m_mutex;
  {
    const std::lock_guard lock(m.m_lock);
    m.m_waiters.remove(m_waiter);
    // Relaxed: `locked_waiters` changes only under the spin lock; a holder that sees `locked`
    // next has nobody to hand over to, and its uncontended unlock publishes its own writes.
    if (m.m_waiters.empty() && m.m_state.load(std::memory_order_relaxed) == locked_waiters) {
      m.m_state.store(locked, std::memory_order_relaxed);
    }
  }
  detail::throw_cancelled_current();
}

void async_mutex::unlock_slow() noexcept {
  detail::waiter* next = nullptr;
  {
    const std::lock_guard lock(m_lock);
    while (detail::waiter* w = m_waiters.pop_front()) {
      if (detail::try_claim(*w)) {
        next = w;
        break;
      }
    }
    if (next == nullptr) {
      // Release: the next holder (try_lock's acquire) sees what this holder wrote.
      m_state.store(unlocked, std::memory_order_release);
    } else if (m_waiters.empty()) {
      // Relaxed: the new holder reads it after `wake()`, through the run queue.
      m_state.store(locked, std::memory_order_relaxed);
    }
  }
  if (next != nullptr) {
    detail::wake(*next);
  }
}

void async_mutex::throw_not_locked() {
  throw std::logic_error("async_mutex::unlock: the mutex is not locked");
}

}  // namespace corun
