/// \file
/// `task_group`: a fail-fast nursery (asyncio.TaskGroup, trio, anyio), its scoped form
/// `with_task_group`, and `task_status`, the handle `task_group::start` gives its function.
#pragma once

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"
#include "corun/join_handle.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"

#include "corun/detail/group_scope.hpp"
#include "corun/detail/owned_call.hpp"
#include "corun/detail/task_node.hpp"

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun {

template <class T>
class task_status;
class task_group;

namespace detail {

/// One-shot rendezvous between `task_group::start` (the waiter) and the child it started (the
/// setter): the setter writes the payload (a value, or an error for the waiter) and then
/// notifies; the waiter waits for that notification, suspended.
///
/// `m_state`, moved once by each side:
///   empty   -> waiting  the waiter registered itself in `m_waiter` (CAS; fails if ready)
///   empty   -> ready    the setter came first; the waiter will not suspend
///   waiting -> ready    the setter came second: it schedules the waiter
///
/// Lifetime: the signal lives in the waiter's frame, which waits until notified. After its
/// exchange the setter touches nothing but `m_waiter`, and that only while the waiter is still
/// suspended (it resumes only when the setter schedules it), so the waiter may destroy the
/// signal as soon as it runs again.
class start_signal_base {
 public:
  start_signal_base() noexcept = default;
  start_signal_base(const start_signal_base&) = delete;
  start_signal_base& operator=(const start_signal_base&) = delete;

  /// Waiter: true once the setter has notified (the payload is then visible).
  [[nodiscard]] bool is_ready() const noexcept {
    // Acquire: pairs with the setter's release exchange, publishing the payload.
    return m_state.load(std::memory_order_acquire) == ready;
  }
  /// Waiter, before waiting: the started task, which a dump shows the waiter starting (an
  /// address only, never dereferenced: the task may complete and go at any time).
  void show_child(const task_node* child) noexcept { m_child = child; }
  /// Waiter, suspended at `h`: registers itself; false if the setter came first (continue).
  /// Compiled (task_group.cpp): it marks the waiter for dumps when the runtime tracks tasks.
  [[nodiscard]] bool wait(std::coroutine_handle<> h) noexcept;
  /// Setter, once, after writing the payload: publishes it and wakes the waiter if it waits.
  /// Compiled (task_group.cpp): it schedules the waiter, without allocating.
  void notify() noexcept;
  /// Setter: the child ended before `started()`; the waiter throws `error`. `child_cancelled`:
  /// the child ended cancelled (the waiter reports its own cancellation first, if any).
  void fail(std::exception_ptr error, bool child_cancelled) noexcept {
    m_error = std::move(error);
    m_child_cancelled = child_cancelled;
    notify();
  }

  /// Waiter, once ready: throws what the child handed over instead of a value, if anything.
  void rethrow_if_failed() const;

 private:
  static constexpr std::uint32_t empty = 0;
  static constexpr std::uint32_t waiting = 1;
  static constexpr std::uint32_t ready = 2;

  std::atomic<std::uint32_t> m_state{empty};
  resumption m_waiter;
  const task_node* m_child = nullptr;  // waiter only
  // Payload, written by the setter before notify().
  std::exception_ptr m_error;
  bool m_child_cancelled = false;
};

/// The signal with room for the started value.
template <class T>
class start_signal : public start_signal_base {
  static_assert(std::is_object_v<T>,
                "corun: task_group::start<T>: T must be void or an object type, not a reference");

 public:
  template <class U>
  void set_value(U&& value) {
    m_value.emplace(std::forward<U>(value));
  }
  [[nodiscard]] T take_value() { return std::move(*m_value); }

 private:
  std::optional<T> m_value;
};

template <>
class start_signal<void> : public start_signal_base {
 public:
  void take_value() const noexcept {}
};

/// Awaits a `start_signal`: yields the started value or throws what the child handed over.
template <class T>
class start_awaiter {
 public:
  explicit start_awaiter(start_signal<T>& signal) noexcept : m_signal(signal) {}
  [[nodiscard]] bool await_ready() const noexcept { return m_signal.is_ready(); }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const noexcept {
    // Nothing may follow: once registered we may be resumed on another worker at any moment.
    return m_signal.wait(h);
  }
  T await_resume() const {
    clear_wait(*this_thread_state().current);
    m_signal.rethrow_if_failed();
    return m_signal.take_value();
  }

 private:
  start_signal<T>& m_signal;
};

/// The exception the waiter of `start` sees when the child ended cancelled before `started()`:
/// `task_cancelled` for the current task, or (no memory for it) `std::bad_alloc`.
[[nodiscard]] std::exception_ptr cancelled_before_started(const cancelled& reason) noexcept;
/// `std::logic_error`: the child returned without calling `started()`.
[[nodiscard]] std::exception_ptr returned_without_started() noexcept;

/// The child made by `task_group::start`: runs `fn(status)` and makes sure the waiter is
/// notified on every path. A failure before `started()` goes to the waiter only, not to the
/// group; a cancellation before `started()` goes to both (the child still ends cancelled, which
/// the group ignores).
template <class T, class F>
task<void> run_started(F fn, start_signal<T>& signal) {
  task_status<T> status(signal);
  std::exception_ptr early;
  try {
    co_await std::invoke(fn, status);
  } catch (const cancelled& reason) {
    if (!status.m_started) {
      signal.fail(cancelled_before_started(reason), true);
    }
    throw;
  } catch (...) {
    if (status.m_started) {
      throw;  // a failure after started(): the group's business
    }
    early = std::current_exception();
  }
  if (!status.m_started) {
    signal.fail(early ? std::move(early) : returned_without_started(), false);
  }
}

/// `fn(task_status<T>&)` returns a `task<void>`.
template <class F, class T>
concept start_function = std::invocable<F&, task_status<T>&> &&
                         std::same_as<std::invoke_result_t<F&, task_status<T>&>, task<void>>;

/// Throws what `task_group::join` throws for these outcomes, if anything: an `exception_group`
/// of the failures, else `cancelled` if the owner is cancelled.
void settle_group_join(std::vector<std::exception_ptr> failures, task_node& owner);

struct task_group_access;

}  // namespace detail

/// Handed by `task_group::start` to the function it runs: `status.started(value)` hands `value`
/// to the caller of `start`, which returns while the function keeps running in the group.
///
/// Not thread-safe: call `started` from the started task (or a task of the same runtime).
/// Lives in the started task's frame; the function receives it by reference.
template <class T = void>
class task_status {
 public:
  task_status(const task_status&) = delete;
  task_status& operator=(const task_status&) = delete;

  /// Hands `value` to the caller of `start` and wakes it. Throws `std::logic_error` if called
  /// a second time; what constructing the value throws leaves `started` (not started then).
  template <class U = T>
    requires std::constructible_from<T, U&&>
  void started(U&& value) {
    if (m_started) {
      throw std::logic_error("corun: task_status::started() called twice");
    }
    m_signal.set_value(std::forward<U>(value));
    m_started = true;
    m_signal.notify();  // the signal may be gone after this: not touched again
  }

 private:
  template <class U, class F>
  friend task<void> detail::run_started(F, detail::start_signal<U>&);
  explicit task_status(detail::start_signal<T>& signal) noexcept : m_signal(signal) {}

  detail::start_signal<T>& m_signal;
  bool m_started = false;
};

/// `task_status` of a `start` that hands over no value: `status.started()`.
template <>
class task_status<void> {
 public:
  task_status(const task_status&) = delete;
  task_status& operator=(const task_status&) = delete;

  /// Wakes the caller of `start`. Throws `std::logic_error` if called a second time.
  void started() {
    if (m_started) {
      throw std::logic_error("corun: task_status::started() called twice");
    }
    m_started = true;
    m_signal.notify();  // the signal may be gone after this: not touched again
  }

 private:
  template <class U, class F>
  friend task<void> detail::run_started(F, detail::start_signal<U>&);
  explicit task_status(detail::start_signal<void>& signal) noexcept : m_signal(signal) {}

  detail::start_signal<void>& m_signal;
  bool m_started = false;
};

/// A fail-fast nursery: children spawned into it run concurrently; `join()` waits for all of
/// them. When a child fails, every other child is cancelled; `join()` then throws an
/// `exception_group` holding every failure (children that ended cancelled never appear).
///
/// Construct it inside a task (`task_group g;` in a coroutine body): its scope is a child of
/// the current task, so cancelling that task cancels the group, and the group's children are
/// the group's, not their spawner's. Every failure of a child is the group's, whether or not
/// somebody also observed it through the child's `join_handle`.
///
/// Unlike `with_task_group`, a bare group cannot interrupt the code around it when a child
/// fails (that code runs in the owning task, whose cancellation could not be undone): it sees
/// the failure at `join()`.
///
/// Destroying a group that was not joined cancels its children but, unlike `std::jthread`,
/// cannot wait for them: a destructor cannot suspend. The owning task's body goes on at once
/// while the children unwind; the owning task then does not complete before they did, and
/// fails with their failures (as with a child whose handle was dropped). So whatever the
/// children use must outlive the owning task, not merely the group's scope (locals of the body
/// are gone while children may still run), or the group must be joined. Debug builds log the
/// missing join on stderr.
///
/// Thread safety and lifetime: `join()` and the destructor only in the task that created the
/// group; `spawn`, `start`, `cancel` and `size` from any task of the same runtime (children
/// may spawn siblings) as long as the group object lives. Not copyable or movable.
class task_group {
  enum class state : std::uint8_t { open, joining, joined };

  /// The join without its throwing: yields the children's failures.
  class quiet_join_awaiter {
   public:
    explicit quiet_join_awaiter(task_group& group) noexcept
        : m_group(group), m_inner(*group.m_scope) {}
    [[nodiscard]] bool await_ready() {
      m_group.begin_join();
      return false;
    }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const noexcept {
      return m_inner.await_suspend(h);
    }
    [[nodiscard]] std::vector<std::exception_ptr> await_resume() const noexcept {
      m_group.m_state = state::joined;
      return m_inner.await_resume();
    }
    [[nodiscard]] detail::task_node& owner() const noexcept { return m_group.m_scope->owner(); }

   private:
    task_group& m_group;
    detail::group_scope::join_awaiter m_inner;
  };

 public:
  /// A new, empty group under the current task. Throws `std::logic_error` outside a task.
  task_group();
  ~task_group();
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  /// Spawns `t` into the group. From a task of the group's runtime; throws `std::logic_error`
  /// for an empty task, from elsewhere, or once `join()` has returned. If the group is
  /// cancelled the child still starts, and sees `cancelled` at its first suspension point.
  template <class T>
  join_handle<T> spawn(task<T> t, spawn_options options = {}) {
    return m_scope->spawn_tracked(std::move(t), std::move(options));
  }

  /// Spawns `fn(args...)`; the callable and the arguments live as long as the task.
  template <class F, class... Args>
    requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(F&& fn, Args&&... args) {
    return spawn(detail::call_owned(std::forward<F>(fn), std::forward<Args>(args)...));
  }

  /// As above, with options.
  template <class F, class... Args>
    requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(spawn_options options, F&& fn, Args&&... args) {
    return spawn(detail::call_owned(std::forward<F>(fn), std::forward<Args>(args)...),
                 std::move(options));
  }

  /// anyio's `TaskGroup.start`: runs `fn(status)` as a child of the group and returns, once the
  /// child calls `status.started(value)`, that value; the child keeps running in the group.
  /// `fn` is moved into the child's frame, so its captures live as long as the child.
  ///
  /// - A failure of the child before `started()` is thrown here and is not the group's (it
  ///   neither appears in `join()` nor cancels the siblings).
  /// - Returning without calling `started()` throws `std::logic_error` here.
  /// - Ending cancelled before `started()` throws `cancelled` here if the caller is itself
  ///   cancelled, else `task_cancelled`.
  /// - The caller waits until one of these happens, even if it is cancelled meanwhile (its
  ///   cancellation reaches the child when the group lies below the caller, as usual).
  template <class T = void, class F>
    requires detail::start_function<F, T>
  task<T> start(F fn) {
    detail::start_signal<T> signal;
    // The child is the group's: its handle is dropped at once, only its address is kept.
    signal.show_child(
        detail::handle_access::node(spawn(detail::run_started<T>(std::move(fn), signal))));
    co_return co_await detail::start_awaiter<T>(signal);
  }

  /// Requests cancellation of every child (and of the `with_task_group` body). Children that
  /// end cancelled this way do not appear in `join()`. Thread-safe; no effect after the join.
  void cancel(std::string message = {}) { m_scope->request_cancel(std::move(message)); }

  /// Awaitable returned by `join()`.
  class join_awaiter {
   public:
    explicit join_awaiter(task_group& group) noexcept : m_quiet(group) {}
    [[nodiscard]] bool await_ready() { return m_quiet.await_ready(); }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const noexcept {
      return m_quiet.await_suspend(h);
    }
    void await_resume() const {
      detail::settle_group_join(m_quiet.await_resume(), m_quiet.owner());
    }

   private:
    quiet_join_awaiter m_quiet;
  };

  /// `co_await g.join()` waits until every child completed (children may spawn more meanwhile;
  /// the join is not interrupted by cancellation). Then throws an `exception_group` of every
  /// failure (roughly in spawn order), or `cancelled` if the owning task is cancelled, or
  /// returns. Once only, in the task that created the group (else `std::logic_error`);
  /// `spawn` throws `std::logic_error` afterwards.
  [[nodiscard]] join_awaiter join() noexcept { return join_awaiter{*this}; }

  /// The children still running (a snapshot; 0 once joined). The `with_task_group` body is not
  /// counted.
  [[nodiscard]] std::size_t size() const { return m_scope->running(); }

 private:
  friend struct detail::task_group_access;

  /// Throws `std::logic_error` unless the join may start now; then marks it started.
  void begin_join();

  detail::group_scope* m_scope;
  /// Owner only.
  state m_state = state::open;
};

namespace detail {

/// What `with_task_group` needs beyond the public members of `task_group`.
struct task_group_access {
  /// Spawns the body: untracked (with_task_group observes it through its handle). Owner only,
  /// before the join.
  template <class T>
  static join_handle<T> spawn_body(task_group& group, task<T> body) noexcept {
    return group.m_scope->spawn(std::move(body));
  }
  static task_group::quiet_join_awaiter join_quietly(task_group& group) noexcept {
    return task_group::quiet_join_awaiter{group};
  }
  static group_scope& scope(task_group& group) noexcept { return *group.m_scope; }
};

/// `body(g)` returns a `corun::task`.
template <class F>
concept group_body =
    std::invocable<F&, task_group&> && task_type<std::invoke_result_t<F&, task_group&>>;

template <class F>
using group_body_value_t = typename std::invoke_result_t<F&, task_group&>::value_type;

/// The body of `with_task_group`, run as a child of the group: when it throws, the group is
/// cancelled at once (not only when the body's task completes), and a `cancelled` escaping it
/// is kept for `with_task_group` to rethrow.
template <class T, class F>
task<T> run_body(F body, task_group& group, std::exception_ptr& cancellation) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::invoke(body, group);
    } else {
      co_return co_await std::invoke(body, group);
    }
  } catch (const cancelled&) {
    cancellation = std::current_exception();
    task_group_access::scope(group).request_cancel_nothrow("the with_task_group body ended");
    throw;
  } catch (...) {
    task_group_access::scope(group).request_cancel_nothrow("the with_task_group body failed");
    throw;
  }
}

