/// \file
/// A runtime's timers: a 4-ary min-heap of `timer_entry`s ordered by (deadline, arming order),
/// under one spin lock, plus the runtime clock (real or virtual).
///
/// Picked by measurement, though not for speed. bench/timers/structure.hpp (`corun_bench
/// --benchmark_filter=timer_structure`) runs this class and a hierarchical timing wheel (6
/// levels of 64 slots, tokio's layout, bench/timers/timing_wheel.hpp) on the same workloads,
/// one thread, both under this spin lock, in thread CPU time. Release build (g++ 12 -O3) on a
/// 2-core EPYC VM, median of 5, 2026-12-01, with the load average at 9 from other builds:
///
///                                            heap  wheel, 1 ms tick  wheel, 1 us tick
///   arm_fire: 1M random deadlines over 10 s,
///   armed then fired in 1 ms steps, ns/timer  952       569               610
///     of which arming                          38        17                16
///   churn: 10,000 pending, 90% cancelled
///   before they fire, ns/(poll+cancel+arm)     89        34                34
///
/// Two more runs at the same load gave 800 / 460 / 531 and 898 / 392 / 475 on arm_fire, and
/// 105 / 35 / 37 and 70 / 30 / 33 on churn. The wheel wins clearly: by 1.5-2.3x on arm_fire
/// and 2.1-3x on churn, and not by a coarse tick (at 1 us it costs little more than at 1 ms).
/// About half of the heap's firing time is the store of each moved slot's index into its
/// entry, a cold line (perf: `sift_down`), which is the price of the O(log n) removal that
/// cancelled timeouts need. The heap stays, for:
///  - Exact order: entries fire in (deadline, arming order). Virtual time's promises
///    (`runtime_options::virtual_time`: ties fire in arming order, a `timeout`'s deadline beats
///    a sleep inside it that ends at the same instant) come from that for free. A wheel orders
///    only to its tick: the entries of one slot come due together, in no order, and would
///    need sorting (or slots kept sorted) to give the same.
///  - No tick: a deadline is not rounded (a wheel fires up to a tick late).
///  - Size of the gap in the runtime's terms: 40-70 ns per timeout armed and cancelled, and
///    a few hundred ns per timer fired only with a million pending, next to the task, its
///    frame and its wake-up around every timer.
/// 4-ary rather than binary: half the depth, with a node's four children side by side in the
/// array (96 bytes of slots). Worth revisiting if a timer-heavy profile shows `sift_down`.
///
/// Tick and resolution: there is no tick. Deadlines are `std::chrono::steady_clock` time points
/// (nanoseconds) compared exactly, and virtual time jumps to the exact deadline. In real time a
/// worker that parks with timers pending sleeps in the kernel until the earliest deadline
/// (futex timeout), so lateness is the kernel's wake-up latency (timer slack, 50 us by default,
/// and waiting for a CPU) plus the time to finish the task running on the worker that serves
/// the timers (timers are served between task steps, never by preempting a task).
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
