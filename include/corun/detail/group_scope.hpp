/// \file
/// `group_scope`: a scope whose children are joined together and which fails fast (a child's
/// failure cancels its siblings). The mechanism under `when_all`, `when_any` and `task_group`.
///
/// Protocol (implemented in runtime/scheduler/group_scope.cpp):
///
///  1. Counting. `m_pending` starts at 1, the joiner's own count, so it cannot reach zero while
///     the group is open. Each spawn adds one; a child's completion removes one. `join` removes
///     the joiner's count; whoever brings the counter to zero, the joiner or the last child,
///     resumes the joiner. Once zero the group is closed for good: a checked spawn increments
///     only a non-zero count (CAS), so nothing can resurrect a joined group.
///  2. Plain spawns (`spawn`, for `when_all`/`when_any`): by the owner, before joining; relaxed
///     increment (the joiner's count keeps the counter above zero, and the queue push publishes
///     the child). They cannot fail, so a caller spawning several children never leaves some
///     running in a group it cannot join.
///  3. Tracked spawns (`spawn_tracked`, for `task_group`): from any task of the group's runtime.
///     The group keeps one reference on each child in a registry (`m_children`), so at the join
///     it can read every child's outcome: each failure, observed through a handle or not, is the
///     group's (asyncio.TaskGroup, trio). Finished children that did not fail are dropped from
///     the registry, and their reference released, whenever it doubled in size (amortised O(1)).
///  4. Fail fast. A child that completes failed cancels the group, hence its siblings.
///  5. Cancellation epoch. A child starts with its spawner's verified epoch only when that
///     epoch covers the child's whole chain: the spawner is the group's owner (the group's
///     parent) and the group itself is not cancelled (if the group's request were published
///     before the epoch the owner verified, the owner's acquire of that epoch would make the
///     request visible to us). Otherwise it starts at 0 and checks its chain at its first
///     suspension point: spawning into a cancelled group starts the child cancelled.
///  6. Join. After the counter reached zero, the joiner closes the group (later failure reports
///     go to the runtime's unhandled-failure handler), takes the failures (adopted ones, then the
///     registry's in order of registration) and releases the registry's references.
///  7. Abandon (a `task_group` destroyed without a join, on its owner's thread while the owner
///     runs). The group is cancelled and becomes a pending child of its owner: the owner's
///     `m_spawned` is incremented (owner-only, and we are on the owner's thread), then the
///     joiner's count is removed. If that was the last count, the owner's count is taken back at
///     once; otherwise the last child finishes the group: it hands the group's failures to the
///     owner (`adopt_failure`, so the owner is cancelled and fails with them) and returns the
///     owner's own `child_completed()`, which the completion loop of task_lifecycle.cpp follows
///     ("complete that task next" when the group was the owner's last pending child).
///
/// Lifetime. Heap-allocated and reference-counted: the creator holds one reference (given to
/// the group itself when it is abandon()ed), and a child that failed while its handle existed
/// keeps the group alive for a late failure report (see task_node.hpp).
///
/// THREAD SAFETY. Owner: `create`, `spawn`, `join`, `abandon`. Any task of the group's runtime:
/// `spawn_tracked`, `request_cancel`, `running`. Anyone who keeps the group alive: `id`. Completing
/// children: `child_completed`, `adopt_failure`, `retain_for_report`, `release`.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"

