/// \file
/// `async_mutex`: a FIFO-fair mutual exclusion lock for tasks (asyncio.Lock, tokio::sync::Mutex,
/// cppcoro::async_mutex) whose `lock()` suspends the task instead of blocking its worker.
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/waiter.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <utility>

namespace corun {

/// A lock for tasks. `auto guard = co_await m.lock();` waits until the task holds the lock;
/// the returned `async_mutex::guard` unlocks it when destroyed.
///
/// Fairness: waiters get the lock in the order they started waiting. `unlock()` hands the lock
/// directly to the first waiter, and a task that calls `lock()` or `try_lock()` while others
/// wait queues behind them (no barging). The uncontended `lock()`/`unlock()` pair costs one CAS
/// each and no spin lock.
///
/// Cancellation: `co_await m.lock()` is a suspension point. A task already cancelled throws
/// `corun::cancelled` there and does not take the lock (also when the mutex is free). A waiter
/// cancelled while it waits throws `cancelled` and leaves the queue. A waiter that was handed the
/// lock at the moment it was cancelled gets the lock (completion beats cancellation) and sees the
/// cancel at its next suspension point; a hand-off is never lost: if the first waiter was
/// cancelled first, `unlock()` hands the lock to the next one.
///
/// Threading: `lock()` only inside a corun task; `try_lock()` and `unlock()` from any thread.
/// The mutex has no owner: the lock may be released by another task or thread than the one that
/// took it (as with asyncio.Lock), which is also what lets a guard move between tasks. It is not
/// recursive: a task that locks a mutex it already holds waits for itself forever.
///
/// Lifetime: destroying the mutex while tasks wait on it, or while a guard still holds it, is a
/// bug (their frames point here).
class async_mutex {
 public:
  /// RAII ownership of a locked `async_mutex`: unlocks it on destruction unless moved from or
  /// unlocked early. Move-only; may be moved to another task or thread.
  class [[nodiscard(
      "the guard unlocks the mutex when destroyed: name it (auto guard = co_await m.lock();), "
      "or the lock is released at once")]] guard {
   public:
    guard() noexcept = default;
    /// Takes over a lock the caller holds (after a successful `try_lock()`).
    guard(async_mutex& m, std::adopt_lock_t /*adopt*/) noexcept : m_mutex(&m) {}
    guard(guard&& other) noexcept : m_mutex(std::exchange(other.m_mutex, nullptr)) {}
    guard& operator=(guard&& other) noexcept {
      if (this != &other) {
        unlock();
        m_mutex = std::exchange(other.m_mutex, nullptr);
      }
      return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { unlock(); }

    /// Unlocks now (hands the lock to the first waiter); the guard then owns nothing. A no-op
    /// if it owns nothing.
    void unlock() noexcept {
      if (m_mutex != nullptr) {
        std::exchange(m_mutex, nullptr)->unlock_held();
      }
    }
    [[nodiscard]] bool owns_lock() const noexcept { return m_mutex != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }
    /// The mutex it holds, or null.
    [[nodiscard]] async_mutex* mutex() const noexcept { return m_mutex; }

   private:
    async_mutex* m_mutex = nullptr;
  };

  async_mutex() noexcept = default;
  async_mutex(const async_mutex&) = delete;
  async_mutex& operator=(const async_mutex&) = delete;
  /// Destroying a mutex that is held or waited for is a bug (see the class comment).
  ~async_mutex() = default;

  /// Takes the lock if it is free and nobody waits for it; never suspends. Callable from any
  /// thread. A true result must be paired with `unlock()` (or adopted by a `guard`).
  [[nodiscard]] bool try_lock() noexcept {
    std::uint8_t expected = unlocked;
    // Acquire: the new holder sees what the previous holder wrote before its release. Waiters
    // are only ever queued while the state is not `unlocked`, so this cannot barge past them.
    return m_state.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                           std::memory_order_relaxed);
  }

