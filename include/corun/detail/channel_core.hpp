/// \file
/// `channel_core`: the part of `channel<T>` that does not depend on `T` (the lock, the two wait
/// queues, the closed state and `close()`), compiled once in runtime/sync/channel.cpp. The
/// protocol both halves follow is written at the top of that file.
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/waiter.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>

namespace corun::detail {

/// Holds what a channel's operations share, whatever its item type. Every member but
/// `m_closed` (an atomic, so that `is_closed()` needs no lock) and `m_capacity` (constant) is
/// guarded by `m_lock`.
class channel_core {
 public:
  explicit channel_core(std::size_t capacity) noexcept : m_capacity(capacity) {}
  channel_core(const channel_core&) = delete;
  channel_core& operator=(const channel_core&) = delete;
  ~channel_core() = default;

 protected:
  /// What the channel wrote into `waiter::tag` of a sender's waiter it claimed.
  static constexpr std::uint8_t tag_delivered = 1;  // a receiver took the item
  static constexpr std::uint8_t tag_closed = 2;     // `close()` claimed it: the item stays

  /// Under the lock: unlinks waiters from the front of `queue` until one can be claimed
  /// (waiter.hpp, step 3) and returns it, or null. A waiter whose claim fails was claimed by
  /// its cancel: it is dropped here (it will find itself unlinked), and the item or slot it was
  /// offered goes to the next one instead. Wake the returned waiter after unlocking.
  [[nodiscard]] static waiter* claim_first(waiter_queue& queue) noexcept {
    while (waiter* w = queue.pop_front()) {
      if (try_claim(*w)) {
        return w;
      }
    }
    return nullptr;
  }

  /// Closes the channel with `error` (null: a plain close) and claims and wakes every waiter,
  /// senders with `tag_closed`. False (and nothing changes) if it was already closed.
  bool close_with(std::exception_ptr error) noexcept;
  /// The number of armed waiters of `queue` (those a cancel has not claimed yet).
  [[nodiscard]] std::size_t count_waiting(const waiter_queue& queue) const noexcept;
  /// For a receiver that found the channel closed and drained: rethrows the close error, if
  /// `close(std::exception_ptr)` gave one. Reads `m_error` without the lock: it is written once,
  /// before `m_closed`, and the caller saw the channel closed under the lock or was woken by the
  /// close (the run queue orders the write before its resumption).
  void rethrow_close_error() const;

  mutable spin_lock m_lock;
  waiter_queue m_senders;    // tasks blocked in send: the buffer is full
  waiter_queue m_receivers;  // tasks blocked in recv: the buffer is empty
  std::size_t m_size = 0;    // buffered items
  const std::size_t m_capacity;
  std::atomic<bool> m_closed{false};
  std::exception_ptr m_error;  // written once by the first close, before m_closed
};

/// Throws `corun::channel_closed` (out of line: the awaiters stay small).
[[noreturn]] void throw_channel_closed();

}  // namespace corun::detail
