/// \file
/// `persistent_task_group`: tasks that run until explicitly stopped, where one failing does not
/// cancel the others (frequenz.core.asyncio's `PersistentTaskGroup`).
#pragma once

#include "corun/async_generator.hpp"
#include "corun/join_handle.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"
#include "corun/task_creator.hpp"

#include "corun/detail/owned_call.hpp"
#include "corun/detail/task_node.hpp"

#include <chrono>
#include <coroutine>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun {

namespace detail {

/// The scope of a `persistent_task_group` (runtime/lifecycle/persistent_task_group.cpp): the
/// registry of its tasks and the parent of each of them in the task tree. Reference-counted.
class persistent_scope;
void persistent_scope_retain(persistent_scope& scope) noexcept;
void persistent_scope_release(persistent_scope& scope) noexcept;

/// An owning reference to a `persistent_scope`; copies share it.
class persistent_scope_ref {
 public:
  explicit persistent_scope_ref(persistent_scope* owned) noexcept : m_scope(owned) {}
  persistent_scope_ref(const persistent_scope_ref& other) noexcept : m_scope(other.m_scope) {
    persistent_scope_retain(*m_scope);
  }
  persistent_scope_ref& operator=(const persistent_scope_ref&) = delete;
  ~persistent_scope_ref() { persistent_scope_release(*m_scope); }
  persistent_scope& operator*() const noexcept { return *m_scope; }
  persistent_scope* operator->() const noexcept { return m_scope; }

 private:
  persistent_scope* m_scope;
};

/// A new scope named `unique_id` (a generated hex id when empty), not yet linked anywhere.
[[nodiscard]] persistent_scope_ref make_persistent_scope(std::string unique_id);
/// The scope's host task: the scope's parent in the task tree, to be started by the group's
/// task creator. It ends once the group is destroyed, or once it is cancelled, when no task of
/// the group runs any more.
[[nodiscard]] task<void> make_persistent_host(const persistent_scope_ref& scope);
/// After the creator started the host: the scope takes the host's runtime. `std::logic_error`
/// (and the scope is closed) if the creator did not start the host at once.
void attach_persistent_host(persistent_scope& scope);
[[nodiscard]] const std::string& persistent_scope_id(const persistent_scope& scope) noexcept;
/// Names, registers and schedules the released task `child`; throws only before publishing it.
void persistent_spawn(persistent_scope& scope, task_node& child, std::coroutine_handle<> frame,
                      spawn_options options);

}  // namespace detail

/// A group of tasks that run until explicitly stopped: a failing task does not cancel the
/// others (unlike `task_group`, which fails fast). Long-lived background work, usually either
/// discarding a failed task or restarting it. Each failure is reported once, at the first of:
/// `as_completed()` handing the task over and the consumer moving on (acknowledged), `join()`
/// or `stop()` throwing it, the group's destruction.
///
///     corun::persistent_task_group group("workers");
///     (void)group.spawn(print_every(1s), {.name = "print_1"});
///     auto failing = group.spawn(fail_after(5s), {.name = "fail_5"});
///     auto done = group.as_completed();
///     while (std::optional<corun::task_handle> t = co_await done.next()) {
///       if (t->failed() && t->id() == failing.id()) {
///         failing = group.spawn(fail_after(5s), {.name = "fail_5"});   // restart it
///       }
///     }
///
/// Where the group lives. The constructor's task creator (default: `current_spawner()`, the
/// task constructing the group) starts one *host* task, named after the unique id, that stays
/// until the group is destroyed; the group's tasks are children of the group's scope, which
/// is a child of the host, not of whoever spawns them (API.md, Ownership). So:
/// - cancelling the creator (the constructing task, a `task_group`, a service, the runtime at
///   shutdown) cancels every task of the group, and
/// - the creator does not complete before the group's tasks did: a task does not complete, a
///   `task_group` is not joined, a service is not stopped and a runtime is not destroyed while
///   a group living in it exists, unless the creator was cancelled (below). Destroy the group
///   first (as with any object whose lifetime nests in another's).
/// Once the host is cancelled and no task of the group runs any more, the host ends and the
/// group is closed for new tasks: `spawn` throws `std::logic_error` (nothing could own them).
/// The other members keep working on what the group holds.
///
/// Destruction (like `task_group`, and `std::jthread`): cancels the running tasks; the creator
/// then does not complete before they did, and fails with every failure nobody acknowledged
/// (through the host task, as with a child whose handle was dropped; a creator that is a
/// runtime reports them to `on_unhandled_exception`). A destructor cannot wait, so tasks must
/// not use objects that die with the group: `co_await stop()` first.
///
/// Finished tasks (also successful ones) stay in the group, frames alive, until acknowledged
/// (`as_completed`) or collected (`join`, `stop`), as in frequenz: a group whose finished tasks
/// nobody consumes grows.
///
/// Thread safety: every member may be called concurrently from any task of the group's runtime;
/// `spawn`, `cancel`, `is_running`, `tasks`, `unique_id` and `operator<<` also from threads that
/// are not workers; `as_completed`, `join` and `stop` only inside a task. The destructor once
/// nothing else uses the object. Not copyable or movable. Must not outlive its runtime.
class persistent_task_group {
 public:
  /// A group living in the running task (`current_spawner()`); `std::logic_error` outside a
  /// task. `unique_id` names the group in task names and messages; empty: a generated unique
  /// hex id (frequenz uses `hex(id(self))`).
  explicit persistent_task_group(std::string unique_id = {})
      : persistent_task_group(std::move(unique_id), current_spawner()) {}

