/// \file
/// `channel<T>`: a bounded multi-producer multi-consumer queue between tasks (Go's channels,
/// asyncio.Queue, trio's memory channels, tokio's mpsc), with `channel_closed` and
/// `try_send_result`. Capacity 0 makes it a rendezvous channel.
#pragma once

#include "corun/detail/channel_core.hpp"
#include "corun/detail/spin_lock.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/waiter.hpp"

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

namespace corun {

/// Thrown by `co_await ch.send(v)` when the channel is closed: it was closed before the send,
/// or while the send waited for room. The item was not delivered.
class channel_closed : public std::exception {
 public:
  [[nodiscard]] const char* what() const noexcept override;
};

/// What `channel<T>::try_send` did.
enum class [[nodiscard]] try_send_result : std::uint8_t {
  sent,    ///< a receiver or the buffer took the item
  full,    ///< no room (for capacity 0: no receiver waiting); the item is untouched
  closed,  ///< the channel is closed; the item is untouched
};

/// A bounded FIFO queue that tasks send items to and receive them from, any number of each.
///
/// - `channel<T> ch(n)`: room for `n` items. A send waits while the buffer is full, a receive
///   while it is empty. `n == 0` is a rendezvous channel (Go's unbuffered channel): a send waits
///   until a receiver takes the item from it, and returns only then.
/// - Items are handed over directly: a send that finds a waiting receiver gives it the item, and
///   a receive that frees a slot of a full buffer moves the first waiting sender's item in and
///   wakes that sender. Waiters are served in FIFO order; nobody overtakes a waiter.
/// - `close()` ends sending: waiting and later sends throw `channel_closed`. Items already in
///   the channel are still received; then `recv` returns an empty optional, or rethrows the
///   error given to `close(std::exception_ptr)` (every such `recv`, to every receiver).
///
/// Cancellation (corun's rule "completion beats cancellation", API.md section 2): `send` and
/// `recv` are suspension points. A task already cancelled throws `corun::cancelled` from them
/// without sending or receiving. A waiting task is woken by whichever comes first:
/// - the channel: a receiver took the send's item, a sender gave the recv one, or `close()`
///   ended the wait. The operation ends as if no cancel had come: it returns, or after a close
///   the send throws `channel_closed` (its item undelivered) and the recv returns empty (or
///   rethrows the close error). The cancel shows at the task's next suspension point.
/// - its cancel: it throws `cancelled`. A cancelled send delivered nothing (its item was
///   destroyed with it), a cancelled recv took nothing, and the slot or item the channel would
///   have offered it goes to the next waiter (the asyncio `Queue.put` race cannot lose it).
/// So an item is either returned by exactly one `recv` (or `try_recv`) or still in the channel,
/// and a send that returned delivered its item while one that threw did not.
///
/// Thread safety: every member may be called concurrently; `send` and `recv` only inside corun
/// tasks, the others from any thread. Lifetime: the channel must outlive every `send` and `recv`
/// on it, until they returned: a task waiting there points at it, and a receiver woken by
/// `close()` still reads the close error from it. Items still buffered are destroyed with it.
///
/// `T` must be nothrow-move-constructible: items are moved while the channel's lock is held, and
/// a move that threw halfway could neither deliver nor keep the item. It may be move-only.
template <class T>
class channel : private detail::channel_core {
  static_assert(std::is_object_v<T> && !std::is_array_v<T>,
                "corun::channel<T>: T must be an object type (not a reference or an array)");
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "corun::channel<T>: T's move constructor and destructor must be noexcept; items "
                "are moved under the channel's lock, where a throw would lose them");

  /// A blocked sender: its item waits here until a receiver claims the waiter and takes it.
  struct send_node : detail::waiter {
    explicit send_node(T&& value) noexcept : item(std::move(value)) {}
    T item;
  };
  /// A blocked receiver: a sender that claims it moves its item in; `close()` leaves it empty.
  struct recv_node : detail::waiter {
    std::optional<T> item;
  };

