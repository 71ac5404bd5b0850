/// \file
/// Handles to spawned tasks: `join_handle<T>` (awaitable, move-only) and `task_handle`
/// (type-erased, copyable).
#pragma once

#include "corun/cancelled.hpp"

#include "corun/detail/misuse.hpp"
#include "corun/detail/promise.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/waiter.hpp"

#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace corun {

class task_handle;

namespace detail {
class deadline_timer;
struct handle_access;

/// Requests cancellation of `target` with the provenance `origin` (`task_handle::cancel` always
/// says `cancel_origin::user`): for the runtime's own cancellers (`run_until_signal`'s watcher).
/// No effect on an empty handle, or once the task is done or cancellation was requested. Never
/// throws: without memory for `message`, a static message is published instead. Thread-safe.
void request_cancel(const task_handle& target, std::string message, cancel_origin origin) noexcept;

// task_handle::wait (runtime/scheduler/done_waiters.cpp).
[[nodiscard]] bool done_wait_ready(task_node& node);
[[nodiscard]] bool done_wait_suspend(task_node& node, waiter& w,
                                     std::coroutine_handle<> h) noexcept;
void done_wait_resumed(task_node& node, waiter& w);

[[nodiscard]] inline std::exception_ptr exception_of(task_node& node) noexcept {
  if (!node.done() || node.outcome() != task_outcome::error) {
    return nullptr;
  }
  node.mark_observed();
  return node.error();
}
}  // namespace detail

/// A copyable, type-erased reference to a spawned task. Copies share the task's state; the
/// task's frame lives until the task completed and the last handle is gone.
///
/// Thread-safe: any thread may query or cancel through its own copy. Every member except
/// `valid()` throws `std::logic_error` on an empty or moved-from handle.
class task_handle {
 public:
  task_handle() noexcept = default;
  task_handle(const task_handle& other) noexcept : m_node(other.m_node) { acquire(); }
  task_handle(task_handle&& other) noexcept : m_node(std::exchange(other.m_node, nullptr)) {}
  task_handle& operator=(task_handle other) noexcept {
    std::swap(m_node, other.m_node);
    return *this;
  }
  ~task_handle() {
    if (m_node != nullptr) {
      detail::release_ref(*m_node);
    }
  }

  /// False for a default-constructed or moved-from handle.
  [[nodiscard]] bool valid() const noexcept { return m_node != nullptr; }
  /// The task and all its children completed.
  [[nodiscard]] bool done() const { return node().done(); }
  /// The task ended by letting `corun::cancelled` escape.
  [[nodiscard]] bool cancelled() const {
    return done() && node().outcome() == detail::task_outcome::cancelled;
  }
  /// The task ended with an exception other than `corun::cancelled`.
  [[nodiscard]] bool failed() const {
    return done() && node().outcome() == detail::task_outcome::error;
  }
  /// Rethrows the task's exception, or `task_cancelled` if it ended cancelled; returns normally
  /// if it succeeded. Marks the failure as observed. Throws `std::logic_error` if not done.
  void rethrow() const {
    detail::task_node& n = node();
    if (!n.done()) {
      throw std::logic_error("corun: task_handle::rethrow() on a task that is not done");
    }
    n.mark_observed();
    if (n.outcome() != detail::task_outcome::value) {
      detail::throw_outcome(n);
    }
  }
  /// The exception the task failed with; null if it is not done or did not fail. Like Python's
  /// `Task.exception()`, retrieving it counts as observing the failure.
  [[nodiscard]] std::exception_ptr exception() const { return detail::exception_of(node()); }
  /// Requests cancellation of the task and all its children. No effect once it is done.
  void cancel(std::string message = {}) const { node().request_cancel(std::move(message)); }
  /// Unique, stable id of the task (assigned on first use).
  [[nodiscard]] std::uint64_t id() const { return node().id(); }
  /// The name given at spawn (empty if none).
  [[nodiscard]] std::string name() const { return node().name(); }

  /// Awaitable returned by `wait()`.
  class [[nodiscard("co_await the wait")]] wait_awaiter {
   public:
    explicit wait_awaiter(detail::task_node& node) noexcept : m_node(&node) {}
    [[nodiscard]] bool await_ready() { return detail::done_wait_ready(*m_node); }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
      return detail::done_wait_suspend(*m_node, m_waiter, h);  // nothing may follow
    }
    void await_resume() { detail::done_wait_resumed(*m_node, m_waiter); }

