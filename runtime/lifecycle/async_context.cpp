// async_context, with and with_all (include/corun/async_context.hpp): the untyped half.
//
// A context's frame has no task of its own. Each step resumes it by symmetric transfer from the
// coroutine that drives it and keeps `tl_thread.current` as it is, so the frame runs in (and is
// cancelled with) whichever task drives that step:
//  1. Entering (`enter_awaiter`): the caller of `with`, or one child task per context for
//     `with_all`, resumes the fresh frame; it runs its setup and comes back at `co_yield` (or at
//     its end, if the setup threw or never yielded).
//  2. The body runs in the caller.
//  3. Exiting (`exit_awaiter`): a shielded child task of the caller puts the body's exception
//     (if any) where `co_yield` rethrows it and resumes the frame, which runs its teardown and
//     comes back at its end (or at a second `co_yield`, a misuse).
// `phase` follows these steps so that a misused context is a `std::logic_error`, never a
// resumption of a running or finished frame.
#include "corun/async_context.hpp"

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"
#include "corun/join_handle.hpp"
#include "corun/shield.hpp"
#include "corun/spawn.hpp"

#include "corun/detail/task_node.hpp"
#include "corun/detail/waiter.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corun::detail {

namespace {

using phase = context_promise_base::phase;

/// One context's setup as a child task of `with_all`'s caller: what it failed with, or null.
task<std::exception_ptr> enter_one(context_promise_base& promise) {
  std::exception_ptr failure;
  try {
    co_await enter_awaiter{promise};
  } catch (...) {
    failure = std::current_exception();
  }
  co_return failure;
}

/// Runs the teardowns of `contexts[i]` for every `i` with `selected[i]`, concurrently, each in
/// a shielded child task, its `co_yield` rethrowing `error`; returns each one's ending (null for
/// the others). Waits for all of them, whatever happens to the caller meanwhile.
task<std::vector<std::exception_ptr>> exit_selected(std::span<context_promise_base* const> contexts,
                                                    const std::vector<bool>& selected,
                                                    std::exception_ptr error) {
  std::vector<join_handle<std::exception_ptr>> exiting;
  exiting.reserve(contexts.size());
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    if (selected[i]) {
      exiting.push_back(spawn_shielded(exit_context(*contexts[i], error), "corun::with_all"));
    } else {
      exiting.emplace_back();
    }
  }
  std::vector<std::exception_ptr> endings(contexts.size());
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    if (selected[i]) {
      endings[i] = co_await exiting[i].wait_uncancellable();
    }
  }
  co_return endings;
}

}  // namespace

bool enter_awaiter::await_ready() {
  m_cancelled = checkpoint_or_ready("corun::with");
  if (m_cancelled) {
    // Not started at all: the setup never runs for a task that is already cancelled.
    return true;
  }
  if (m_promise.m_phase != phase::fresh) {
    throw std::logic_error("corun: an async_context was entered twice (a context is used once)");
  }
  return false;
}

std::coroutine_handle<> enter_awaiter::await_suspend(std::coroutine_handle<> caller) noexcept {
  m_promise.m_caller = caller;
  m_promise.m_phase = phase::entering;
  // The setup runs in the entering task: it stays the current task.
  return transfer_to(this_thread_state().current, m_promise.m_self);
}

void enter_awaiter::await_resume() {
  if (m_cancelled) {
    throw_cancelled_current();
  }
  if (m_promise.m_self.done()) {
    m_promise.m_phase = phase::done;
    if (m_promise.m_error) {
      std::rethrow_exception(std::exchange(m_promise.m_error, nullptr));
    }
    throw std::logic_error("corun: an async_context ended without co_yield");
  }
  m_promise.m_phase = phase::entered;
}

bool exit_awaiter::await_ready() {
  if (m_promise.m_phase != phase::entered) {
    throw std::logic_error("corun: exit of an async_context that is not entered");
  }
  return false;
}

std::coroutine_handle<> exit_awaiter::await_suspend(std::coroutine_handle<> caller) noexcept {
  m_promise.m_caller = caller;
  m_promise.m_injected = std::move(m_error);
  m_promise.m_phase = phase::exiting;
  return transfer_to(this_thread_state().current, m_promise.m_self);
}

