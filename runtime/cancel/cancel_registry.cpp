// The registry of cancel callbacks (include/corun/detail/cancel_registration.hpp).
//
//  1. Registrations sit in one of `shard_count` intrusive lists, chosen by the registering
//     thread, each guarded by its own mutex. Registration inserts at the head and then checks,
//     under the lock, whether the scope is already cancelled (then it backs out).
//  2. A cancel request first publishes itself in the scope (seq_cst CAS on `m_cancel`), then
//     visits every shard. It skips a shard whose head it reads as null without taking the lock:
//     the registrant's head store and the canceller's CAS are both seq_cst, and each side then
//     loads what the other stored (seq_cst), so at least one of them sees the other: either the
//     canceller finds the registration, or the registrant finds the request and backs out.
//     The epoch variant: a registration for a task whose chain was found clean at the current
//     `g_cancel_epoch` (its `m_epoch_seen`, see task_node.hpp) skips the walk up its chain. The
//     registrant's epoch load and the canceller's epoch bump (after its CAS, before its visit)
//     are seq_cst too: if the load returns the old epoch, the bump, and so the visit, come after
//     the registrant's head store; if it returns a newer one, the registrant walks.
//  3. Under the lock, every registration whose scope chain is now cancelled is unlinked and
//     fired. `waker`s run right there; a `user` callback runs unlocked and marks itself running,
//     so a deregistration on another thread waits for it and one on the same thread does not.
//     After a user callback the scan restarts from the head (the list may have changed).
#include "corun/detail/cancel_registration.hpp"
#include "corun/detail/config.hpp"
#include "corun/detail/spin_lock.hpp"
#include "corun/detail/task_node.hpp"

#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>

namespace corun::detail {

struct alignas(cache_line) cancel_shard {
  /// Registering and deregistering a waiter is on the path of every join that suspends.
  spin_lock lock;
  std::atomic<cancel_registration*> head{nullptr};
};

namespace {

constexpr std::size_t shard_count = 32;

cancel_shard g_shards[shard_count];

/// An address unique to the calling thread, naming it as the runner of a user callback.
const void* this_thread_marker() noexcept {
  static thread_local const char marker = 0;
  return &marker;
}

cancel_shard& my_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  // Relaxed: any spread of threads over shards is correct; round-robin keeps them apart.
  static thread_local const std::size_t index =
      next.fetch_add(1, std::memory_order_relaxed) % shard_count;
  return g_shards[index];
}

/// The caller holds `r.m_shard->lock`.
void unlink(cancel_registration& r) noexcept {
  if (r.m_prev != nullptr) {
    r.m_prev->m_next = r.m_next;
  } else {
    // Relaxed: removal needs no ordering against cancellers (step 2 is about insertion).
    r.m_shard->head.store(r.m_next, std::memory_order_relaxed);
  }
  if (r.m_next != nullptr) {
    r.m_next->m_prev = r.m_prev;
  }
  r.m_prev = nullptr;
  r.m_next = nullptr;
}

void fire_shard(cancel_shard& shard) noexcept {
  std::unique_lock lock(shard.lock);
  cancel_registration* r = shard.head.load(std::memory_order_relaxed);
  while (r != nullptr) {
    cancel_registration* next = r->m_next;
    if (!scope_chain_cancelled(*r->scope)) {
      r = next;
      continue;
    }
    unlink(*r);
    if (r->m_kind == cancel_registration::kind::waker) {
      // Relaxed: only read under this lock (deregister_cancel).
      r->m_phase.store(cancel_registration::phase::fired, std::memory_order_relaxed);
      r->invoke(*r);
      r = next;
      continue;
    }
    r->m_runner = this_thread_marker();
    r->m_phase.store(cancel_registration::phase::running, std::memory_order_relaxed);
    lock.unlock();
    r->invoke(*r);
    // Release: the callback's effects happen before a waiting deregistration returns. The
    // owner may destroy `*r` as soon as it sees this, so nothing touches `r` afterwards.
    r->m_phase.store(cancel_registration::phase::fired, std::memory_order_release);
    lock.lock();
    r = shard.head.load(std::memory_order_relaxed);
  }
}

}  // namespace

bool scope_chain_cancelled(const scope_node& scope) noexcept {
  for (const scope_node* s = &scope; s != nullptr; s = s->m_parent) {
    // seq_cst: the registrant's side of step 2.
    if (s->m_cancel.load(std::memory_order_seq_cst) != nullptr) {
      return true;
    }
    if (s->m_shield) {
      return false;
    }
  }
  return false;
}

namespace {

/// True if `scope` is a task that found its chain uncancelled at the current epoch: no request
/// published before the latest epoch bump applies to it (see step 2).
bool clean_at_current_epoch(const scope_node& scope) noexcept {
  if (scope.kind() != scope_kind::task) {
    return false;
  }
  // Relaxed: every value ever stored there states a walk that found the chain clean at that
  // epoch, whichever thread reads it. seq_cst: the registrant's side of step 2's epoch variant.
  return static_cast<const task_node&>(scope).m_epoch_seen.load(std::memory_order_relaxed) ==
         g_cancel_epoch.value.load(std::memory_order_seq_cst);
}

}  // namespace

bool register_cancel(cancel_registration& r) noexcept {
  cancel_shard& shard = my_shard();
  const std::lock_guard lock(shard.lock);
  r.m_shard = &shard;
  r.m_prev = nullptr;
  r.m_next = shard.head.load(std::memory_order_relaxed);
  if (r.m_next != nullptr) {
    r.m_next->m_prev = &r;
  }
  // seq_cst: step 2, paired with the canceller's CAS and its load of the head.
  shard.head.store(&r, std::memory_order_seq_cst);
  if (!clean_at_current_epoch(*r.scope) && scope_chain_cancelled(*r.scope)) {
    unlink(r);
    r.m_shard = nullptr;
    return false;
  }
  r.m_phase.store(cancel_registration::phase::registered, std::memory_order_relaxed);
  return true;
}

void deregister_cancel(cancel_registration& r) noexcept {
  cancel_shard* shard = r.m_shard;
  if (shard == nullptr) {
    return;  // never registered
  }
  {
    const std::lock_guard lock(shard->lock);
    // Acquire, not relaxed, although under the lock: a `user` callback's `fired` is stored
    // after the canceller dropped the lock, and it is that store which orders the canceller's
    // last reads of `r` (its `invoke`, the callback's captures) before our caller reuses `r`.
    const cancel_registration::phase phase = r.m_phase.load(std::memory_order_acquire);
    if (phase == cancel_registration::phase::registered) {
      unlink(r);
      r.m_phase.store(cancel_registration::phase::idle, std::memory_order_relaxed);
      r.m_shard = nullptr;
      return;
    }
    if (phase != cancel_registration::phase::running || r.m_runner == this_thread_marker()) {
      r.m_shard = nullptr;
      return;  // fired already, or we are inside the callback: do not wait for ourselves
    }
  }
  // Acquire: pairs with the release store after the callback returned.
  while (r.m_phase.load(std::memory_order_acquire) != cancel_registration::phase::fired) {
    std::this_thread::yield();
  }
  r.m_shard = nullptr;
}

void fire_cancel_registrations() noexcept {
  for (cancel_shard& shard : g_shards) {
    // seq_cst: the canceller's side of step 2.
    if (shard.head.load(std::memory_order_seq_cst) != nullptr) {
      fire_shard(shard);
    }
  }
}

}  // namespace corun::detail
