/// \file
/// `group_scope`: a scope whose children are joined together and which fails fast (a child's
/// failure cancels its siblings). The mechanism under `when_all`.
///
/// Protocol. `m_pending` starts at 1, the joiner's own count, so it cannot reach zero while the
/// joiner is still spawning. Each spawn adds one (relaxed: the spawn's queue push publishes the
/// child, and the child's decrement comes after its pop). `join` removes the joiner's count;
/// whoever brings the counter to zero, the joiner or the last child, resumes the joiner.
///
/// Lifetime. Heap-allocated and reference-counted: a child that failed while its handle existed
/// keeps the group alive for a late failure report (see task_node.hpp).
#pragma once

#include "corun/join_handle.hpp"
#include "corun/task.hpp"

#include "corun/detail/task_node.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace corun::detail {

class group_scope final : public scope_node {
 public:
  /// A new group under `owner` (the task running on this thread), holding one reference.
  [[nodiscard]] static group_scope* create(task_node& owner);

  /// Spawns `t` (valid, checked by the caller) as a child of the group. Cannot fail, so a
  /// caller spawning several children never leaves some running in a group it cannot join.
  template <class T>
  join_handle<T> spawn(task<T> t) noexcept {
    auto frame = t.release();
    spawn_child(frame.promise(), frame);
    return join_handle<T>{&frame.promise()};
  }

  class join_awaiter {
   public:
    explicit join_awaiter(group_scope& group) noexcept : m_group(group) {}
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const noexcept {
      return m_group.join_suspend(h);
    }
    void await_resume() const noexcept { m_group.close_reports(); }

   private:
    group_scope& m_group;
  };
  /// Waits until every child completed. Once only.
  [[nodiscard]] join_awaiter join() noexcept { return join_awaiter{*this}; }

  void adopt_failure(std::exception_ptr error, task_node& child) noexcept override;
  [[nodiscard]] resumption child_completed(bool child_failed) noexcept override;
  void retain_for_report() override;
  void release() noexcept override;

 private:
  group_scope(task_node& owner) noexcept;
  ~group_scope() override = default;

  void spawn_child(task_node& child, std::coroutine_handle<> frame) noexcept;
  [[nodiscard]] bool join_suspend(std::coroutine_handle<> h) noexcept;
  /// After the join: failures reported later go to the runtime's unhandled-failure handler.
  void close_reports() noexcept;

  runtime_core* m_rt;
  std::atomic<std::int64_t> m_pending{1};
  std::atomic<std::uint32_t> m_refs{1};
  resumption m_joiner;
  std::mutex m_lock;
  std::vector<std::exception_ptr> m_adopted;
  bool m_closed = false;
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
