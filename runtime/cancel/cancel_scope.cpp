// Cancel requests and their delivery.
//
//  1. `request_cancel` publishes one immutable request per scope (seq_cst CAS; the first message
//     wins), bumps `g_cancel_epoch` (release), then fires the registered cancel callbacks of the
//     scope's subtree (cancel_registry.cpp), which wake suspended waiters.
//  2. A task's check reads the epoch relaxed; only if it moved since the task last looked does it
//     re-read it with acquire (so every request published before the bump is visible) and walk
//     its scope chain up to the first shield, or to the first ancestor task that already found
//     its chain clean at this epoch. Not finding a request, it remembers the epoch.
//  3. The walk is safe without locks: a scope does not complete (and is not destroyed) before
//     its children, and only the running task walks its own chain.
#include "corun/cancelled.hpp"

#include "corun/detail/cancel_registration.hpp"
#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

#if defined(__GLIBCXX__)
#include <cxxabi.h>
#endif

#include <exception>
#include <optional>
#include <string>
#include <typeinfo>

namespace corun::detail {

cancel_epoch_cell g_cancel_epoch;

const cancel_request scope_node::out_of_memory_request{
    "cancelled (no memory for the reason)", cancel_origin::user, {}};

void scope_node::free_cancel_request(const cancel_request* request) noexcept {
  if (request != &out_of_memory_request) {
    delete request;
  }
}

bool scope_node::request_cancel(std::string message, cancel_origin origin, std::string culprit) {
  if (m_cancel.load(std::memory_order_acquire) != nullptr) {
    return false;
  }
  auto* request = new cancel_request{std::move(message), origin, std::move(culprit)};
  const cancel_request* expected = nullptr;
  // seq_cst: release makes the message visible to whoever loads the pointer with acquire; the
  // total order is step 2 of cancel_registry.cpp (no registration is missed).
  if (!m_cancel.compare_exchange_strong(expected, request, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
    delete request;
    return false;
  }
  // Release: a task that reads this epoch with acquire sees the request above. seq_cst: a
  // registration that reads the epoch from before this bump is seen by the visit below (step 2
  // of cancel_registry.cpp, the epoch variant). Either is the same locked add on x86.
  g_cancel_epoch.value.fetch_add(1, std::memory_order_seq_cst);
  fire_cancel_registrations();
  return true;
}

namespace {

/// The request that applies to `node`, walking up to the first shield, or (when `epoch` is not
/// zero) to the first ancestor task that found its chain clean at `epoch`: every request whose
/// epoch bump that ancestor's check could see, ours sees too.
const cancel_request* walk(const task_node& node, std::uint64_t epoch) noexcept {
  for (const scope_node* scope = &node; scope != nullptr; scope = scope->m_parent) {
    if (const cancel_request* request = scope->own_cancel()) {
      return request;
    }
    if (scope->m_shield) {
      break;
    }
    if (epoch != 0 && scope != &node && scope->kind() == scope_kind::task &&
        static_cast<const task_node*>(scope)->m_epoch_seen.load(std::memory_order_relaxed) ==
            epoch) {
      break;
    }
  }
  return nullptr;
}

}  // namespace

void scope_node::request_cancel_nothrow(const char* message, cancel_origin origin) noexcept {
  try {
    request_cancel(message, origin);
    return;
  } catch (...) {
    // No memory for the message: publish the static request (never deleted, see ~scope_node).
  }
  const cancel_request* expected = nullptr;
  // seq_cst: as in request_cancel.
  if (m_cancel.compare_exchange_strong(expected, &out_of_memory_request, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
    // seq_cst: as in request_cancel.
    g_cancel_epoch.value.fetch_add(1, std::memory_order_seq_cst);
    fire_cancel_registrations();
  }
}

const cancel_request* find_cancel(const task_node& node) noexcept { return walk(node, 0); }

namespace {

/// How a cancelled task names the scope the request was made on.
std::string scope_label(const scope_node& scope) {
  switch (scope.kind()) {
    case scope_kind::task:
      return task_label(static_cast<const task_node&>(scope));
    case scope_kind::group:
      return "task_group";
    case scope_kind::root:
      return "runtime";
    case scope_kind::source:
      return "cancel_source";
    case scope_kind::persistent:
      return "persistent_task_group";
  }
  return "scope";
}

}  // namespace

std::optional<cancelled> cancellation_of(const task_node& node) {
  for (const scope_node* scope = &node; scope != nullptr; scope = scope->m_parent) {
    if (const cancel_request* request = scope->own_cancel()) {
      return cancelled(request->message, request->origin, request->culprit,
                       scope == &node ? std::string() : scope_label(*scope));
    }
    if (scope->m_shield) {
      break;
    }
  }
  return std::nullopt;
}

bool cancel_requested_slow(task_node& node) noexcept {
  // Acquire: pairs with the release increment in request_cancel (step 2).
  const std::uint64_t epoch = g_cancel_epoch.value.load(std::memory_order_acquire);
  if (walk(node, epoch) != nullptr) {
    return true;
  }
  node.m_epoch_seen.store(epoch, std::memory_order_relaxed);
  return false;
}

std::uint64_t clean_epoch_of_root(const scope_node& root) noexcept {
  // Acquire as in cancel_requested_slow: a request published before this epoch is visible.
  const std::uint64_t epoch = g_cancel_epoch.value.load(std::memory_order_acquire);
  return root.own_cancel() == nullptr ? epoch : 0;
}

bool current_exception_is_cancelled() noexcept {
#if defined(__GLIBCXX__)
  // The Itanium ABI names the type of the exception in flight without rethrowing it.
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type != nullptr && *type == typeid(cancelled);
#else
  return false;
#endif
}

bool holds_cancelled(const std::exception_ptr& error) noexcept {
  if (!error) {
    return false;
  }
  try {
    std::rethrow_exception(error);
  } catch (const cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

void throw_cancelled(const task_node& node) {
  std::optional<cancelled> why = cancellation_of(node);
  throw why.has_value() ? *why : cancelled();
}

void throw_outcome(task_node& node) {
  if (node.outcome() == task_outcome::cancelled) {
    std::string reason;
    try {
      std::rethrow_exception(node.error());
    } catch (const cancelled& c) {
      reason = c.describe();
    } catch (...) {
      // The outcome is "cancelled" only when the body let `cancelled` escape.
    }
    throw task_cancelled(node.id(), node.name(), reason);
  }
  std::rethrow_exception(node.error());
}

}  // namespace corun::detail

namespace corun {

std::string cancelled::describe() const {
  const state& s = *m_state;
  std::string text;
  switch (s.origin) {
    case cancel_origin::child_failed:
      text = "cancelled because child " + s.culprit + " failed";
      break;
    case cancel_origin::sibling_failed:
      text = "cancelled because sibling " + (s.culprit.empty() ? "task" : s.culprit) + " failed";
      break;
    case cancel_origin::deadline:
      text = "cancelled: deadline exceeded";
      break;
    case cancel_origin::signal:
      text = "cancelled by a signal";
      break;
    case cancel_origin::user:
    case cancel_origin::scope_exit:
    case cancel_origin::shutdown:
      text = "cancelled";
      break;
  }
  if (!s.message.empty()) {
    text += ": " + s.message;
  }
  // A sibling's failure is news whatever scope carried it; elsewhere say where it came from.
  if (!s.requested_on.empty() && s.origin != cancel_origin::sibling_failed) {
    text += " (requested on " + s.requested_on + ")";
  }
  return text;
}

}  // namespace corun
