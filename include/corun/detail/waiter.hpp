/// \file
/// `waiter`: a task suspended on a corun object (a lock, semaphore, event, channel or timer)
/// that either the object or a cancel request may wake: whichever *claims* it first.
///
/// The protocol every such awaitable follows (runtime/sync/waiter.cpp implements the steps):
///  1. `await_ready`: `checkpoint_or_ready(what)` — a task already cancelled does not start the
///     operation (its await_resume throws `cancelled`; nothing was taken).
///  2. `await_suspend`: lock the object; try the operation; if it cannot complete, link the
///     waiter into the object's queue and end with `arm_and_unlock()`, which registers the
///     cancel wake-up, marks the waiter armed and releases the object's lock. It returns false
///     (do not suspend) if the task was cancelled meanwhile; the waiter is then claimed by the
///     cancel. Nothing may touch the coroutine frame after it returned true: the task may
///     already run on another worker. (It is out of line so that no compiler keeps the lock's
///     address in the frame.)
///  3. The object, under its lock, unlinks a waiter and calls `try_claim()`. If that fails the
///     waiter was cancelled: the object passes the wake-up on to the next waiter. If it
///     succeeds, the object hands over the result (the lock, the item) into the waiter, and
///     after releasing its lock calls `wake()`.
///  4. A cancel request claims the waiter instead (`fire`) and, if it is armed, schedules it.
///  5. `await_resume`: `resumed()` deregisters the cancel wake-up and says who claimed the
///     waiter. Claimed by the object: the result is there (completion beats cancellation; a
///     pending cancel shows at the next suspension point). Claimed by the cancel: the awaitable
///     takes its waiter out of the object's queue under the lock if it is still linked, and
///     throws `cancelled` (`throw_cancelled_current()`).
/// A waiter is claimed exactly once, so a result is either delivered or never taken, and a
/// wake-up meant for a cancelled waiter always reaches another one.
#pragma once

#include "corun/detail/cancel_registration.hpp"
#include "corun/detail/task_node.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>

namespace corun::detail {

class spin_lock;

struct waiter : cancel_registration {
  /// none -> armed (the task suspended) -> object | cancel. A cancel may also claim a waiter
  /// that is not armed yet (then the task does not suspend).
  enum class claim : std::uint8_t { none, armed, object, cancel };

  waiter() noexcept : cancel_registration(nullptr, &fire, kind::waker) {}

  /// Set by `arm_and_unlock`.
  task_node* task = nullptr;
  std::coroutine_handle<> handle;
  /// Intrusive links of the object's wait queue (`waiter_queue`), guarded by the object's lock.
  waiter* q_prev = nullptr;
  waiter* q_next = nullptr;
  bool linked = false;
  /// Free for the object's use (a channel tells its senders from its receivers by it).
  std::uint8_t tag = 0;
  std::atomic<claim> m_claim{claim::none};

  static void fire(cancel_registration& r) noexcept;
};

/// Step 1: throws `std::logic_error` naming `what` outside a task; true (do not suspend; the
/// awaitable's await_resume then throws `cancelled`) if the running task is cancelled.
[[nodiscard]] bool checkpoint_or_ready(const char* what);

/// Step 2, the last thing `await_suspend` does, holding `lock` with `w` linked: registers the
/// cancel wake-up of the running task (suspended at `h`), shows `kind` in task dumps, arms `w`
/// and unlocks. False if the task was cancelled: the caller must not suspend (`resumed()` then
/// reports the cancel, and the awaitable unlinks `w`).
[[nodiscard]] bool arm_and_unlock(waiter& w, std::coroutine_handle<> h, wait_kind kind,
                                  spin_lock& lock) noexcept;

/// Step 3, under the object's lock: claims an armed `w` for the object. False if a cancel got
/// it first.
[[nodiscard]] inline bool try_claim(waiter& w) noexcept {
  waiter::claim expected = waiter::claim::armed;
  // Relaxed: the object's lock orders arming before this, and `wake()` (the run queue's
  // release/acquire) orders the handed-over result before the woken task reads it.
  return w.m_claim.compare_exchange_strong(expected, waiter::claim::object,
                                           std::memory_order_relaxed, std::memory_order_relaxed);
}

/// Step 3, after the object released its lock: schedules the task of a waiter it claimed.
void wake(waiter& w) noexcept;

/// Step 5: deregisters the cancel wake-up; true if the object claimed the waiter (it holds a
/// result), false if the cancel did (the caller unlinks it if needed, then throws).
[[nodiscard]] bool resumed(waiter& w) noexcept;

/// Throws the running task's `corun::cancelled`.
[[noreturn]] void throw_cancelled_current();

/// An intrusive FIFO of waiters; every member must be called under the owning object's lock.
class waiter_queue {
 public:
  [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }
  [[nodiscard]] waiter* front() const noexcept { return m_head; }
  void push_back(waiter& w) noexcept {
    w.q_prev = m_tail;
    w.q_next = nullptr;
    if (m_tail != nullptr) {
      m_tail->q_next = &w;
    } else {
      m_head = &w;
    }
    m_tail = &w;
    w.linked = true;
  }
  /// Unlinks `w` if it is linked (a cancelled waiter taking itself out).
  void remove(waiter& w) noexcept {
    if (!w.linked) {
      return;
    }
    (w.q_prev != nullptr ? w.q_prev->q_next : m_head) = w.q_next;
    (w.q_next != nullptr ? w.q_next->q_prev : m_tail) = w.q_prev;
    w.q_prev = nullptr;
    w.q_next = nullptr;
    w.linked = false;
  }
  /// Unlinks and returns the first waiter, or null.
  waiter* pop_front() noexcept {
    waiter* w = m_head;
    if (w != nullptr) {
      remove(*w);
    }
    return w;
  }

 private:
  waiter* m_head = nullptr;
  waiter* m_tail = nullptr;
};

}  // namespace corun::detail
