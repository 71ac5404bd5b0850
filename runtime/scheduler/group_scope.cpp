// The group scope's join and fail-fast protocol: see include/corun/detail/group_scope.hpp.
#include "corun/detail/group_scope.hpp"

#include "corun/exception_group.hpp"

#include "scheduler/runtime_core.hpp"
#include "scheduler/task_extras.hpp"
#include "scheduler/worker.hpp"

#include <string>

namespace corun::detail {

group_scope::group_scope(task_node& owner) noexcept
    : scope_node(scope_kind::group, &owner), m_rt(owner.m_rt) {}

group_scope* group_scope::create(task_node& owner) { return new group_scope(owner); }

void group_scope::spawn_child(task_node& child, std::coroutine_handle<> frame) noexcept {
  // Relaxed: the joiner's own count keeps m_pending above zero while it spawns; the queue push
  // below publishes the child, whose decrement comes after it runs.
  m_pending.fetch_add(1, std::memory_order_relaxed);
  task_node& owner = *tl_thread.current;
  init_spawned(child, frame, *this, *m_rt, owner.m_epoch_seen.load(std::memory_order_relaxed));
  auto& self = *static_cast<worker*>(tl_thread.worker);
  worker_counters::bump(self.counters.spawned);
  self.push(child);
}

bool group_scope::join_suspend(std::coroutine_handle<> h) noexcept {
  m_joiner = resumption{tl_thread.current, h};
  // acq_rel: release publishes m_joiner to the last child; acquire sees the children's
  // completions if we are last.
  return m_pending.fetch_sub(1, std::memory_order_acq_rel) != 1;
}

void group_scope::close_reports() noexcept {
  std::vector<std::exception_ptr> late;
  {
    const std::lock_guard lock(m_lock);
    m_closed = true;
    late.swap(m_adopted);
  }
  // Nobody takes adopted failures from a plain group_scope: they are unhandled.
  for (const std::exception_ptr& error : late) {
    m_rt->root().report(task_failure{0, "when_all child", error});
  }
}

resumption group_scope::child_completed(bool child_failed) noexcept {
  if (child_failed) {
    request_cancel_nothrow("a sibling task failed");
  }
  // acq_rel: as in join_suspend.
  if (m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    return m_joiner;
  }
  return {};
}

void group_scope::adopt_failure(std::exception_ptr error, task_node& child) noexcept {
  {
    const std::lock_guard lock(m_lock);
    if (!m_closed) {
      m_adopted.push_back(std::move(error));
      return;
    }
  }
  report_unhandled(child, error);
}

void group_scope::retain_for_report() { m_refs.fetch_add(1, std::memory_order_relaxed); }

void group_scope::release() noexcept {
  // acq_rel: the last release sees every use of the group.
  if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete this;
  }
}

}  // namespace corun::detail