 public:
  /// A channel with room for `capacity` items (0: rendezvous). The buffer is allocated here, at
  /// once (throws `std::bad_alloc`); later operations never allocate.
  explicit channel(std::size_t capacity)
      : detail::channel_core(capacity),
        m_slots(capacity > 0 ? std::make_unique<std::optional<T>[]>(capacity) : nullptr) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel() = default;

  /// Awaitable of `send`: holds the item until it is delivered.
  class [[nodiscard("co_await the send; it sends nothing until awaited")]] send_awaiter {
   public:
    send_awaiter(channel& ch, T&& item) noexcept : m_channel(&ch), m_node(std::move(item)) {}
    send_awaiter(const send_awaiter&) = delete;
    send_awaiter& operator=(const send_awaiter&) = delete;
    ~send_awaiter() = default;

    [[nodiscard]] bool await_ready() {
      m_outcome =
          detail::checkpoint_or_ready("channel::send") ? outcome::cancelled : outcome::pending;
      return m_outcome == outcome::cancelled;
    }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
      channel& ch = *m_channel;
      ch.m_lock.lock();
      // Relaxed: close() stores the flag under this lock.
      if (ch.m_closed.load(std::memory_order_relaxed)) {
        ch.m_lock.unlock();
        m_outcome = outcome::closed;
        return false;
      }
      detail::waiter* receiver = nullptr;
      if (ch.give_locked(m_node.item, receiver)) {
        ch.m_lock.unlock();
        if (receiver != nullptr) {
          detail::wake(*receiver);
        }
        m_outcome = outcome::sent;
        return false;
      }
      ch.m_senders.push_back(m_node);
      m_outcome = outcome::waiting;
      // The last thing: once armed, the task may run on another worker.
      return detail::arm_and_unlock(m_node, h, detail::wait_kind::channel, ch.m_lock);
    }
    void await_resume() {
      switch (m_outcome) {
        case outcome::sent:
          return;
        case outcome::closed:
          detail::throw_channel_closed();
        case outcome::waiting:
          break;
        case outcome::pending:
        case outcome::cancelled:
          detail::throw_cancelled_current();
      }
      if (!detail::resumed(m_node)) {
        // Claimed by the cancel: the item was not delivered; leave the queue if still in it.
        {
          const std::lock_guard lock(m_channel->m_lock);
          m_channel->m_senders.remove(m_node);
        }
        detail::throw_cancelled_current();
      }
      if (m_node.tag == tag_closed) {
        detail::throw_channel_closed();
      }
    }

