/// \file
/// `merge_queue<T>`: the hand-off between the children of `corun::merge` that drive its sources
/// (the producers) and the merged generator's body (the one consumer). A rendezvous: an item
/// stays in its producer's frame until the consumer takes it, so nothing is buffered and a
/// producer is never more than one item ahead of the consumer.
///
/// Protocol (on the waiter protocol of waiter.hpp; the shared fields are guarded by `m_lock`):
///  1. Put. Once the queue is closed a put returns false at once: nobody will take the item.
///     A producer that finds the consumer waiting claims it (`try_claim`) and, after unlocking,
///     moves its item into the consumer's waiter and wakes it (a direct hand-off). Otherwise it
///     queues itself, pointing at its item, and suspends (`arm_and_unlock`).
///  2. Take. After a failure the consumer rethrows it (the merge ends; queued items are left),
///     or throws its own `cancelled` if the failure is a producer's cancellation and the consumer
///     is cancelled too; when every producer has finished, the merge has ended. Otherwise it claims
///     the first queued producer that a cancel did not claim first and, after unlocking, moves the
///     item out and wakes the producer (its put returns true). With no producer queued it waits
///     (`arm_and_unlock`) until a put or a finish claims it.
///  3. Finish. A producer whose source ended counts itself out; a failure is kept (the first
///     one). A producer that was cancelled fails too (with `task_cancelled`): its source did not
///     end, so the merge must not look ended. If that was the last producer, or it failed, it
///     claims and wakes a waiting consumer.
///  4. Close. The consumer, ending the merge, marks the queue closed and claims every queued
///     producer; they wake with their put returning false.
///  5. Cancellation. A cancel that claims a queued producer or the waiting consumer first
///     wakes it; it unlinks itself under the lock and throws `cancelled` (a producer keeps its
///     item: nobody took it). A claim by the other side beats a later cancel: the item was
///     handed over, and the cancel shows at the next suspension point.
/// A claimed waiter's frame stays where it is until its claimer wakes it, so the claimer moves
/// the item outside the lock. If that move throws, the waiter is woken all the same; the
/// exception ends the merge (it reaches the consumer either way).
///
/// THREAD SAFETY. Producers (the children): `put` and `finish`, each from its own task. The
/// consumer: `take` and `close`, from the task running the merged body. Shared ownership: the
/// children keep the queue alive after an early-destroyed merged generator let go of it.
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/waiter.hpp"

#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

namespace corun::detail {

template <class T>
class merge_queue {
  /// A producer queued with its item.
  struct producer_waiter : waiter {
    T* item = nullptr;
    /// Written by the claimer before the wake: the consumer took the item (false: closed).
    bool accepted = false;
  };
  /// The consumer waiting for an item, an end or a failure.
  struct consumer_waiter : waiter {
    /// Filled by a direct hand-off (step 1) before the wake.
    std::optional<T> item;
    /// The hand-off's move threw this.
    std::exception_ptr error;
  };

 public:
  /// A queue fed by `producers` producers, each of which must call `finish` once.
  explicit merge_queue(std::size_t producers) noexcept : m_running(producers) {}
  merge_queue(const merge_queue&) = delete;
  merge_queue& operator=(const merge_queue&) = delete;
  ~merge_queue() = default;

  /// Awaitable returned by `put`.
  class put_awaiter {
   public:
    put_awaiter(merge_queue& queue, T& item) noexcept : m_queue(queue) { m_waiter.item = &item; }
    [[nodiscard]] bool await_ready() {
      m_cancelled = checkpoint_or_ready("corun::merge");
      return m_cancelled;
    }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) {
      merge_queue& q = m_queue;
      q.m_lock.lock();
      if (q.m_closed) {
        q.m_lock.unlock();
        return false;
      }
      if (consumer_waiter* consumer = std::exchange(q.m_consumer, nullptr)) {
        if (try_claim(*consumer)) {
          q.m_lock.unlock();
          m_waiter.accepted = true;
          hand_over(*consumer, *m_waiter.item);
          return false;
        }
        // A cancel claimed it first; it will find `m_consumer` no longer pointing at it.
      }
      q.m_producers.push_back(m_waiter);
      m_suspended = true;
      return arm_and_unlock(m_waiter, h, wait_kind::channel, q.m_lock);
    }
    /// True if the consumer took the item; false if the queue was closed (stop producing).
    bool await_resume() {
      if (m_cancelled) {
        throw_cancelled_current();
      }
      if (m_suspended && !resumed(m_waiter)) {
        {
          const std::lock_guard lock(m_queue.m_lock);
          m_queue.m_producers.remove(m_waiter);
        }
        throw_cancelled_current();
      }
      return m_waiter.accepted;
    }

   private:
    merge_queue& m_queue;
    producer_waiter m_waiter;
    bool m_cancelled = false;
    bool m_suspended = false;
  };

  /// Offers `item`, which must stay alive until the put returns (step 1). A suspension point.
  [[nodiscard]] put_awaiter put(T& item) noexcept { return put_awaiter{*this, item}; }