  /// A group living where `creator` puts its host task (see the class comment): a `runtime`
  /// (a root task: usable from outside any task), a `task_group`, a `persistent_task_group`,
  /// a `service_base`, `current_spawner()`, or any other `task_creator` that starts the task at
  /// once. The creator is used only here. Throws what its `spawn` throws.
  template <class Creator>
    requires task_creator<std::remove_cvref_t<Creator>>
  persistent_task_group(std::string unique_id, Creator&& creator)
      : m_scope(detail::make_persistent_scope(std::move(unique_id))) {
    task<void> host = detail::make_persistent_host(m_scope);
    spawn_options options;
    options.name = unique_id_of_scope();
    static_cast<void>(creator.spawn(std::move(host), std::move(options)));
    detail::attach_persistent_host(*m_scope);
  }

  /// Cancels the running tasks; see the class comment.
  ~persistent_task_group();
  persistent_task_group(const persistent_task_group&) = delete;
  persistent_task_group& operator=(const persistent_task_group&) = delete;

  /// Starts `t` in the group. Its name is always `"<unique_id>:<name>"` (`options.name`, or the
  /// task's id when empty). `options.log_exception`: print the failure on stderr when it
  /// happens (not a cancellation). Callable from any task of the group's runtime or from a
  /// thread that is not a worker; throws `std::logic_error` for an empty task, from a task of
  /// another runtime, or once the group is closed (its host ended); `std::bad_alloc`. Nothing
  /// is started when it throws.
  template <class T>
  join_handle<T> spawn(task<T> t, spawn_options options = {}) {
    if (!t.valid()) {
      throw std::logic_error(
          "corun: persistent_task_group::spawn of an empty or moved-from corun::task");
    }
    auto frame = t.release();
    detail::frame_guard guard(frame);
    detail::persistent_spawn(*m_scope, frame.promise(), frame, std::move(options));
    guard.dismiss();
    return join_handle<T>{&frame.promise()};
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

  /// The group's tasks as they finish: first every finished task not yet acknowledged (in the
  /// order the group saw them finish; tasks that finished while nobody looked, in spawn order),
  /// then each running task once it finishes. Ends when no task runs and every finished one
  /// was acknowledged, or when `timeout` passes (on the runtime clock) with no task finishing:
  /// it bounds each wait, and ending by it is silent.
  ///
  /// A task counts as acknowledged once the consumer asks for the next item: if the consumer
  /// stops early (its body throws, or it drops the generator), the task it got last is handed
  /// out again by the next `as_completed()`. Several consumers at once may get the same task.
  /// The generator holds the group's state, so it may outlive the group object; `next()` is a
  /// suspension point (cancellation: `corun::cancelled`).
  [[nodiscard]] async_generator<task_handle> as_completed(
      std::optional<std::chrono::nanoseconds> timeout = {});

  /// Requests cancellation of every task running now (later ones are not affected). Each task
  /// sees `corun::cancelled` carrying `message`. Thread-safe.
  void cancel(const std::string& message = {});

  /// `cancel(message)`, then waits until no task runs (even if the caller is cancelled
  /// meanwhile: the tasks were cancelled, so the wait lasts as long as their cleanup; the caller
  /// sees its own cancellation at its next suspension point), then acknowledges every finished
  /// task and throws an `exception_group` of their failures. Tasks that ended cancelled are
  /// left out (stop cancelled them), whoever cancelled them. A no-op when nothing runs and
  /// nothing is left to report. The group stays usable. Not from a task of the group itself
  /// (it would wait for itself).
  [[nodiscard]] task<void> stop(std::string message = {});

  /// Waits until no task runs (tasks spawned meanwhile included), then acknowledges every
  /// finished task and throws an `exception_group` of their failures, a task that ended
  /// cancelled counting as one (`task_cancelled`). A suspension point: a cancelled caller gets
  /// `corun::cancelled`, and then nothing was acknowledged. Not from a task of the group itself.
  [[nodiscard]] task<void> join();

  /// Whether some task of the group is still running (snapshot).
  [[nodiscard]] bool is_running() const;

  /// The running tasks and the finished ones waiting for acknowledgement (snapshot): the
  /// running ones in spawn order, then the finished ones in the order `as_completed` hands
  /// them out.
  [[nodiscard]] std::vector<task_handle> tasks() const;

  /// The unique id given to the constructor, or the generated one.
  [[nodiscard]] const std::string& unique_id() const noexcept { return unique_id_of_scope(); }

  /// Prints `persistent_task_group<unique_id=ID, running=N, waiting_ack=M>` (a snapshot).
  friend std::ostream& operator<<(std::ostream& out, const persistent_task_group& group);

 private:
  [[nodiscard]] const std::string& unique_id_of_scope() const noexcept {
    return detail::persistent_scope_id(*m_scope);
  }

  detail::persistent_scope_ref m_scope;
};

}  // namespace corun
