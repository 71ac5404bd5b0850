/// \file
/// `async_event`: a one-shot flag that tasks can wait for (asyncio.Event, trio.Event).
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/waiter.hpp"

#include <atomic>
#include <coroutine>
#include <mutex>

namespace corun {

/// Starts unset; `set()` releases every current and future waiter. Thread-safe: `set()` and
/// `is_set()` may be called from any thread, `wait()` only inside a corun task.
///
/// `co_await e.wait()` is a suspension point: if the waiting task is cancelled it throws
/// `corun::cancelled` (also when the event is already set, as every corun awaitable does
/// once its task is cancelled), and a waiter woken by `set()` and cancelled at the same
/// moment returns normally and sees the cancel at its next suspension point.
class async_event {
 public:
  async_event() noexcept = default;
  async_event(const async_event&) = delete;
  async_event& operator=(const async_event&) = delete;
  /// Destroying an event while tasks wait on it is a bug (their frames would point here).
  ~async_event() = default;

  /// Sets the event and wakes every waiter. Idempotent.
  void set() noexcept;
  [[nodiscard]] bool is_set() const noexcept {
    // Acquire: whoever sees the flag sees what the setter wrote before `set()`.
    return m_set.load(std::memory_order_acquire);
  }

  class wait_awaiter {
   public:
    explicit wait_awaiter(async_event& e) noexcept : m_event(&e) {}
    [[nodiscard]] bool await_ready() {
      m_cancelled = detail::checkpoint_or_ready("async_event::wait");
      return m_cancelled || m_event->is_set();
    }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
      async_event& e = *m_event;
      e.m_lock.lock();
      // Relaxed: `set()` stores the flag under this lock.
      if (e.m_set.load(std::memory_order_relaxed)) {
        e.m_lock.unlock();
        return false;
      }
      e.m_waiters.push_back(m_waiter);
      m_suspended = true;
      return detail::arm_and_unlock(m_waiter, h, detail::wait_kind::event, e.m_lock);
    }
    void await_resume() {
      if (m_cancelled) {
        detail::throw_cancelled_current();
      }
      if (m_suspended && !detail::resumed(m_waiter)) {
        {
          const std::lock_guard lock(m_event->m_lock);
          m_event->m_waiters.remove(m_waiter);
        }
        detail::throw_cancelled_current();
      }
    }

   private:
    async_event* m_event;
    detail::waiter m_waiter;
    bool m_cancelled = false;
    bool m_suspended = false;
  };

  /// Waits until the event is set. A suspension point (see the class comment).
  [[nodiscard]] wait_awaiter wait() noexcept { return wait_awaiter(*this); }

 private:
  detail::spin_lock m_lock;
  std::atomic<bool> m_set{false};
  detail::waiter_queue m_waiters;  // guarded by m_lock
};

}  // namespace corun