   private:
    detail::task_node* m_node;
    detail::waiter m_waiter;
  };

  /// Waits until the task (and all its children) completed, without taking or rethrowing its
  /// result: look at `cancelled()`, `failed()`, `exception()` or `rethrow()` afterwards. Any
  /// number of tasks may wait on copies of a handle at once. A suspension point: throws
  /// `corun::cancelled` if the waiting task is cancelled before the task completed. The handle
  /// must stay alive while the wait is suspended. Inside a corun task only.
  [[nodiscard]] wait_awaiter wait() const { return wait_awaiter(node()); }

  /// Adopts a reference the caller already owns.
  explicit task_handle(detail::task_node* owned) noexcept : m_node(owned) {}

 private:
  friend class detail::deadline_timer;
  friend void detail::request_cancel(const task_handle& target, std::string message,
                                     cancel_origin origin) noexcept;

  [[nodiscard]] detail::task_node& node() const {
    if (m_node == nullptr) {
      throw std::logic_error("corun: use of an empty corun::task_handle");
    }
    return *m_node;
  }
  void acquire() const noexcept {
    if (m_node != nullptr) {
      m_node->add_ref();
    }
  }

  detail::task_node* m_node = nullptr;
};

namespace detail {
inline void request_cancel(const task_handle& target, std::string message,
                           cancel_origin origin) noexcept {
  if (target.m_node == nullptr) {
    return;
  }
  try {
    target.m_node->request_cancel(std::move(message), origin);
  } catch (...) {
    target.m_node->request_cancel_nothrow("cancelled (no memory for the reason)", origin);
  }
}
}  // namespace detail

/// The result of `spawn`: awaiting it yields the task's value, rethrows its exception, or throws
/// `task_cancelled` if it ended cancelled.
///
/// Dropping a handle detaches only the handle: the task keeps running as a child of its scope.
/// If it then fails and nobody observed the failure, its parent scope fails with it.
///
/// Move-only; one task at a time may await it, or one non-worker thread may `get()` it. Every
/// member except `valid()` throws `std::logic_error` on an empty or moved-from handle.
template <class T>
class [[nodiscard("dropping a join_handle detaches it; keep it to await the result")]] join_handle {
 public:
  using promise_type = detail::task_promise<T>;

