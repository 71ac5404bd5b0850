// async_semaphore (include/corun/async_semaphore.hpp): the waiter claim protocol of
// include/corun/detail/waiter.hpp applied to units that are handed over, never re-contended.
//
//  1. Acquire, fast path (`await_ready`): a cancelled task stops at `checkpoint_or_ready`; else
//     a CAS takes a unit if UNITS > 0. While waiters are queued UNITS is 0, so a newcomer cannot
//     barge past them.
//  2. Acquire, slow path (`await_suspend`), under the spin lock: take a unit if one became
//     available; else set WAITERS (a release's fast path now fails and takes the spin lock),
//     queue the waiter at the back and end with `arm_and_unlock`.
//  3. Release, fast path: while WAITERS is clear, a CAS adds the units.
//  4. Release, slow path, under the spin lock: if WAITERS was cleared meanwhile (step 5), add the
//     units as in step 3. Else pop waiters from the front and claim (`try_claim`) one per unit.
//     A waiter whose claim fails was claimed by its cancel: it will only take itself out of the
//     queue (already done by the pop) and throw, so its unit passes on to the next one. Units
//     left once the queue is empty become UNITS (and WAITERS is cleared); WAITERS is also
//     cleared when every unit found a waiter and the queue emptied. The claimed waiters hold a
//     unit each and are woken after the spin lock is released.
//  5. A waiter resumed by its cancel (`resumed()` false) takes itself out of the queue under the
//     spin lock, clears WAITERS if the queue became empty (so that releases are fast ones
//     again), and throws `cancelled`. It never held a unit.
//
// The frame of a queued waiter stays alive while the spin lock is held: its task, resumed by a
// cancel, must take the spin lock before it can leave. A claimed waiter's frame stays alive until
// `wake()`, which only the releaser calls.
#include "corun/async_semaphore.hpp"

namespace corun {

bool async_semaphore::acquire_awaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  async_semaphore& s = *m_semaphore;
  s.m_lock.lock();
  // Relaxed: under the spin lock; the CASes below say why they order what they order.
  std::size_t state = s.m_state.load(std::memory_order_relaxed);
  for (;;) {
    if (state >= one_unit) {
      // Acquire: as in try_acquire.
      if (s.m_state.compare_exchange_weak(state, state - one_unit, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        s.m_lock.unlock();
        return false;
      }
    } else if (state == 0) {
      // Release: a releaser whose CAS fails on this value (acquire) then takes the spin lock
      // after we took it, so it finds us queued.
      if (s.m_state.compare_exchange_weak(state, waiters_bit, std::memory_order_release,
                                          std::memory_order_relaxed)) {
        break;
      }
    } else {
      break;  // WAITERS set: only spin lock holders change the word, and we hold it
    }
  }
  s.m_waiters.push_back(m_waiter);
  m_suspended = true;
  return detail::arm_and_unlock(m_waiter, h, detail::wait_kind::lock, s.m_lock);
}

void async_semaphore::acquire_awaiter::leave_queue_and_throw() {
  async_semaphore& s = *m_semaphore;
  {
    const std::lock_guard lock(s.m_lock);
    s.m_waiters.remove(m_waiter);
    // Relaxed: WAITERS changes only under the spin lock, and with no unit moving there is
    // nothing to publish; a later release's CAS orders its own writes.
    if (s.m_waiters.empty() && s.m_state.load(std::memory_order_relaxed) == waiters_bit) {
      s.m_state.store(0, std::memory_order_relaxed);
    }
  }
  detail::throw_cancelled_current();
}

void async_semaphore::release_slow(std::size_t n) noexcept {
  detail::waiter_queue claimed;
  {
    const std::lock_guard lock(m_lock);
    // Relaxed: under the spin lock, which ordered the last change of WAITERS before us.
    if ((m_state.load(std::memory_order_relaxed) & waiters_bit) == 0) {
      // Step 5 emptied the queue meanwhile, and the word is open to fast paths again.
      // Release: as in release's fast path.
      m_state.fetch_add(n * one_unit, std::memory_order_release);
      return;
    }
    std::size_t left = n;
    while (left > 0) {
      detail::waiter* w = m_waiters.pop_front();
      if (w == nullptr) {
        break;
      }
      if (detail::try_claim(*w)) {
        claimed.push_back(*w);
        --left;
      }
    }
    if (left > 0) {
      // The queue is empty: the rest become available and WAITERS is cleared. Release: a taker
      // (acquire) sees what this releaser wrote.
      m_state.store(left * one_unit, std::memory_order_release);
    } else if (m_waiters.empty()) {
      // Relaxed: no unit becomes available; the claimed waiters read theirs after `wake()`.
      m_state.store(0, std::memory_order_relaxed);
    }
  }
  // The claimed waiters' frames stay alive until they are woken, and only we wake them.
  while (detail::waiter* w = claimed.pop_front()) {
    detail::wake(*w);
  }
}

}  // namespace corun