/// Throws what `with_task_group` must throw after the join, if anything (see there).
void settle_with_task_group(std::exception_ptr body_error, std::vector<std::exception_ptr> failures,
                            bool body_cancelled, const std::exception_ptr& body_cancellation);

}  // namespace detail

/// The scoped form of `task_group`: `co_await with_task_group([&](task_group& g) -> task<T> {..})`
/// runs the body with a new group, waits for every child of the group, and returns the body's
/// value.
///
/// The body runs as a task of the group (its own task id, its `corun::spawn`s are its children),
/// so a failing child interrupts it: the body sees `cancelled` at its next suspension point.
/// Outcomes, as asyncio's TaskGroup:
/// - The body throws: the children are cancelled and awaited, then an `exception_group` is
///   thrown holding the body's exception first, then every child failure (always a group, even
///   when no child failed).
/// - A child fails: the others and the body are cancelled; after all ended, an `exception_group`
///   of the failures is thrown (the body's resulting `cancelled` does not appear).
/// - `cancelled` escapes the body (and no child failed): the children are cancelled and
///   awaited, then the `cancelled` propagates, not wrapped (the caller's own one if the caller
///   is cancelled). To end a group early without an exception, call `g.cancel()` and return.
/// - Otherwise the body's value is returned, even if the caller was cancelled meanwhile (it then
///   sees `cancelled` at its next suspension point).
/// `body` is moved into the body task's frame, so its captures live as long as the body.
template <class F>
  requires detail::group_body<F>
task<detail::group_body_value_t<F>> with_task_group(F body) {
  using value_type = detail::group_body_value_t<F>;
  task_group group;
  std::exception_ptr cancellation;
  join_handle<value_type> handle = detail::task_group_access::spawn_body(
      group, detail::run_body<value_type>(std::move(body), group, cancellation));
  std::vector<std::exception_ptr> failures =
      co_await detail::task_group_access::join_quietly(group);
  detail::settle_with_task_group(handle.exception(), std::move(failures), handle.cancelled(),
                                 cancellation);
  co_return handle.take_completed();
}

}  // namespace corun
