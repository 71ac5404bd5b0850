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

#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace corun {

namespace detail {
/// What the copies of one token share: the node, and one reference on it and on every scope
/// above it up to the first shield, taken once when the token is made. A token's walk up the
/// chain therefore never meets a freed scope, however long it outlives the tasks and groups
/// there (children do not keep their parents alive on their own).
struct token_state {
  std::atomic<std::uint32_t> refs{1};
  scope_node* scope;
};
/// A token state for `scope`, which the caller keeps alive during the call (a running task, a
/// new source). Takes the references on the chain.
[[nodiscard]] token_state* make_token_state(scope_node& scope);
void release_token_state(token_state* state) noexcept;
/// A new source node under `parent` (null: independent), with its token state.
[[nodiscard]] token_state* make_source_token(scope_node* parent);
}  // namespace detail

/// A copyable view of a cancellation node. Thread-safe. A default-constructed token is never
/// cancelled. Holding a token keeps its node and the scopes above it alive (not the tasks'
/// work: the token of a finished task simply keeps answering for its scope chain).
class cancel_token {
 public:
  cancel_token() noexcept = default;
  cancel_token(const cancel_token& other) noexcept : m_state(other.m_state) {
    if (m_state != nullptr) {
      // Relaxed: a new reference is made from an existing one.
      m_state->refs.fetch_add(1, std::memory_order_relaxed);
    }
  }
  cancel_token(cancel_token&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)) {}
  cancel_token& operator=(cancel_token other) noexcept {
    std::swap(m_state, other.m_state);
    return *this;
  }
  ~cancel_token() { detail::release_token_state(m_state); }

  /// The node or an unshielded ancestor was asked to cancel.
  [[nodiscard]] bool cancel_requested() const noexcept {
    return m_state != nullptr && detail::scope_chain_cancelled(*m_state->scope);
  }
  /// False for a default-constructed (or moved-from) token, which is never cancelled.
  [[nodiscard]] bool can_be_cancelled() const noexcept { return m_state != nullptr; }
  /// The message of the request that cancelled it, if it is cancelled.
  [[nodiscard]] std::optional<std::string> reason() const;

  /// Adopts a state the caller made (corun internals).
  explicit cancel_token(detail::token_state* owned) noexcept : m_state(owned) {}
  [[nodiscard]] detail::scope_node* scope() const noexcept {
    return m_state != nullptr ? m_state->scope : nullptr;
  }

 private:
  detail::token_state* m_state = nullptr;
};

/// Owns a cancellation node that code can cancel: `request_cancel(msg)` cancels it and every
/// token and source derived from it. Move-only; thread-safe.
class cancel_source {
 public:
  /// A new, independent node.
  cancel_source() : m_token(detail::make_source_token(nullptr)) {}
  /// A node cancelled whenever `parent` is (and on its own `request_cancel`). A default token as
  /// parent makes an independent node.
  explicit cancel_source(const cancel_token& parent)
      : m_token(detail::make_source_token(parent.scope())) {}
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