  join_handle() noexcept = default;
  explicit join_handle(promise_type* owned) noexcept : m_promise(owned) {}
  join_handle(join_handle&& other) noexcept : m_promise(std::exchange(other.m_promise, nullptr)) {}
  join_handle& operator=(join_handle&& other) noexcept {
    if (this != &other) {
      reset();
      m_promise = std::exchange(other.m_promise, nullptr);
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() { reset(); }

  [[nodiscard]] bool valid() const noexcept { return m_promise != nullptr; }
  [[nodiscard]] bool done() const { return promise().done(); }
  [[nodiscard]] bool cancelled() const {
    return done() && promise().outcome() == detail::task_outcome::cancelled;
  }
  [[nodiscard]] bool failed() const {
    return done() && promise().outcome() == detail::task_outcome::error;
  }
  /// The exception the task failed with; null if it is not done or did not fail. Retrieving it
  /// counts as observing the failure.
  [[nodiscard]] std::exception_ptr exception() const { return detail::exception_of(promise()); }
  /// Requests cancellation of the task and all its children. No effect once it is done.
  void cancel(std::string message = {}) const { promise().request_cancel(std::move(message)); }
  [[nodiscard]] std::uint64_t id() const { return promise().id(); }
  [[nodiscard]] std::string name() const { return promise().name(); }

  class awaiter {
   public:
    explicit awaiter(join_handle& handle, bool wake_on_cancel = true) noexcept : m_handle(handle) {
      m_wake.wake_on_cancel = wake_on_cancel;
    }
    [[nodiscard]] bool await_ready() {
      promise_type& p = m_handle.checked_for_join();
      if (p.done()) {
        m_wake.straight_to_result = true;
        return true;
      }
      if (!m_wake.wake_on_cancel) {
        return false;
      }
      detail::task_node* self = detail::this_thread_state().current;
      // Already cancelled: do not wait; await_resume throws `cancelled`.
      return self != nullptr && detail::cancel_requested(*self);
    }
    [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      // Nothing may follow this call: once registered we may be resumed on another worker at
      // any moment, and clang keeps this function's arguments in the coroutine frame.
      return detail::join_suspend(*m_handle.m_promise, detail::this_thread_state().current,
                                  awaiting, m_wake);
    }
    T await_resume() {
      promise_type& p = *m_handle.m_promise;
      if (m_wake.straight_to_result) {
        return m_handle.consume(p);
      }
      detail::task_node* self = detail::this_thread_state().current;
      if (m_wake.m_shard != nullptr) {
        detail::join_resumed(p, m_wake);
      }
      detail::clear_wait(*self);
      if (!p.done()) {
        detail::throw_cancelled(*self);
      }
      if (m_wake.registered) {
        detail::joined_while_waiting(p, *self);
      }
      return m_handle.consume(p);
    }

   private:
    join_handle& m_handle;
    detail::join_wake m_wake;
  };

  /// Waits for the task: `T v = co_await h;`. The result can be taken once.
  awaiter operator co_await() & noexcept { return awaiter{*this}; }
  /// Waits for the task without being woken by the awaiting task's cancellation (`shield`).
  [[nodiscard]] awaiter wait_uncancellable() & noexcept { return awaiter{*this, false}; }
  awaiter operator co_await() && noexcept { return awaiter{*this}; }

  /// Blocks the calling thread until the task completes, then returns its value or rethrows.
  /// Only from a thread that is not a corun worker (a worker must `co_await` instead).
  T get() {
    promise_type& p = checked_for_join();
    if (detail::this_thread_state().worker != nullptr) {
      throw std::logic_error(
          "corun: join_handle::get() called on a corun worker thread; use co_await instead");
    }
    if (!p.done()) {
      detail::join_blocking(p);
    }
    return consume(p);
  }

  /// For a task that is done: its value, or rethrows as `co_await` would. Throws
  /// `std::logic_error` if the task is not done.
  T take_completed() {
    promise_type& p = checked_for_join();
    if (!p.done()) {
      throw std::logic_error("corun: join_handle::take_completed() on a task that is not done");
    }
    return consume(p);
  }

  /// A type-erased handle sharing this task.
  operator task_handle() const {  // NOLINT(google-explicit-constructor): documented conversion
    promise().add_ref();
    return task_handle{m_promise};
  }

 private:
  friend struct detail::handle_access;

  promise_type& promise() const {
    if (CORUN_UNLIKELY(m_promise == nullptr)) {
      detail::throw_logic_error("corun: use of an empty or moved-from corun::join_handle");
    }
    return *m_promise;
  }
  promise_type& checked_for_join() const {
    promise_type& p = promise();
    if (CORUN_UNLIKELY(p.m_result_taken)) {
      detail::throw_logic_error("corun: the result of this join_handle was already taken");
    }
    return p;
  }
  T consume(promise_type& p) {
    p.m_result_taken = true;
    p.mark_observed();
    if (p.outcome() == detail::task_outcome::cancelled) {
      detail::task_node* self = detail::this_thread_state().current;
      if (self != nullptr && detail::cancel_requested(*self)) {
        // The task ended cancelled and so are we: report our own cancellation.
        detail::throw_cancelled(*self);
      }
      detail::throw_outcome(p);
    }
    return p.take_result();
  }
  void reset() noexcept {
    if (m_promise != nullptr) {
      detail::release_ref(*std::exchange(m_promise, nullptr));
    }
  }

  /// The one member: a handle is a pointer wide, so arrays of them (a task awaiting its
  /// children) keep frames small. Whether the result was taken is the task's
  /// `m_result_taken`: there is one join_handle per task, and moving it moves that state along.
  promise_type* m_promise = nullptr;
};

namespace detail {
/// The runtime's own view of the task behind a handle: its address, for bookkeeping that never
/// dereferences it (a dump's "starting task #N").
struct handle_access {
  template <class T>
  [[nodiscard]] static const task_node* node(const join_handle<T>& handle) noexcept {
    return handle.m_promise;
  }
};
}  // namespace detail

}  // namespace corun
