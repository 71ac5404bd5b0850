/// \file
/// Cold per-task data, allocated only for tasks that need it (a name, adopted failures).
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/waiter.hpp"

#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

namespace corun::detail {

struct task_extras {
  /// Set before the task is published; immutable afterwards.
  std::string name;
  std::mutex lock;
  /// Failures of children nobody observed; folded into the outcome at completion.
  std::vector<std::exception_ptr> adopted;  // guarded by lock
  /// Set at completion; later reports are escalated to the runtime's root.
  bool closed = false;  // guarded by lock
  /// Links of the live-task registry (runtime/trace/task_tracker.hpp), guarded by its shard.
  task_node* live_prev = nullptr;
  task_node* live_next = nullptr;
  bool tracked = false;
  /// While tracked, for dumps: the task this one joins or starts (an address only, never
  /// dereferenced), valid when `task_node::m_wait` says join or start. Written by the task's
  /// own thread, read racily (relaxed) by dumps.
  std::atomic<const task_node*> awaiting{nullptr};
  /// Tasks waiting for this one to complete without taking its result (`task_handle::wait`);
  /// see runtime/scheduler/done_waiters.cpp.
  spin_lock done_lock;
  waiter_queue done_waiters;  // guarded by done_lock
  bool done_drained = false;  // guarded by done_lock
};

/// The completer saw DONE_WAITERS: wakes every task waiting in `task_handle::wait`, then drops
/// the reference that came with the bit (which may destroy `node`).
void drain_done_waiters(task_node& node) noexcept;

/// The task's extras, created on first use (thread-safe).
task_extras& ensure_extras(task_node& node);

/// "task #12 'name'" for messages.
[[nodiscard]] std::string task_label(const task_node& node);

/// Hands a failure nobody can observe any more to the runtime that `child` keeps alive (see
/// `m_held_root`), or to stderr.
void report_unhandled(task_node& child, const std::exception_ptr& error) noexcept;

/// Completes `node`, whose body and children are all done (the completion protocol of
/// task_lifecycle.cpp); returns what to run next on this worker.
[[nodiscard]] std::coroutine_handle<> complete_task(task_node& node) noexcept;
/// Another reference to a task's locals (null stays null).
[[nodiscard]] task_locals* share_task_locals(task_locals* locals) noexcept;
/// Prepares a spawned task: links it under `parent`, two references (body and handle), and the
/// task-locals of the task running on this thread, its spawner (not a group's host). The free
/// `spawn` of a child of the running task does the same steps in `spawn_child`.
void init_spawned(task_node& child, std::coroutine_handle<> frame, scope_node& parent,
                  runtime_core& rt, std::uint64_t epoch_seen) noexcept;

}  // namespace corun::detail
