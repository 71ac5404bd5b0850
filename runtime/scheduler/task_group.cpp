// task_group, with_task_group and the start() rendezvous; the group's counting, registry and
// abandon protocol live in group_scope.cpp.
//
// start(fn), in order:
//  1. The caller's `start` coroutine (its frame holds the start_signal) spawns run_started(fn)
//     into the group and awaits the signal.
//  2. The child runs fn(status). Exactly one of these notifies the signal, after writing the
//     payload: `status.started(value)`; fn failing before it (the error, which the child then
//     swallows, so the group never sees it); fn ending cancelled before it (`task_cancelled`,
//     the child still ends cancelled); fn returning without it (`std::logic_error`).
//  3. notify() publishes the payload with a release exchange; if the caller already waits, it is
//     scheduled (pushed on the notifying worker, where it resumes), else it finds the signal
//     ready and does not suspend. A waiter that suspends first registers the cancel wake-ups of
//     its inline joiners (leave_stack), as every corun suspension point does, and, when the
//     runtime tracks tasks, shows itself in dumps as starting the child (`wait_kind::start`).
//  4. The child never touches the signal again: the caller's frame may be gone as soon as the
//     caller runs.
#include "corun/task_group.hpp"

#include "corun/spawn.hpp"

#include "scheduler/runtime_core.hpp"
#include "trace/task_tracker.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace corun {

namespace detail {

bool start_signal_base::wait(std::coroutine_handle<> h) noexcept {
  task_node& self = *tl_thread.current;
  leave_stack(self);  // we may wait long: our inline joiners need their cancel wake-ups
  if (CORUN_UNLIKELY(self.m_rt->tracker() != nullptr)) {
    // Cleared by start_awaiter::await_resume. Before the CAS: afterwards the setter may resume
    // us.
    task_tracker::note_wait(self, wait_kind::start, m_child);
  }
  m_waiter = resumption{&self, h};
  std::uint32_t expected = empty;
  // acq_rel on success: release publishes m_waiter to the setter. Acquire on failure: the
  // setter came first, its payload becomes visible.
  return m_state.compare_exchange_strong(expected, waiting, std::memory_order_acq_rel,
                                         std::memory_order_acquire);
}

void start_signal_base::notify() noexcept {
  // acq_rel: release publishes the payload to the waiter; acquire makes its registration
  // (m_waiter) visible when it already waits.
  if (m_state.exchange(ready, std::memory_order_acq_rel) != waiting) {
    return;
  }
  // The waiter stays suspended until it is scheduled below: m_waiter is still valid.
  const resumption waiter = m_waiter;
  waiter.node->m_resume = waiter.handle;
  // On a worker of the waiter's runtime (the child's) a push on the local deque; from
  // elsewhere the allocation-free wake-up list: a wake-up cannot be lost.
  waiter.node->m_rt->schedule_nothrow(*waiter.node);
}

void start_signal_base::rethrow_if_failed() const {
  if (!m_error) {
    return;
  }
  if (m_child_cancelled) {
    task_node& self = *tl_thread.current;
    if (cancel_requested(self)) {
      throw_cancelled(self);  // our own cancellation first, as when awaiting a join_handle
    }
  }
  std::rethrow_exception(m_error);
}

std::exception_ptr cancelled_before_started(const cancelled& reason) noexcept {
  try {
    task_node& self = *tl_thread.current;
    return std::make_exception_ptr(task_cancelled(self.id(), self.name(), reason.message()));
  } catch (...) {
    return std::current_exception();  // no memory to describe it
  }
}

std::exception_ptr returned_without_started() noexcept {
  try {
    return std::make_exception_ptr(
        std::logic_error("corun: the task started by task_group::start returned without calling "
                         "task_status::started()"));
  } catch (...) {
    return std::current_exception();  // no memory to describe it
  }
}

void settle_group_join(std::vector<std::exception_ptr> failures, task_node& owner) {
  if (!failures.empty()) {
    const std::size_t count = failures.size();
    throw exception_group("corun: task_group: " + std::to_string(count) +
                              (count == 1 ? " task failed" : " tasks failed"),
                          std::move(failures));
  }
  if (cancel_requested(owner)) {
    throw_cancelled(owner);
  }
}

void settle_with_task_group(std::exception_ptr body_error, std::vector<std::exception_ptr> failures,
                            bool body_cancelled, const std::exception_ptr& body_cancellation) {
  if (body_error) {
    const std::size_t children = failures.size();
    failures.insert(failures.begin(), std::move(body_error));
    throw exception_group(
        "corun: with_task_group: the body failed" +
            (children == 0 ? std::string()
                           : " and " + std::to_string(children) +
                                 (children == 1 ? " task failed" : " tasks failed")),
        std::move(failures));
  }
  if (!failures.empty()) {
    const std::size_t count = failures.size();
    throw exception_group("corun: with_task_group: " + std::to_string(count) +
                              (count == 1 ? " task failed" : " tasks failed"),
                          std::move(failures));
  }
  if (body_cancelled) {
    task_node& self = *tl_thread.current;
    if (cancel_requested(self)) {
      throw_cancelled(self);
    }
    std::rethrow_exception(body_cancellation);  // set by run_body for a cancelled body
  }
}

}  // namespace detail

task_group::task_group()
    : m_scope(detail::group_scope::create(detail::current_task_for("task_group"))) {}

task_group::~task_group() {
  if (m_state == state::joined) {
    m_scope->release();
    return;
  }
  // Not joined: a join that started is still waiting, and its task is suspended, so the only
  // way here is a group whose join never started.
  m_scope->abandon();
}

void task_group::begin_join() {
  if (m_state != state::open) {
    throw std::logic_error("corun: task_group::join() called twice");
  }
  if (detail::tl_thread.current != &m_scope->owner()) {
    throw std::logic_error(
        "corun: task_group::join() must be awaited by the task that created the group");
  }
  m_state = state::joining;
}

}  // namespace corun