  /// Releases the lock, handing it to the first waiter that was not cancelled. Callable from
  /// any task or thread (see the class comment). Throws `std::logic_error` if the mutex is not
  /// locked.
  void unlock() {
    std::uint8_t expected = locked;
    if (!release_uncontended(expected)) {
      if (expected == unlocked) {
        throw_not_locked();
      }
      unlock_slow();
    }
  }

  /// What `co_await m.lock()` is: see `lock()`.
  class lock_awaiter {
   public:
    explicit lock_awaiter(async_mutex& m) noexcept : m_mutex(&m) {}
    [[nodiscard]] bool await_ready() {
      m_cancelled = detail::checkpoint_or_ready("async_mutex::lock");
      return m_cancelled || m_mutex->try_lock();
    }
    /// Queues the task unless the lock became free meanwhile (runtime/sync/async_mutex.cpp).
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept;
    [[nodiscard]] guard await_resume() {
      if (m_cancelled) {
        detail::throw_cancelled_current();
      }
      if (m_suspended && !detail::resumed(m_waiter)) {
        leave_queue_and_throw();
      }
      return guard(*m_mutex, std::adopt_lock);
    }

   private:
    /// A waiter claimed by its cancel: leaves the queue under the lock and throws `cancelled`.
    [[noreturn]] void leave_queue_and_throw();

    async_mutex* m_mutex;
    detail::waiter m_waiter;
    bool m_cancelled = false;
    bool m_suspended = false;
  };

  /// Waits until the task holds the lock and returns a guard owning it. A suspension point (see
  /// the class comment). Only inside a corun task: outside one it throws `std::logic_error`.
  [[nodiscard]] lock_awaiter lock() noexcept { return lock_awaiter(*this); }

  /// True while the mutex is held by someone. A snapshot, for diagnostics and tests.
  [[nodiscard]] bool is_locked() const noexcept {
    // Relaxed: a snapshot that orders nothing.
    return m_state.load(std::memory_order_relaxed) != unlocked;
  }

 private:
  // The state word, `m_state`:
  //   unlocked        free; the wait queue is empty
  //   locked          held; the wait queue is empty
  //   locked_waiters  held; the wait queue may hold waiters (some possibly cancelled)
  // `unlocked -> locked` (try_lock) and `locked -> unlocked` (unlock's fast path) are CASes
  // outside the spin lock. Every other transition happens under the spin lock, and while the
  // state is `locked_waiters` only the spin lock's holder changes it: a waiter queues itself
  // only after it moved the state to `locked_waiters`, so an `unlocked` mutex never has waiters
  // (no barging) and an unlock that sees `locked` cannot leave a waiter behind.
  static constexpr std::uint8_t unlocked = 0;
  static constexpr std::uint8_t locked = 1;
  static constexpr std::uint8_t locked_waiters = 2;

  /// `locked -> unlocked`; on failure `expected` holds the state seen.
  [[nodiscard]] bool release_uncontended(std::uint8_t& expected) noexcept {
    // Release: the next holder (its acquire in try_lock) sees this holder's writes. Acquire on
    // failure: the waiter that stored `locked_waiters` (release) held the spin lock then, so
    // the spin lock we take next comes after its and finds it queued.
    return m_state.compare_exchange_strong(expected, unlocked, std::memory_order_release,
                                           std::memory_order_acquire);
  }
  /// `guard::unlock`: the mutex is known to be held.
  void unlock_held() noexcept {
    std::uint8_t expected = locked;
    if (!release_uncontended(expected)) {
      unlock_slow();
    }
  }
  /// With waiters (`locked_waiters`): hands the lock to the first claimable one, or frees it.
  void unlock_slow() noexcept;
  [[noreturn]] static void throw_not_locked();

  detail::spin_lock m_lock;
  std::atomic<std::uint8_t> m_state{unlocked};
  detail::waiter_queue m_waiters;  // guarded by m_lock
};

}  // namespace corun
