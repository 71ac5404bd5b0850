// channel<T> (include/corun/channel.hpp): the non-template half, and the protocol both halves
// follow. It is the claim protocol of include/corun/detail/waiter.hpp applied to two queues.
//
// State, all under the channel's spin lock: a ring buffer of `capacity` items, the queue of
// blocked senders (each holding its item), the queue of blocked receivers (each with an empty
// result slot), and the closed flag with the close error. Invariants: senders wait only while
// the buffer is full, receivers only while it is empty and no sender waits; so at most one of
// the queues holds armed waiters, and serving the queues' fronts keeps the FIFO order.
//
//  1. send: a cancelled task throws `cancelled` (checkpoint, nothing sent). Under the lock: a
//     closed channel makes it throw `channel_closed`; else it claims the first claimable
//     receiver and moves the item into that receiver's slot (only after the claim succeeded),
//     else it appends the item to a non-full buffer, else it links itself to the senders and
//     arms (the item stays in its own awaiter). Claimed receivers are woken after unlocking.
//  2. recv: a cancelled task throws `cancelled` (nothing taken). Under the lock: it takes the
//     oldest buffered item, and then the first claimable sender moves its item into the freed
//     slot; with an empty buffer (capacity 0) it takes the first claimable sender's item
//     directly. Claimed senders get `tag_delivered` and are woken after unlocking. With nothing
//     to take, a closed channel gives the empty optional (or rethrows the close error); an open
//     one links the receiver and arms it.
//  3. A claim that fails means a cancel claimed that waiter first: it is unlinked and skipped,
//     and the item or slot goes to the next waiter. The cancelled waiter, once it runs, removes
//     itself from the queue if it is still linked and throws `cancelled`; it never holds an item
//     (the channel moves one in only after a successful claim) and its own item (a sender's)
//     never left it. This is the asyncio `Queue.put` race of seed 003, closed for good.
//  4. close: under the lock, the first close stores the error and the flag, then claims every
//     waiter of both queues; senders get `tag_closed`. After unlocking it wakes them: senders
//     throw `channel_closed` (their items are destroyed, undelivered), receivers (the buffer
//     was empty) return empty or rethrow the error. Later sends fail at once; receivers drain
//     the buffer first. A waiter its cancel claimed first throws `cancelled` instead.
//  5. Whoever claims a waiter decides its outcome, exactly once: claimed by a sender or
//     receiver, the operation completed (completion beats cancellation: a pending cancel shows
//     at the next suspension point); claimed by close, it failed with `channel_closed` (or the
//     receiver saw the end); claimed by its cancel, it did nothing. Hence an item is received by
//     exactly one receiver or is still in the channel (or in the awaiter of a send that throws).
#include "corun/channel.hpp"

#include <mutex>
#include <utility>

namespace corun {

const char* channel_closed::what() const noexcept { return "corun: send on a closed channel"; }

namespace detail {

bool channel_core::close_with(std::exception_ptr error) noexcept {
  waiter_queue claimed;
  {
    const std::lock_guard lock(m_lock);
    // Relaxed: the flag is only stored under this lock.
    if (m_closed.load(std::memory_order_relaxed)) {
      return false;
    }
    m_error = std::move(error);
    // Release: pairs with the acquire in is_closed(); under the lock for the operations.
    m_closed.store(true, std::memory_order_release);
    for (waiter_queue* queue : {&m_senders, &m_receivers}) {
      while (waiter* w = claim_first(*queue)) {
        w->tag = tag_closed;
        claimed.push_back(*w);
      }
    }
  }
  // The claimed waiters' frames stay alive until they are woken, and only we wake them.
  while (waiter* w = claimed.pop_front()) {
    wake(*w);
  }
  return true;
}

std::size_t channel_core::count_waiting(const waiter_queue& queue) const noexcept {
  const std::lock_guard lock(m_lock);
  std::size_t count = 0;
  for (const waiter* w = queue.front(); w != nullptr; w = w->q_next) {
    // Relaxed: arming and the object's claims happen under this lock; a cancel's claim may race
    // this read, which is then a snapshot either way.
    if (w->m_claim.load(std::memory_order_relaxed) == waiter::claim::armed) {
      ++count;
    }
  }
  return count;
}

void channel_core::rethrow_close_error() const {
  if (m_error) {
    std::rethrow_exception(m_error);
  }
}

void throw_channel_closed() { throw channel_closed(); }

}  // namespace detail
}  // namespace corun
