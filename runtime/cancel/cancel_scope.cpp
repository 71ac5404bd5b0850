// Cancel requests and their delivery.
//
//  1. `request_cancel` publishes one immutable request per scope (release CAS; the first message
//     wins), then bumps `g_cancel_epoch` (release).
//  2. A task's check reads the epoch relaxed; only if it moved since the task last looked does it
//     re-read it with acquire (so every request published before the bump is visible) and walk
//     its scope chain up to the first shield. Not finding a request, it remembers the epoch.
//  3. The walk is safe without locks: a scope does not complete (and is not destroyed) before
//     its children, and only the running task walks its own chain.
#include <exception>
#include <string>

#include "corun/cancelled.hpp"
#include "corun/detail/task_node.hpp"

namespace corun::detail {

cancel_epoch_cell g_cancel_epoch;

bool scope_node::request_cancel(std::string message) {
  if (m_cancel.load(std::memory_order_acquire) != nullptr) {
    return false;
  }
  auto* request = new cancel_request{std::move(message)};
  const cancel_request* expected = nullptr;
  // Release: the message is visible to whoever loads the pointer with acquire.
  if (!m_cancel.compare_exchange_strong(expected, request, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    delete request;
    return false;
  }
  // Release: a task that reads this epoch with acquire sees the request above.
  g_cancel_epoch.value.fetch_add(1, std::memory_order_release);
  return true;
}

const cancel_request* find_cancel(const task_node& node) noexcept {
  for (const scope_node* scope = &node; scope != nullptr; scope = scope->m_parent) {
    if (const cancel_request* request = scope->own_cancel()) {
      return request;
    }
    if (scope->m_shield) {
      break;
    }
  }
  return nullptr;
}

bool cancel_requested_slow(task_node& node) noexcept {
  // Acquire: pairs with the release increment in request_cancel (step 2).
  const std::uint64_t epoch = g_cancel_epoch.value.load(std::memory_order_acquire);
  if (find_cancel(node) != nullptr) {
    return true;
  }
  node.m_epoch_seen = epoch;
  return false;
}

void throw_cancelled(const task_node& node) {
  const cancel_request* request = find_cancel(node);
  throw cancelled(request != nullptr ? request->message : std::string());
}

void throw_outcome(task_node& node) {
  if (node.outcome() == task_outcome::cancelled) {
    std::string reason;
    try {
      std::rethrow_exception(node.error());
    } catch (const cancelled& c) {
      reason = c.message();
    } catch (...) {
      // The outcome is "cancelled" only when the body let `cancelled` escape.
    }
    throw task_cancelled(node.id(), node.name(), reason);
  }
  std::rethrow_exception(node.error());
}

}  // namespace corun::detail