  /// Awaitable returned by `take`.
  class take_awaiter {
   public:
    explicit take_awaiter(merge_queue& queue) noexcept : m_queue(queue) {}
    [[nodiscard]] bool await_ready() {
      m_cancelled = checkpoint_or_ready("corun::merge");
      return m_cancelled;
    }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
      merge_queue& q = m_queue;
      q.m_lock.lock();
      if (q.m_error == nullptr && q.m_running != 0) {
        while (waiter* w = q.m_producers.pop_front()) {
          if (try_claim(*w)) {
            m_claimed = static_cast<producer_waiter*>(w);
            q.m_lock.unlock();
            return false;
          }
          // Claimed by a cancel: that producer takes its item back; try the next one.
        }
        q.m_consumer = &m_waiter;
        m_suspended = true;
        return arm_and_unlock(m_waiter, h, wait_kind::channel, q.m_lock);
      }
      q.m_lock.unlock();
      return false;
    }
    /// The next item; empty once every producer finished; rethrows a producer's failure.
    std::optional<T> await_resume() {
      if (m_cancelled) {
        throw_cancelled_current();
      }
      if (m_claimed != nullptr) {
        return take_from(*m_claimed);
      }
      if (m_suspended) {
        if (!resumed(m_waiter)) {
          {
            const std::lock_guard lock(m_queue.m_lock);
            if (m_queue.m_consumer == &m_waiter) {
              m_queue.m_consumer = nullptr;
            }
          }
          throw_cancelled_current();
        }
        if (m_waiter.error) {
          std::rethrow_exception(m_waiter.error);
        }
        if (m_waiter.item.has_value()) {
          return std::move(m_waiter.item);
        }
      }
      // Woken by a finish, or nothing to wait for: the merge failed or ended.
      std::exception_ptr error;
      bool interrupted = false;
      {
        const std::lock_guard lock(m_queue.m_lock);
        error = m_queue.m_error;
        interrupted = m_queue.m_interrupted;
      }
      if (error) {
        if (interrupted && cancel_requested(*this_thread_state().current)) {
          // The producers were cancelled with us: report our own cancellation, as a join does.
          throw_cancelled_current();
        }
        std::rethrow_exception(std::move(error));
      }
      return std::nullopt;
    }

   private:
    merge_queue& m_queue;
    consumer_waiter m_waiter;
    producer_waiter* m_claimed = nullptr;
    bool m_cancelled = false;
    bool m_suspended = false;
  };

  /// The next item, or an empty optional once every producer finished; rethrows the first
  /// failure a producer reported (step 2). A suspension point. The consumer only.
  [[nodiscard]] take_awaiter take() noexcept { return take_awaiter{*this}; }

  /// A producer is done (step 3); `error` is its failure, if any, and `interrupted` says that
  /// failure is the producer's cancellation. Once per producer.
  void finish(std::exception_ptr error, bool interrupted) noexcept {
    consumer_waiter* woken = nullptr;
    {
      const std::lock_guard lock(m_lock);
      --m_running;
      if (error && !m_error) {
        m_error = std::move(error);
        m_interrupted = interrupted;
      }
      if ((m_running == 0 || m_error) && m_consumer != nullptr) {
        // A consumer that a cancel claimed first finds `m_consumer` no longer pointing at it.
        consumer_waiter* consumer = std::exchange(m_consumer, nullptr);
        if (try_claim(*consumer)) {
          woken = consumer;
        }
      }
    }
    if (woken != nullptr) {
      wake(*woken);
    }
  }

  /// The merge ends (step 4): later puts return false, queued producers wake with false.
  void close() noexcept {
    waiter_queue claimed;
    {
      const std::lock_guard lock(m_lock);
      m_closed = true;
      while (waiter* w = m_producers.pop_front()) {
        if (try_claim(*w)) {
          claimed.push_back(*w);
        }
      }
    }
    // The claimed producers' frames stay alive until they are woken, and only we wake them.
    while (waiter* w = claimed.pop_front()) {
      wake(*w);
    }
  }

 private:
  /// Step 1, after claiming `consumer`: moves `item` into it and wakes it.
  static void hand_over(consumer_waiter& consumer, T& item) {
    try {
      consumer.item.emplace(std::move(item));
    } catch (...) {
      consumer.error = std::current_exception();
      wake(consumer);
      throw;
    }
    wake(consumer);
  }

  /// Step 2, after claiming `producer`: moves its item out and wakes it.
  static std::optional<T> take_from(producer_waiter& producer) {
    struct waker {
      explicit waker(producer_waiter& w) noexcept : woken(w) {}
      waker(const waker&) = delete;
      waker& operator=(const waker&) = delete;
      ~waker() { wake(woken); }
      producer_waiter& woken;
    };
    producer.accepted = true;
    const waker on_exit{producer};
    return std::optional<T>(std::in_place, std::move(*producer.item));
  }

  spin_lock m_lock;
  waiter_queue m_producers;               // guarded by m_lock: queued `producer_waiter`s
  consumer_waiter* m_consumer = nullptr;  // guarded by m_lock
  std::size_t m_running;                  // guarded by m_lock: producers not finished
  std::exception_ptr m_error;             // guarded by m_lock: the first failure
  bool m_interrupted = false;             // guarded by m_lock: that failure is a cancellation
  bool m_closed = false;                  // guarded by m_lock
};

}  // namespace corun::detail
