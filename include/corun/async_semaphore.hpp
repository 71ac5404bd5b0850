/// \file
/// `async_semaphore`: a FIFO-fair counting semaphore for tasks (asyncio.Semaphore,
/// tokio::sync::Semaphore) whose `acquire()` suspends the task instead of blocking its worker.
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/waiter.hpp"

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <utility>

namespace corun {

/// Holds a number of units. `co_await s.acquire()` takes one, waiting while there is none;
/// `release()` gives one back. `auto guard = co_await s.acquire_guard();` returns an
/// `async_semaphore::guard` that releases its unit when destroyed.
///
/// Fairness: waiters get units in the order they started waiting. `release()` hands the unit
/// directly to the first waiter, and a task that calls `acquire()` or `try_acquire()` while
/// others wait queues behind them (no barging). Uncontended acquire and release cost one CAS
/// each and no spin lock.
///
/// Cancellation: `co_await s.acquire()` is a suspension point. A task already cancelled throws
/// `corun::cancelled` there and takes no unit (also when one is available). A waiter cancelled
/// while it waits throws `cancelled` and leaves the queue. A waiter that was handed a unit at the
/// moment it was cancelled keeps it (completion beats cancellation) and sees the cancel at its
/// next suspension point; a unit is never lost: if the first waiter was cancelled first,
/// `release()` hands the unit to the next one.
///
/// Threading: `acquire()` only inside a corun task; `try_acquire()`, `release()` and
/// `available()` from any thread. Units have no owner: any task or thread may release them, and
/// releasing more than was acquired raises the count (as with asyncio.Semaphore; the count must
/// stay within `max()`).
///
/// Lifetime: destroying the semaphore while tasks wait on it, or while a guard still holds a
/// unit, is a bug (their frames point here).
class async_semaphore {
 public:
  /// RAII ownership of one unit: releases it on destruction unless moved from or released early.
  /// Move-only; may be moved to another task or thread.
  class [[nodiscard(
      "the guard releases its unit when destroyed: name it (auto guard = co_await "
      "s.acquire_guard();), or the unit is given back at once")]] guard {
   public:
    guard() noexcept = default;
    /// Takes over a unit the caller holds (after a successful `try_acquire()`).
    guard(async_semaphore& s, std::adopt_lock_t /*adopt*/) noexcept : m_semaphore(&s) {}
    guard(guard&& other) noexcept : m_semaphore(std::exchange(other.m_semaphore, nullptr)) {}
    guard& operator=(guard&& other) noexcept {
      if (this != &other) {
        release();
        m_semaphore = std::exchange(other.m_semaphore, nullptr);
      }
      return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { release(); }

    /// Releases the unit now (hands it to the first waiter); the guard then owns nothing. A
    /// no-op if it owns nothing.
    void release() noexcept {
      if (m_semaphore != nullptr) {
        std::exchange(m_semaphore, nullptr)->release();
      }
    }
    [[nodiscard]] bool owns_unit() const noexcept { return m_semaphore != nullptr; }
    explicit operator bool() const noexcept { return owns_unit(); }
    /// The semaphore it holds a unit of, or null.
    [[nodiscard]] async_semaphore* semaphore() const noexcept { return m_semaphore; }

   private:
    async_semaphore* m_semaphore = nullptr;
  };

  /// The largest count the semaphore can hold.
  [[nodiscard]] static constexpr std::size_t max() noexcept { return ~std::size_t{0} >> 1; }

  /// Starts with `initial` units (at most `max()`).
  explicit async_semaphore(std::size_t initial) noexcept : m_state(initial * one_unit) {}
  async_semaphore(const async_semaphore&) = delete;
  async_semaphore& operator=(const async_semaphore&) = delete;
  /// Destroying a semaphore that is waited for or whose units guards hold is a bug.
  ~async_semaphore() = default;

  /// Takes a unit if one is available and nobody waits; never suspends. Callable from any
  /// thread. A true result must be paired with `release()` (or adopted by a `guard`).
  [[nodiscard]] bool try_acquire() noexcept {
    // Relaxed: the CAS below orders; a stale value only costs a retry.
    std::size_t state = m_state.load(std::memory_order_relaxed);
    // A unit available implies nobody waits (see the state word), so this cannot barge.
    while (state >= one_unit) {
      // Acquire: the taker sees what the releaser of the unit wrote before its release.
      if (m_state.compare_exchange_weak(state, state - one_unit, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  /// Gives back `n` units, each handed to the first waiter that was not cancelled; what no
  /// waiter takes raises the count. Callable from any task or thread.
  void release(std::size_t n = 1) noexcept {
    // Acquire, also on the CAS's failure: a waiter that set `waiters_bit` (release) held the
    // spin lock then, so the spin lock release_slow takes comes after its and finds it queued.
    std::size_t state = m_state.load(std::memory_order_acquire);
    while ((state & waiters_bit) == 0) {
      // Release: a taker of the unit (acquire) sees what this releaser wrote.
      if (m_state.compare_exchange_weak(state, state + n * one_unit, std::memory_order_release,
                                        std::memory_order_acquire)) {
        return;
      }
    }
    release_slow(n);
  }

  /// The units available now. A snapshot, for diagnostics and tests: 0 while tasks wait.
  [[nodiscard]] std::size_t available() const noexcept {
    // Relaxed: a snapshot that orders nothing.
    return m_state.load(std::memory_order_relaxed) / one_unit;
  }

  /// What `co_await s.acquire()` is: see `acquire()`.
  class acquire_awaiter {
   public:
    explicit acquire_awaiter(async_semaphore& s) noexcept : m_semaphore(&s) {}
    [[nodiscard]] bool await_ready() {
      m_cancelled = detail::checkpoint_or_ready("async_semaphore::acquire");
      return m_cancelled || m_semaphore->try_acquire();
    }
    /// Queues the task unless a unit became available meanwhile
    /// (runtime/sync/async_semaphore.cpp).
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept;
    void await_resume() {
      if (m_cancelled) {
        detail::throw_cancelled_current();
      }
      if (m_suspended && !detail::resumed(m_waiter)) {
        leave_queue_and_throw();
      }
    }

   protected:
    async_semaphore* m_semaphore;

   private:
    /// A waiter claimed by its cancel: leaves the queue under the lock and throws `cancelled`.
    [[noreturn]] void leave_queue_and_throw();

    detail::waiter m_waiter;
    bool m_cancelled = false;
    bool m_suspended = false;
  };

  /// What `co_await s.acquire_guard()` is: `acquire()` returning a guard of the unit.
  class acquire_guard_awaiter : public acquire_awaiter {
   public:
    using acquire_awaiter::acquire_awaiter;
    [[nodiscard]] guard await_resume() {
      acquire_awaiter::await_resume();
      return guard(*m_semaphore, std::adopt_lock);
    }
  };

  /// Waits until the task holds a unit. A suspension point (see the class comment). Only inside
  /// a corun task: outside one it throws `std::logic_error`. Pair it with `release()`.
  [[nodiscard]] acquire_awaiter acquire() noexcept { return acquire_awaiter(*this); }

  /// `acquire()`, returning a guard that releases the unit when destroyed.
  [[nodiscard]] acquire_guard_awaiter acquire_guard() noexcept {
    return acquire_guard_awaiter(*this);
  }

 private:
  // The state word, `m_state`:
  //   bit 0      WAITERS  the wait queue may hold waiters (some possibly cancelled); set only
  //                       while no unit is available
  //   bits 1..   UNITS    the units available
  // `try_acquire` (UNITS > 0) and release's fast path (WAITERS clear) are CASes outside the
  // spin lock. Every other transition happens under the spin lock, and while WAITERS is set only
  // the spin lock's holder changes the word: a waiter queues itself only after it set WAITERS,
  // so available units never coexist with waiters (no barging) and a release that sees WAITERS
  // clear cannot leave a waiter behind.
  static constexpr std::size_t waiters_bit = 1;
  static constexpr std::size_t one_unit = 2;

  /// With WAITERS seen: hands up to `n` units to the first claimable waiters, keeps the rest.
  void release_slow(std::size_t n) noexcept;

  detail::spin_lock m_lock;
  std::atomic<std::size_t> m_state;
  detail::waiter_queue m_waiters;  // guarded by m_lock
};

}  // namespace corun
