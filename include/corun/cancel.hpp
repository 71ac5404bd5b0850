/// \file
/// Cancellation tokens: `cancel_token`, `cancel_source` and `cancel_callback`.
///
/// Every scope of corun's tree (a task, a group) and every `cancel_source` is a cancellation
/// node; a token names one. A node counts as cancelled when it, or an ancestor up to the first
/// shield, was asked to cancel, so a token derived from a parent is cancelled with the parent.
/// `this_task::token()` is the token of the running task: it is cancelled when the task is.
///
/// Callbacks run once, when the token becomes cancelled (or at once, inline, if it already is),
/// on the thread that requested the cancellation. As with `std::stop_callback`, destroying a
/// `cancel_callback` waits for its function if it is running on another thread, and does not
/// wait if it is destroyed from inside that function. corun's own awaitables use the same
/// mechanism to wake suspended waiters; their callbacks only schedule the waiter, never resume
/// it inline.
#pragma once

#include "corun/detail/cancel_registration.hpp"
#include "corun/detail/task_node.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace corun {

namespace detail {
/// Keeps `scope` alive (and its parents, which every scope keeps alive) for a token.
void retain_scope(scope_node& scope) noexcept;
void release_scope(scope_node& scope) noexcept;
[[nodiscard]] scope_node* create_source_scope(scope_node* parent);
}  // namespace detail

/// A copyable view of a cancellation node. Thread-safe. A default-constructed token is never
/// cancelled. Holding a token keeps its node alive (not the task's work: a finished task's token
/// simply stays as it was).
class cancel_token {
 public:
  cancel_token() noexcept = default;
  cancel_token(const cancel_token& other) noexcept : m_scope(other.m_scope) {
    if (m_scope != nullptr) {
      detail::retain_scope(*m_scope);
    }
  }
  cancel_token(cancel_token&& other) noexcept : m_scope(std::exchange(other.m_scope, nullptr)) {}
  cancel_token& operator=(cancel_token other) noexcept {
    std::swap(m_scope, other.m_scope);
    return *this;
  }
  ~cancel_token() {
    if (m_scope != nullptr) {
      detail::release_scope(*m_scope);
    }
  }

  /// The node or an unshielded ancestor was asked to cancel.
  [[nodiscard]] bool cancel_requested() const noexcept {
    return m_scope != nullptr && detail::scope_chain_cancelled(*m_scope);
  }
  /// False for a default-constructed (or moved-from) token, which is never cancelled.
  [[nodiscard]] bool can_be_cancelled() const noexcept { return m_scope != nullptr; }
  /// The message of the request that cancelled it, if it is cancelled.
  [[nodiscard]] std::optional<std::string> reason() const;

  /// Adopts a reference the caller already holds (corun internals).
  explicit cancel_token(detail::scope_node* owned) noexcept : m_scope(owned) {}
  [[nodiscard]] detail::scope_node* scope() const noexcept { return m_scope; }

 private:
  detail::scope_node* m_scope = nullptr;
};

/// Owns a cancellation node that code can cancel: `request_cancel(msg)` cancels it and every
/// token and source derived from it. Move-only; thread-safe.
class cancel_source {
 public:
  /// A new, independent node.
  cancel_source() : m_token(detail::create_source_scope(nullptr)) {}
  /// A node cancelled whenever `parent` is (and on its own `request_cancel`). A default token as
  /// parent makes an independent node.
  explicit cancel_source(const cancel_token& parent)
      : m_token(detail::create_source_scope(parent.scope())) {}
  cancel_source(cancel_source&&) noexcept = default;
  cancel_source& operator=(cancel_source&&) noexcept = default;
  cancel_source(const cancel_source&) = delete;
  cancel_source& operator=(const cancel_source&) = delete;
  ~cancel_source() = default;

  /// Asks to cancel; the first request's message is kept. Returns false if this node was already
  /// asked (requests of its parents do not count). Runs the callbacks now due, on this thread.
  bool request_cancel(std::string message = {}) {
    return node().request_cancel(std::move(message));
  }
  [[nodiscard]] bool cancel_requested() const noexcept { return m_token.cancel_requested(); }
  [[nodiscard]] cancel_token token() const noexcept { return m_token; }

 private:
  detail::scope_node& node() const {
    if (m_token.scope() == nullptr) {
      throw std::logic_error("corun: use of a moved-from corun::cancel_source");
    }
    return *m_token.scope();
  }

  cancel_token m_token;
};

/// Runs `fn()` once when `token` becomes cancelled, on the cancelling thread; at once, in the
/// constructor, if it already is. `fn` must not throw (an exception ends in `std::terminate`).
/// The destructor deregisters it; if `fn` is running on another thread it waits for it to
/// return (so `fn` may use what the destructor's owner is about to free), and if it is called
/// from inside `fn` it does not wait. Neither copyable nor movable (it is registered by address).
template <class F>
  requires std::is_nothrow_move_constructible_v<F> && std::is_invocable_v<F&>
class cancel_callback {
 public:
  cancel_callback(cancel_token token, F fn)
      : m_token(std::move(token)), m_registration(m_token.scope(), std::move(fn)) {
    if (m_token.scope() != nullptr && !detail::register_cancel(m_registration)) {
      m_registration.fn();  // already cancelled
    }
  }
  cancel_callback(const cancel_callback&) = delete;
  cancel_callback& operator=(const cancel_callback&) = delete;
  ~cancel_callback() { detail::deregister_cancel(m_registration); }

 private:
  struct registration : detail::cancel_registration {
    registration(const detail::scope_node* node, F f)
        : cancel_registration(node, &invoke_fn, kind::user), fn(std::move(f)) {}
    static void invoke_fn(cancel_registration& r) noexcept { static_cast<registration&>(r).fn(); }
    F fn;
  };

  cancel_token m_token;
  registration m_registration;
};

template <class F>
cancel_callback(cancel_token, F) -> cancel_callback<F>;

}  // namespace corun