std::exception_ptr exit_awaiter::await_resume() {
  m_promise.m_phase = phase::done;
  if (!m_promise.m_self.done()) {
    // Suspended at a second co_yield: its frame is destroyed there with the context.
    return std::make_exception_ptr(
        std::logic_error("corun: an async_context yielded more than once"));
  }
  return std::exchange(m_promise.m_error, nullptr);
}

task<std::exception_ptr> exit_context(context_promise_base& promise, std::exception_ptr error) {
  co_return co_await exit_awaiter{promise, std::move(error)};
}

void settle_with(const std::exception_ptr& body_error, std::exception_ptr ending, bool value_body) {
  if (ending) {
    std::rethrow_exception(std::move(ending));
  }
  // The context returned: it swallowed the body's exception, if there was one. A body with a
  // value to return has none to give then.
  if (body_error && value_body) {
    std::rethrow_exception(body_error);
  }
}

task<void> enter_all(std::span<context_promise_base* const> contexts) {
  std::vector<join_handle<std::exception_ptr>> entering;
  entering.reserve(contexts.size());
  for (context_promise_base* promise : contexts) {
    entering.push_back(spawn(enter_one(*promise)));
  }
  // Uncancellable: a context is never abandoned in the middle of its setup. The caller's cancel
  // reaches the children (they are its children) and ends their setups instead.
  std::vector<std::exception_ptr> setup_failures(contexts.size());
  std::vector<bool> entered(contexts.size(), false);
  bool any_failed = false;
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    setup_failures[i] = co_await entering[i].wait_uncancellable();
    entered[i] = setup_failures[i] == nullptr;
    any_failed = any_failed || !entered[i];
  }
  if (!any_failed) {
    co_return;
  }

  std::vector<std::exception_ptr> failures;
  bool all_cancelled = true;
  for (std::exception_ptr& failure : setup_failures) {
    if (failure) {
      all_cancelled = all_cancelled && holds_cancelled(failure);
      failures.push_back(failure);
    }
  }
  // What the entered contexts see at co_yield: the one failure as it is, several as a group.
  std::exception_ptr cause =
      failures.size() == 1 ? failures.front()
                           : std::make_exception_ptr(exception_group(
                                 "corun: with_all: " + std::to_string(failures.size()) + " of " +
                                     std::to_string(contexts.size()) + " contexts failed to enter",
                                 failures));
  std::vector<std::exception_ptr> endings = co_await exit_selected(contexts, entered, cause);
  std::vector<std::exception_ptr> teardown_failures;
  for (std::exception_ptr& ending : endings) {
    if (ending && ending != cause) {
      teardown_failures.push_back(std::move(ending));
    }
  }
  if (all_cancelled && teardown_failures.empty()) {
    if (cancel_requested(*this_thread_state().current)) {
      throw_cancelled(*this_thread_state().current);
    }
    std::rethrow_exception(failures.front());
  }
  for (std::exception_ptr& failure : teardown_failures) {
    failures.push_back(std::move(failure));
  }
  throw exception_group(
      "corun: with_all: " + std::to_string(contexts.size()) + " contexts: entering failed",
      std::move(failures));
}

task<void> exit_all(std::span<context_promise_base* const> contexts, std::exception_ptr body_error,
                    bool value_body) {
  const std::vector<bool> all(contexts.size(), true);
  std::vector<std::exception_ptr> endings = co_await exit_selected(contexts, all, body_error);
  bool passed_on = false;  // some context let the body's exception through
  std::vector<std::exception_ptr> others;
  for (std::exception_ptr& ending : endings) {
    if (!ending) {
      continue;
    }
    if (body_error && ending == body_error) {
      passed_on = true;
    } else {
      others.push_back(std::move(ending));
    }
  }
  if (others.empty()) {
    // Swallowed only if every context swallowed it, and only for a body without a value.
    if (body_error && (passed_on || value_body)) {
      std::rethrow_exception(body_error);
    }
    co_return;
  }
  const std::size_t failed = others.size();
  std::vector<std::exception_ptr> failures;
  // The caller's own cancellation is not a failure to report: it sees it at its next
  // suspension point all the same.
  if (body_error && passed_on &&
      !(holds_cancelled(body_error) && cancel_requested(*this_thread_state().current))) {
    failures.push_back(body_error);
  }
  for (std::exception_ptr& other : others) {
    failures.push_back(std::move(other));
  }
  throw exception_group("corun: with_all: " + std::to_string(failed) + " of " +
                            std::to_string(contexts.size()) + " contexts failed to exit",
                        std::move(failures));
}

}  // namespace corun::detail
