/// \file
/// Cancel callbacks: registrations that a cancel request fires, for waking suspended waiters
/// (runtime/cancel/cancel_registry.cpp) and for user `cancel_callback`s.
///
/// A registration names a scope; a cancel request of that scope or of any ancestor below the
/// first shield fires it, once. Registrations live in sharded intrusive lists (no allocation:
/// the node is embedded in the awaiter or the callback object). Registering and deregistering
/// cost one uncontended lock of the registering thread's shard; a cancel request visits every
/// shard, so its cost grows with the number of registered waiters, not with the tree's size.
///
/// Two kinds:
///  - `waker`: corun's own awaitables. The callback only decides a race with one atomic step and
///    schedules a task; it never blocks and never resumes a coroutine inline, so it runs under
///    the shard lock, and deregistration (taking that lock) cannot overlap it.
///  - `user`: arbitrary code. It runs without the lock, as `std::stop_callback` does;
///    deregistration from another thread waits until it returned, and deregistration from
///    inside the callback itself does not wait (no self-deadlock).
#pragma once

#include <atomic>
#include <cstdint>

namespace corun::detail {

class scope_node;
struct cancel_shard;

struct cancel_registration {
  using invoke_fn = void (*)(cancel_registration&) noexcept;
  enum class kind : std::uint8_t { waker, user };
  enum class phase : std::uint8_t { idle, registered, running, fired };

  cancel_registration(const scope_node* s, invoke_fn fn, kind k) noexcept
      : scope(s), invoke(fn), m_kind(k) {}
  /// For a waker built far more often than it is registered (a join's, on every `co_await`):
  /// `scope`, `invoke` and `m_kind` stay unwritten until it is armed, just before registering.
  struct unarmed_t {};
  explicit cancel_registration(unarmed_t /*unused*/) noexcept {}
  cancel_registration(const cancel_registration&) = delete;
  cancel_registration& operator=(const cancel_registration&) = delete;
  ~cancel_registration() = default;

  // Fields without initialisers are written before the registration is made (a join builds
  // one of these on every `co_await`, most of them never registered: only what is read on the
  // unregistered path is initialised).
  // The one-byte fields come last, so a derived waker can put its own flags in the tail
  // padding (a join builds one in every frame that awaits a task).
  const scope_node* scope;
  invoke_fn invoke;
  // --- Owned by the registry (guarded by the shard's lock, except `m_phase` below). ---
  // Two words are shared with the owner, so that a join's wake-up, built in the frame of every
  // task that awaits a join_handle, stays small.
  union {
    cancel_registration* m_prev;  // set by register_cancel
    /// Before register_cancel: the owner's (`join_wake`'s chain of wake-ups to register).
    void* m_owner_link;
  };
  cancel_registration* m_next;  // set by register_cancel
  /// Null while not registered (deregister_cancel then does nothing).
  cancel_shard* m_shard = nullptr;
  union {
    /// `user`: the thread running the callback (an address unique to that thread); set by the
    /// canceller before it publishes `running`.
    const void* m_runner;
    /// `waker`: the owner's, for its callback (the registry never touches it for a waker).
    void* m_owner_data;
  };
  kind m_kind;
  /// Written under the shard lock; `fired` is also stored (release) after a `user` callback
  /// returned without the lock, so a deregistering thread reads it with acquire, both under
  /// the lock and while waiting for the callback.
  std::atomic<phase> m_phase{phase::idle};
};

/// Registers `r` unless its scope is already cancelled. Returns false (and leaves `r`
/// unregistered, its callback not run) if it is. Never fails.
[[nodiscard]] bool register_cancel(cancel_registration& r) noexcept;
/// Removes `r` if it is still registered. If its `user` callback is running on another thread,
/// waits until it returned. Afterwards the registry no longer touches `r`.
void deregister_cancel(cancel_registration& r) noexcept;
/// Fires every registration whose scope is now cancelled. Called by every cancel request after
/// publishing it.
void fire_cancel_registrations() noexcept;
/// True if `scope` or an ancestor below the first shield was asked to cancel.
[[nodiscard]] bool scope_chain_cancelled(const scope_node& scope) noexcept;

}  // namespace corun::detail
