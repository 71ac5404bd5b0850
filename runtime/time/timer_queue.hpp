/// \file
/// A runtime's timers: a 4-ary min-heap of `timer_entry`s ordered by (deadline, arming order),
/// under one spin lock, plus the runtime clock (real or virtual).
///
/// Why a 4-ary heap and not a hierarchical wheel:
///  - Exact order: entries fire in (deadline, arming order), which virtual time needs to be
///    deterministic, and no tick rounds a deadline (a wheel fires up to a tick late).
///  - Removal is O(log n) through the index kept in the entry, and most timers of a server are
///    removed before they fire (timeouts around operations that finish in time).
///  - 4-ary rather than binary: half the depth, and the four children of a node share a cache
///    line of pointers. Measured in bench/timers (1M timers armed and fired).
/// A wheel's O(1) insert would win only with millions of concurrently pending timers whose
/// deadlines need no more than tick precision.
///
/// Resolution: the clock is `std::chrono::steady_clock` (nanoseconds). A worker that parks with
/// timers pending sleeps in the kernel until the earliest deadline (futex timeout), so lateness
/// is the kernel's wake-up latency plus the time to finish the task running on the worker that
/// serves the timers (timers are served between task steps, never by preempting a task).
#pragma once

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/timer_entry.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

namespace corun::detail {

class timer_queue {
 public:
  explicit timer_queue(bool virtual_time);
  timer_queue(const timer_queue&) = delete;
  timer_queue& operator=(const timer_queue&) = delete;
  ~timer_queue() = default;

  [[nodiscard]] bool is_virtual() const noexcept { return m_virtual; }
  [[nodiscard]] clock_time now() const noexcept;

  /// Queues `e` (see `arm_timer`). True if it became the earliest deadline: whoever sleeps
  /// until the old earliest one must then be told (`runtime_core::timers_changed`).
  [[nodiscard]] bool arm(timer_entry& e, clock_time deadline);
  /// The same for a caller that holds `lock()` (a sleep arms its waiter under it too).
  [[nodiscard]] bool arm_locked(timer_entry& e, clock_time deadline);
  [[nodiscard]] spin_lock& lock() noexcept { return m_lock; }
  /// See `disarm_timer`.
  bool disarm(timer_entry& e) noexcept;

  /// Fires every entry whose deadline passed; returns how many fired.
  std::size_t fire_due() noexcept;
  /// A relaxed look at the earliest deadline; `clock_time::max()` when nothing is queued.
  [[nodiscard]] clock_time next_deadline() const noexcept {
    // seq_cst: the queue side of the handshake with a parking timer server (runtime_core).
    return clock_time(clock_time::duration(m_next.load(std::memory_order_seq_cst)));
  }
  /// Cheap check for the worker loop: anything queued whose deadline passed?
  [[nodiscard]] bool maybe_due() const noexcept {
    // Relaxed: a stale value only delays firing until the next look.
    const std::int64_t next = m_next.load(std::memory_order_relaxed);
    return next != empty_mark && now().time_since_epoch().count() >= next;
  }
  [[nodiscard]] bool empty() const noexcept {
    return m_next.load(std::memory_order_seq_cst) == empty_mark;
  }

  /// Virtual time: moves the clock forward by `d` (not backward).
  void advance(std::chrono::nanoseconds d) noexcept;
  /// Virtual time: moves the clock to the earliest deadline if it is later than now. False if
  /// nothing is queued.
  bool advance_to_next() noexcept;

 private:
  static constexpr std::int64_t empty_mark = std::numeric_limits<std::int64_t>::max();

  /// A heap slot keeps the ordering key beside the pointer: sifting then compares within the
  /// heap array instead of loading each deadline from a cold coroutine frame (perf showed 41%
  /// of a 1M-timer run in `sift_down` when the keys lived only in the entries).
  struct slot {
    std::int64_t deadline;
    std::uint64_t seq;
    timer_entry* entry;
  };
  [[nodiscard]] static bool earlier(const slot& a, const slot& b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }
  void place(const slot& s, std::size_t index) noexcept {
    m_heap[index] = s;
    s.entry->heap_index = index;
  }
  void sift_up(std::size_t index) noexcept;
  void sift_down(std::size_t index) noexcept;
  void remove_at(std::size_t index) noexcept;
  /// Under the lock, after the top changed.
  void publish_next() noexcept;

  const bool m_virtual;
  /// Virtual time: nanoseconds since the steady clock's epoch. Relaxed everywhere: time only
  /// moves forward, and whoever moves it fires the due timers itself under the lock.
  std::atomic<std::int64_t> m_virtual_now{0};
  /// The earliest deadline in steady-clock ticks, or `empty_mark`; mirrors the heap top.
  std::atomic<std::int64_t> m_next{empty_mark};
  spin_lock m_lock;
  std::vector<slot> m_heap;  // guarded by m_lock
  std::uint64_t m_seq = 0;   // guarded by m_lock
};

}  // namespace corun::detail