   private:
    enum class outcome : std::uint8_t { pending, cancelled, sent, closed, waiting };
    channel* m_channel;
    send_node m_node;
    outcome m_outcome = outcome::pending;
  };

  /// Awaitable of `recv`.
  class [[nodiscard("co_await the recv; it receives nothing until awaited")]] recv_awaiter {
   public:
    explicit recv_awaiter(channel& ch) noexcept : m_channel(&ch) {}
    recv_awaiter(const recv_awaiter&) = delete;
    recv_awaiter& operator=(const recv_awaiter&) = delete;
    ~recv_awaiter() = default;

    [[nodiscard]] bool await_ready() {
      m_outcome =
          detail::checkpoint_or_ready("channel::recv") ? outcome::cancelled : outcome::pending;
      return m_outcome == outcome::cancelled;
    }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
      channel& ch = *m_channel;
      ch.m_lock.lock();
      detail::waiter* sender = ch.take_locked(m_node.item);
      // Relaxed: close() stores the flag under this lock.
      if (!m_node.item.has_value() && !ch.m_closed.load(std::memory_order_relaxed)) {
        ch.m_receivers.push_back(m_node);
        m_outcome = outcome::waiting;
        // The last thing: once armed, the task may run on another worker.
        return detail::arm_and_unlock(m_node, h, detail::wait_kind::channel, ch.m_lock);
      }
      ch.m_lock.unlock();
      if (sender != nullptr) {
        detail::wake(*sender);
      }
      m_outcome = outcome::done;
      return false;
    }
    std::optional<T> await_resume() {
      switch (m_outcome) {
        case outcome::done:
          break;
        case outcome::waiting:
          if (!detail::resumed(m_node)) {
            // Claimed by the cancel: nothing was taken; leave the queue if still in it.
            {
              const std::lock_guard lock(m_channel->m_lock);
              m_channel->m_receivers.remove(m_node);
            }
            detail::throw_cancelled_current();
          }
          break;
        case outcome::pending:
        case outcome::cancelled:
          detail::throw_cancelled_current();
      }
      if (!m_node.item.has_value()) {
        m_channel->rethrow_close_error();  // closed and drained
      }
      return std::move(m_node.item);
    }

   private:
    enum class outcome : std::uint8_t { pending, cancelled, done, waiting };
    channel* m_channel;
    recv_node m_node;
    outcome m_outcome = outcome::pending;
  };

  /// `co_await ch.send(item)`: delivers `item`, waiting while the channel is full (for capacity
  /// 0: until a receiver takes it). Throws `channel_closed` if the channel is or gets closed
  /// first, `corun::cancelled` if the task is cancelled first; in both cases the item was not
  /// delivered and is destroyed. A suspension point; only inside a corun task.
  [[nodiscard]] send_awaiter send(T item) noexcept { return send_awaiter(*this, std::move(item)); }

  /// `co_await ch.recv()`: the oldest item, waiting while the channel is empty. Once the
  /// channel is closed and drained: an empty optional, or the error given to
  /// `close(std::exception_ptr)` is rethrown. Throws `corun::cancelled` (having taken nothing)
  /// if the task is cancelled first. A suspension point; only inside a corun task.
  [[nodiscard]] recv_awaiter recv() noexcept { return recv_awaiter(*this); }

  /// Sends without waiting: `sent` if a waiting receiver or a free slot took `item` (it was
  /// moved from), `full` or `closed` otherwise (it is untouched, so it can be sent again). Not a
  /// suspension point: it does not look at cancellation. Callable from any thread.
  try_send_result try_send(T&& item) noexcept {
    detail::waiter* receiver = nullptr;
    {
      const std::lock_guard lock(m_lock);
      // Relaxed: close() stores the flag under this lock.
      if (m_closed.load(std::memory_order_relaxed)) {
        return try_send_result::closed;
      }
      if (!give_locked(item, receiver)) {
        return try_send_result::full;
      }
    }
    if (receiver != nullptr) {
      detail::wake(*receiver);
    }
    return try_send_result::sent;
  }
  /// The same with a copy of `item` (made before looking at the channel, also when full).
  try_send_result try_send(const T& item)
    requires std::copy_constructible<T>
  {
    T copy(item);
    return try_send(std::move(copy));
  }

  /// Receives without waiting: the oldest item, or an empty optional if there is none now (for
  /// capacity 0: no sender waiting). Once the channel is closed and drained it behaves as
  /// `recv`: empty, or it rethrows the close error. Not a suspension point: it does not look at
  /// cancellation. Callable from any thread.
  [[nodiscard]] std::optional<T> try_recv() {
    std::optional<T> item;
    detail::waiter* sender = nullptr;
    bool drained = false;
    {
      const std::lock_guard lock(m_lock);
      sender = take_locked(item);
      // Relaxed: close() stores the flag under this lock.
      drained = !item.has_value() && m_closed.load(std::memory_order_relaxed);
    }
    if (sender != nullptr) {
      detail::wake(*sender);
    }
    if (drained) {
      rethrow_close_error();
    }
    return item;
  }

  /// Closes the channel: blocked and later sends throw `channel_closed` (their items are not
  /// delivered); receivers drain what is buffered, then get empty optionals. Blocked receivers
  /// (the buffer is empty) are woken with an empty optional. Idempotent: false if the channel
  /// was already closed, and then nothing changes (the first close's error stays).
  bool close() noexcept { return close_with(nullptr); }
  /// As `close()`, but receivers that find the channel drained rethrow `error` (if not null),
  /// every one of them: the producer's failure reaches the consumers after its last items.
  bool close(std::exception_ptr error) noexcept { return close_with(std::move(error)); }

  /// True once `close` was called (items may still be buffered).
  [[nodiscard]] bool is_closed() const noexcept {
    // Acquire: pairs with the release store in close().
    return m_closed.load(std::memory_order_acquire);
  }
  /// The number of buffered items: a snapshot (always 0 for a rendezvous channel).
  [[nodiscard]] std::size_t size() const noexcept {
    const std::lock_guard lock(m_lock);
    return m_size;
  }
  /// The capacity given at construction.
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }
  /// The number of tasks blocked in `send` (not counting those a cancel already claimed): a
  /// snapshot, for monitoring and tests (trio's `statistics().tasks_waiting_send`).
  [[nodiscard]] std::size_t waiting_senders() const noexcept { return count_waiting(m_senders); }
  /// The number of tasks blocked in `recv`: a snapshot, as `waiting_senders`.
  [[nodiscard]] std::size_t waiting_receivers() const noexcept {
    return count_waiting(m_receivers);
  }

 private:
  /// Under the lock, the channel open: gives `item` to the first claimable receiver (returned
  /// in `receiver`, to be woken after unlocking) or puts it into a free slot; false (the item
  /// untouched) if neither can take it. A receiver waits only while the buffer is empty, so
  /// handing it the item keeps the FIFO order.
  [[nodiscard]] bool give_locked(T& item, detail::waiter*& receiver) noexcept {
    if (detail::waiter* w = claim_first(m_receivers)) {
      static_cast<recv_node&>(*w).item.emplace(std::move(item));
      receiver = w;
      return true;
    }
    if (m_size < m_capacity) {
      push_locked(std::move(item));
      return true;
    }
    return false;
  }

  /// Under the lock: moves the next item into `out` (left empty if there is none) and returns
  /// the sender to wake after unlocking, or null. The next item is the oldest buffered one, and
  /// the first claimable blocked sender then moves its item into the freed slot; with an empty
  /// buffer (capacity 0) it is the first claimable sender's item itself. Senders wait only
  /// while the buffer is full, so this keeps the FIFO order.
  [[nodiscard]] detail::waiter* take_locked(std::optional<T>& out) noexcept {
    detail::waiter* sender = nullptr;
    if (m_size > 0) {
      std::optional<T>& oldest = m_slots[m_head];
      out.emplace(std::move(*oldest));
      oldest.reset();
      m_head = m_head + 1 == m_capacity ? 0 : m_head + 1;
      --m_size;
      sender = claim_first(m_senders);
      if (sender != nullptr) {
        push_locked(std::move(static_cast<send_node&>(*sender).item));
      }
    } else {
      sender = claim_first(m_senders);
      if (sender != nullptr) {
        out.emplace(std::move(static_cast<send_node&>(*sender).item));
      }
    }
    if (sender != nullptr) {
      sender->tag = tag_delivered;
    }
    return sender;
  }

  /// Under the lock, with a free slot: appends `item` to the buffer.
  void push_locked(T&& item) noexcept {
    std::size_t tail = m_head + m_size;
    if (tail >= m_capacity) {
      tail -= m_capacity;
    }
    m_slots[tail].emplace(std::move(item));
    ++m_size;
  }

  // The buffer: a ring of `m_capacity` slots, the oldest item at `m_head`, guarded by m_lock.
  std::unique_ptr<std::optional<T>[]> m_slots;
  std::size_t m_head = 0;
};

}  // namespace corun
