// The group scope's join, fail-fast and abandon protocol: see include/corun/detail/group_scope.hpp
// (the numbered steps below refer to it).
#include "corun/detail/group_scope.hpp"

#include "corun/exception_group.hpp"

#include "scheduler/runtime_core.hpp"
#include "scheduler/task_extras.hpp"
#include "scheduler/worker.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

namespace corun::detail {

namespace {

/// Registry references to drop once the group's lock is released: dropping the last one destroys
/// a frame, whose destructors are user code that must not run under our lock.
class deferred_releases {
 public:
  deferred_releases() = default;
  deferred_releases(const deferred_releases&) = delete;
  deferred_releases& operator=(const deferred_releases&) = delete;
  ~deferred_releases() {
    for (task_node* node : list) {
      release_ref(*node);
    }
  }
  std::vector<task_node*> list;
};

/// Below this many tracked children the registry is never swept.
constexpr std::size_t min_sweep = 32;

/// The registered children not yet completed. The caller holds the group's lock.
std::size_t count_running(const std::vector<task_node*>& children) noexcept {
  return static_cast<std::size_t>(std::count_if(
      children.begin(), children.end(), [](const task_node* node) { return !node->done(); }));
}

}  // namespace

group_scope::group_scope(task_node& owner) noexcept
    : scope_node(scope_kind::group, &owner, scope_ops_of<group_scope>),
      m_rt(owner.m_rt),
      m_owner(&owner) {}

group_scope* group_scope::create(task_node& owner) { return new group_scope(owner); }

std::uint64_t group_scope::epoch_for(const task_node& spawner) const noexcept {
  if (&spawner == m_owner && own_cancel() == nullptr) {
    return spawner.m_epoch_seen.load(std::memory_order_relaxed);  // step 5
  }
  return 0;
}

void group_scope::launch(task_node& child, std::coroutine_handle<> frame,
                         std::uint64_t epoch) noexcept {
  init_spawned(child, frame, *this, *m_rt, epoch);
  auto& self = *static_cast<worker*>(tl_thread.worker);
  worker_counters::bump(self.counters.spawned);
  self.push(child);
}

void group_scope::spawn_child(task_node& child, std::coroutine_handle<> frame) noexcept {
  // Step 2. Relaxed: the joiner's own count keeps m_pending above zero while it spawns; the
  // queue push publishes the child, whose decrement comes after it runs.
  m_pending.fetch_add(1, std::memory_order_relaxed);
  launch(child, frame, epoch_for(*tl_thread.current));
}

void group_scope::spawn_tracked_child(task_node& child, std::coroutine_handle<> frame) {
  const task_node* spawner = tl_thread.current;
  if (spawner == nullptr || spawner->m_rt != m_rt) {
    throw std::logic_error(
        "corun: task_group::spawn called outside a task of the group's runtime (spawn from a "
        "task of that runtime, or use runtime::spawn)");
  }
  deferred_releases finished;  // destroyed after the lock below is released
  {
    const std::lock_guard lock(m_lock);
    if (m_children.size() >= m_sweep_at) {
      // Step 3: drop the finished children that did not fail (failed ones stay for the join).
      finished.list.reserve(m_children.size());  // may throw: nothing changed yet
      std::size_t kept = 0;
      for (task_node* node : m_children) {
        if (node->done() && node->outcome() != task_outcome::error) {
          finished.list.push_back(node);
        } else {
          m_children[kept++] = node;
        }
      }
      m_children.resize(kept);
      m_sweep_at = std::max(min_sweep, 2 * kept);
    }
    m_children.push_back(&child);  // may throw: nothing counted yet
    // Step 1: count the child unless the group already reached zero (joined). Relaxed: as in
    // spawn_child; the lock orders the registration before the joiner reads the registry.
    std::int64_t count = m_pending.load(std::memory_order_relaxed);
    do {
      if (count == 0) {
        m_children.pop_back();
        throw std::logic_error("corun: spawn into a task_group that was already joined");
      }
    } while (!m_pending.compare_exchange_weak(count, count + 1, std::memory_order_relaxed));
    ++m_tracked_total;
  }
  init_spawned(child, frame, *this, *m_rt, epoch_for(*spawner));
  child.add_ref();  // the registry's reference
  auto& self = *static_cast<worker*>(tl_thread.worker);
  worker_counters::bump(self.counters.spawned);
  self.push(child);
}

std::uint64_t group_scope::id() const noexcept {
  std::uint64_t id = m_id.load(std::memory_order_relaxed);
  if (id != 0) {
    return id;
  }
  static std::atomic<std::uint64_t> next_id{1};
  // Relaxed: ids only need to be unique; the CAS makes every reader agree on one.
  const std::uint64_t fresh = next_id.fetch_add(1, std::memory_order_relaxed);
  if (m_id.compare_exchange_strong(id, fresh, std::memory_order_relaxed)) {
    return fresh;
  }
  return id;
}

std::size_t group_scope::running() const {
  const std::lock_guard lock(m_lock);
  return count_running(m_children);
}

bool group_scope::join_suspend(std::coroutine_handle<> h) noexcept {
  task_node& self = *tl_thread.current;
  leave_stack(self);  // we may wait long: our inline joiners need their cancel wake-ups
  if (CORUN_UNLIKELY(m_rt->tracker() != nullptr)) {
    // Relaxed: read racily by dumps; cleared by the join's await_resume. Before the decrement:
    // afterwards the last child may resume us.
    self.m_wait.store(static_cast<std::uint8_t>(wait_kind::group), std::memory_order_relaxed);
  }
  m_joiner = resumption{&self, h};
  // acq_rel: release publishes m_joiner to the last child; acquire sees the children's
  // completions if we are last.
  return m_pending.fetch_sub(1, std::memory_order_acq_rel) != 1;
}

std::vector<std::exception_ptr> group_scope::close() noexcept {
  std::vector<std::exception_ptr> failures;
  deferred_releases children;
  {
    const std::lock_guard lock(m_lock);
    m_closed = true;
    failures.swap(m_adopted);
    children.list.swap(m_children);
  }
  // Every child is done: its DONE was published before its decrement of m_pending, which the
  // counter's acq_rel chain ordered before our resumption.
  for (task_node* child : children.list) {
    if (child->outcome() != task_outcome::error) {
      continue;
    }
    child->mark_observed();  // the group reports it: no late report when the handle goes
    try {
      failures.push_back(child->error());
    } catch (...) {
      report_unhandled(*child, child->error());  // no memory to keep it: not lost either
    }
  }
  return failures;
}

void group_scope::hand_failures_to_owner() noexcept {
  std::vector<std::exception_ptr> adopted;
  deferred_releases children;
  {
    const std::lock_guard lock(m_lock);
    m_closed = true;
    adopted.swap(m_adopted);
    children.list.swap(m_children);
  }
  // Only untracked children adopt failures into a group, and those belong to when_all, when_any
  // and with_task_group, which always join: nobody can take these, so they are unhandled.
  for (const std::exception_ptr& error : adopted) {
    m_rt->root().report(task_failure{0, "task_group child", error});
  }
  for (task_node* child : children.list) {
    if (child->outcome() == task_outcome::error) {
      child->mark_observed();
      m_owner->adopt_failure(child->error(), *child);  // the owner is cancelled and fails with it
    }
  }
}

void group_scope::abandon() noexcept {
  task_node& owner = *m_owner;
  if (tl_thread.current != &owner) {
    // The owner may already be past the point where it could wait for the children.
    std::fputs("corun: a task_group was destroyed outside the task that created it; aborting\n",
               stderr);
    std::terminate();
  }
#ifndef NDEBUG
  {
    // One look under the lock, so that the count printed is the count the choice was made on
    // (children keep completing meanwhile: it is a snapshot, like `size()`).
    std::uint64_t spawned = 0;
    std::size_t still_running = 0;
    {
      const std::lock_guard lock(m_lock);
      spawned = m_tracked_total;
      still_running = count_running(m_children);
    }
    const auto owner_id = static_cast<unsigned long long>(owner.id());
    const auto group_id = static_cast<unsigned long long>(id());
    if (still_running != 0) {
      std::fprintf(stderr,
                   "corun: task #%llu destroyed task_group #%llu without join(): its %zu running "
                   "%s cancelled and the task waits for %s\n",
                   owner_id, group_id, still_running,
                   still_running == 1 ? "child is" : "children are",
                   still_running == 1 ? "it" : "them");
    } else if (spawned != 0) {
      std::fprintf(stderr,
                   "corun: task #%llu destroyed task_group #%llu without join(): its %llu "
                   "%s already completed\n",
                   owner_id, group_id, static_cast<unsigned long long>(spawned),
                   spawned == 1 ? "child had" : "children had");
    }
  }
#endif
  // Relaxed: only a hint; cancelling a group whose children all completed is harmless.
  if (m_pending.load(std::memory_order_relaxed) > 1) {
    request_cancel_nothrow("corun: the task_group was destroyed without join()");
  }
  m_abandoned = true;
  ++owner.m_spawned;  // step 7: the group is now a pending child of the owner
  // acq_rel: release publishes m_abandoned to the last child; acquire sees the children's
  // completions if we are last.
  if (m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    --owner.m_spawned;
    hand_failures_to_owner();
    release();
  }
}

resumption group_scope::child_completed(bool child_failed) noexcept {
  if (child_failed) {
    // step 4 (the completing child normally published a request naming itself already)
    request_cancel_nothrow("a sibling task failed", cancel_origin::sibling_failed);
  }
  // acq_rel: as in join_suspend.
  if (m_pending.fetch_sub(1, std::memory_order_acq_rel) != 1) {
    return {};
  }
  if (!m_abandoned) {
    return m_joiner;
  }
  // Step 7: the last child of an abandoned group completes it in its owner.
  task_node& owner = *m_owner;
  hand_failures_to_owner();
  release();  // the reference abandon() gave the group; `this` may be gone now
  return owner.child_completed(false);
}

void group_scope::adopt_failure(std::exception_ptr error, task_node& child) noexcept {
  {
    const std::lock_guard lock(m_lock);
    if (!m_closed) {
      try {
        // Moved only if the push succeeds (push_back's strong guarantee); otherwise still ours.
        m_adopted.push_back(std::move(error));
        return;
      } catch (...) {
        // No memory to keep it: reported as unhandled below, never lost.
      }
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
