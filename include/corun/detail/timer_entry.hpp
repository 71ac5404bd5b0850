/// \file
/// `timer_entry`: one deadline in a runtime's timer queue (runtime/time/timer_queue.cpp), embedded
/// in whatever waits for it (a sleep's awaiter, a `timeout`'s frame). No allocation per timer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace corun::detail {

class runtime_core;

/// The runtime clock's time points: `std::chrono::steady_clock`'s, also under virtual time
/// (which starts at the real time the runtime was created and then moves only when told to).
using clock_time = std::chrono::steady_clock::time_point;

struct timer_entry {
  /// Runs once, when the deadline passed, on the thread that found it due, after the queue's
  /// lock was released. Must not block; it may schedule tasks and request cancellation.
  using fire_fn = void (*)(timer_entry&) noexcept;
  static constexpr std::size_t not_queued = ~std::size_t{0};
  /// idle -> queued -> firing -> done (or queued -> idle when disarmed first).
  enum class phase : std::uint8_t { idle, queued, firing, done };

  explicit timer_entry(fire_fn fn) noexcept : fire(fn) {}
  timer_entry(const timer_entry&) = delete;
  timer_entry& operator=(const timer_entry&) = delete;
  ~timer_entry() = default;

  fire_fn fire;
  // --- Owned by the timer queue, under its lock (except `m_phase`). The deadline and the
  // arming order (ties fire in arming order) live in the queue's heap slot. ---
  std::size_t heap_index = not_queued;
  /// Links entries taken out of the queue to be fired.
  timer_entry* next_due = nullptr;
  runtime_core* rt = nullptr;
  /// `done` is stored (release) by the firing thread after `fire` returned, outside the lock;
  /// `disarm_timer` waits for it (acquire) before the owner may reuse or free the entry.
  std::atomic<phase> m_phase{phase::idle};
};

/// The runtime of the running task; `std::logic_error` naming `what` outside a corun task.
[[nodiscard]] runtime_core& current_runtime(const char* what);
/// The runtime's clock.
[[nodiscard]] clock_time runtime_now(const runtime_core& rt) noexcept;
/// Queues `e` to fire at `deadline` on `rt` (at once, from the next worker that looks, if it
/// already passed). May throw `std::bad_alloc` (the queue grows); then `e` is not queued.
void arm_timer(runtime_core& rt, timer_entry& e, clock_time deadline);
/// Takes `e` out of its queue if it has not fired; if it is firing, waits until `fire` returned.
/// Afterwards the queue no longer touches `e`. Returns true if `e` fired (or is firing).
bool disarm_timer(timer_entry& e) noexcept;

}  // namespace corun::detail
