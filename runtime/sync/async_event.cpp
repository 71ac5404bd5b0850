// async_event (include/corun/async_event.hpp). Setting takes the whole wait queue under the
// lock, claims each waiter (a cancelled one is simply dropped: it removes nothing, as it is
// already unlinked) and wakes the claimed ones after unlocking, so no task is scheduled while
// the lock is held.
#include "corun/async_event.hpp"

namespace corun {

void async_event::set() noexcept {
  detail::waiter_queue claimed;
  {
    const std::lock_guard lock(m_lock);
    // Release: pairs with the acquire in is_set(); under the lock for the waiters' recheck.
    m_set.store(true, std::memory_order_release);
    while (detail::waiter* w = m_waiters.pop_front()) {
      if (detail::try_claim(*w)) {
        claimed.push_back(*w);
      }
    }
  }
  // The claimed waiters' frames stay alive until they are woken, and only we wake them.
  while (detail::waiter* w = claimed.pop_front()) {
    detail::wake(*w);
  }
}

}  // namespace corun