#include "corun/detail/task_node.hpp"

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corun::detail {

class group_scope final : public scope_node {
 public:
  /// A new group under `owner` (the task running on this thread), holding one reference.
  [[nodiscard]] static group_scope* create(task_node& owner);

  /// Spawns `t` (valid, checked by the caller) as a child of the group (step 2). Owner only,
  /// before the join. Cannot fail.
  template <class T>
  join_handle<T> spawn(task<T> t) noexcept {
    auto frame = t.release();
    spawn_child(frame.promise(), frame);
    return join_handle<T>{&frame.promise()};
  }

  /// Spawns `t` as a tracked child (step 3) from any task of the group's runtime. Throws
  /// `std::logic_error` for an empty task, a closed (joined) group, or a caller that is not a
  /// task of the group's runtime; `std::bad_alloc`. Nothing is spawned when it throws.
  template <class T>
  join_handle<T> spawn_tracked(task<T> t, spawn_options options) {
    if (!t.valid()) {
      throw std::logic_error("corun: task_group::spawn of an empty or moved-from corun::task");
    }
    auto frame = t.release();
    frame_guard guard(frame);
    if (!options.name.empty()) {
      name_task(frame.promise(), std::move(options.name));
    }
    spawn_tracked_child(frame.promise(), frame);  // throws only before publishing
    guard.dismiss();
    return join_handle<T>{&frame.promise()};
  }

  /// Awaiting it waits until every child completed, then closes the group and yields the
  /// failures it collected (step 6): adopted ones, then those of tracked children.
  class join_awaiter {
   public:
    explicit join_awaiter(group_scope& group) noexcept : m_group(group) {}
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const noexcept {
      return m_group.join_suspend(h);
    }
    [[nodiscard]] std::vector<std::exception_ptr> await_resume() const noexcept {
      clear_wait(m_group.owner());  // the joiner is the owner
      return m_group.close();
    }

   private:
    group_scope& m_group;
  };
  /// Waits until every child completed. Once only, by the owner.
  [[nodiscard]] join_awaiter join() noexcept { return join_awaiter{*this}; }

  /// The owner gives up on joining (step 7): cancels the children and makes the group a pending
  /// child of the owner, which then waits for them. Consumes the caller's reference. On the
  /// owner's thread, while the owner runs; never after `join`.
  void abandon() noexcept;

  /// Tracked children not yet completed (a snapshot).
  [[nodiscard]] std::size_t running() const;

  /// The task the group is a child of.
  [[nodiscard]] task_node& owner() const noexcept { return *m_owner; }

  /// Unique, stable id of the group, as task dumps and debug logs show it ("group #G"); its own
  /// sequence, apart from task ids. Assigned on first use, like a task's, so creating a group
  /// (every `when_all`) does not touch a shared counter. Thread-safe.
  [[nodiscard]] std::uint64_t id() const noexcept;

  // The scope operations (scope_ops).
  void adopt_failure(std::exception_ptr error, task_node& child) noexcept;
  [[nodiscard]] resumption child_completed(bool child_failed) noexcept;
  void retain_for_report();
  void release() noexcept;

 private:
  explicit group_scope(task_node& owner) noexcept;
  ~group_scope() = default;

  void spawn_child(task_node& child, std::coroutine_handle<> frame) noexcept;
  void spawn_tracked_child(task_node& child, std::coroutine_handle<> frame);
  /// Step 5: the verified epoch a child spawned by `spawner` may start with.
  [[nodiscard]] std::uint64_t epoch_for(const task_node& spawner) const noexcept;
  /// Makes `child` runnable on this worker (steps 2 and 3, after counting).
  void launch(task_node& child, std::coroutine_handle<> frame, std::uint64_t epoch) noexcept;
  [[nodiscard]] bool join_suspend(std::coroutine_handle<> h) noexcept;
  /// Step 6: closes the group, releases the registry and returns the failures.
  [[nodiscard]] std::vector<std::exception_ptr> close() noexcept;
  /// Step 7, once the counter is zero: the failures go to the owner.
  void hand_failures_to_owner() noexcept;

  runtime_core* m_rt;
  task_node* m_owner;
  /// Step 1. acq_rel decrements publish each child's completion to whoever reaches zero.
  std::atomic<std::int64_t> m_pending{1};
  std::atomic<std::uint32_t> m_refs{1};
  /// 0 until `id()` assigns it.
  mutable std::atomic<std::uint64_t> m_id{0};
  /// Written by the joiner before its decrement; read by whoever reaches zero.
  resumption m_joiner;
  /// Step 7; written by the owner before its decrement, read by whoever reaches zero.
  bool m_abandoned = false;
  mutable std::mutex m_lock;
  /// Tracked children, one reference each (step 3).
  std::vector<task_node*> m_children;         // guarded by m_lock
  std::size_t m_sweep_at = 32;                // guarded by m_lock
  std::uint64_t m_tracked_total = 0;          // guarded by m_lock
  std::vector<std::exception_ptr> m_adopted;  // guarded by m_lock
  bool m_closed = false;                      // guarded by m_lock
};

/// Owning reference to a `group_scope`.
class group_ref {
 public:
  explicit group_ref(group_scope* group) noexcept : m_group(group) {}
  group_ref(const group_ref&) = delete;
  group_ref& operator=(const group_ref&) = delete;
  ~group_ref() { m_group->release(); }
  group_scope* operator->() const noexcept { return m_group; }
  group_scope& operator*() const noexcept { return *m_group; }

 private:
  group_scope* m_group;
};

}  // namespace corun::detail
