/// \file
/// Which workers are searching for work and which are asleep; decides whom to wake.
///
/// Protocol (tokio's rule, with a recheck that closes every lost-wake-up window):
///  1. A producer makes work visible (deque push: seq_cst exchange; injection: enqueue), then
///     calls `worker_to_wake`. That reads the state with seq_cst (a worker's push) or with an RMW
///     (a foreign injection, whose enqueue is not seq_cst): if some worker is searching, or none
///     is asleep, nobody is woken — the searcher will find the work, and a worker that stops
///     searching by going to sleep rechecks every queue first (step 4).
///  2. A worker with nothing local becomes a searcher only while fewer than half the workers
///     search (`try_begin_search`), so a burst of spawns does not stampede the pool.
///  3. A searcher that finds work stops searching (`end_search`); if it was the last searcher it
///     wakes another worker, since there may be more work where it found some.
///  4. A worker with nothing to do publishes that it sleeps (`transition_to_parked`, a seq_cst
///     RMW under the sleepers lock), then rechecks every deque, the injection queue and the stop
///     flag. Any producer whose work the recheck misses must, by the total order of seq_cst
///     operations (or by the RMW chain for injections), have read the state after that RMW, seen
///     a sleeper and woken it. If the recheck finds work, the worker takes itself back off the
///     sleepers list (`cancel_park`); if a producer already took it, its wake-up is on the way.
///  5. A woken worker starts as a searcher: the waker counted it as unparked and searching.
#pragma once

#include "corun/detail/config.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace corun::detail {

class idle {
 public:
  /// Returned by the `worker_to_wake` functions when nobody should be woken. A plain index
  /// rather than `std::optional`: g++ spills the optional's flag through the stack and stalls
  /// every push on the reload (seen with perf on skynet).
  static constexpr std::size_t nobody = ~std::size_t{0};

  explicit idle(std::size_t workers) : m_workers(workers) {
    m_state.store(pack(workers, 0), std::memory_order_relaxed);
    m_sleepers.reserve(workers);
  }

  /// Step 1 for a worker's own push (already seq_cst, or ordered by the asymmetric barrier).
  /// Returns the worker to wake, if any. The common answer, "nobody", is decided inline.
  [[nodiscard]] std::size_t worker_to_wake() {
    const std::uint64_t state = state_for_push();
    return may_need_wake(state) ? wake_if_needed(state) : nobody;
  }
  /// `worker_to_wake` in parts, for a push that keeps the call of the rare part out of line:
  /// the state it reads (seq_cst), whether that state may call for a wake-up (the common
  /// answer: no, a worker searches or none sleeps), and then whom to wake.
  [[nodiscard]] std::uint64_t state_for_push() { return m_state.load(std::memory_order_seq_cst); }
  [[nodiscard]] bool may_need_wake(std::uint64_t state) const noexcept {
    return searching(state) == 0 && unparked(state) < m_workers;
  }
  [[nodiscard]] std::size_t wake_if_needed(std::uint64_t state);
  /// Step 1 for an injection from outside: the RMW joins the producer to the RMW chain on the
  /// state, so the enqueue happens-before the recheck of any worker that parks after it.
  [[nodiscard]] std::size_t worker_to_wake_after_inject() {
    return wake_if_needed(m_state.fetch_add(0, std::memory_order_seq_cst));
  }

  /// Step 2. True if the caller is now counted as searching.
  [[nodiscard]] bool try_begin_search() noexcept {
    const std::uint64_t state = m_state.load(std::memory_order_relaxed);
    if (2 * searching(state) >= m_workers) {
      return false;
    }
    m_state.fetch_add(one_searching, std::memory_order_seq_cst);
    return true;
  }

  /// Step 3. True if the caller was the last searcher (it should then wake another worker).
  [[nodiscard]] bool end_search() noexcept {
    const std::uint64_t prev = m_state.fetch_sub(one_searching, std::memory_order_seq_cst);
    return searching(prev) == 1;
  }

  /// Step 4, first half. The caller then rechecks for work.
  void transition_to_parked(std::size_t worker, bool was_searching);
  /// Step 4, the recheck found work. True: the caller took itself off the sleepers list and is
  /// now counted as searching. False: a waker already took it; its wake-up is on the way.
  [[nodiscard]] bool cancel_park(std::size_t worker);

  /// True if every worker but the caller (which is awake) is asleep: no thief can be stealing,
  /// and one that wakes runs the asymmetric barrier before it steals (the solo pops of
  /// chase_lev_deque.hpp). Acquire: a thief's steals before it parked happen before what the
  /// caller reads next (the park's seq_cst RMW heads a release sequence on the state).
  [[nodiscard]] bool alone() const noexcept {
    return unparked(m_state.load(std::memory_order_acquire)) == 1;
  }

  /// True if every worker is asleep or about to be (virtual time jumps only then).
  [[nodiscard]] bool nobody_awake() const noexcept {
    // seq_cst: ordered with the transitions to parked and the wake-ups.
    return unparked(m_state.load(std::memory_order_seq_cst)) == 0;
  }

  /// Takes every sleeper off the list (shutdown); the caller wakes them.
  [[nodiscard]] std::vector<std::size_t> take_all_sleepers();

 private:
  // m_state, bit by bit: bits 0..31 workers searching; bits 32..63 workers not asleep.
  static constexpr std::uint64_t one_searching = 1;
  static constexpr std::uint64_t one_unparked = std::uint64_t{1} << 32;
  static constexpr std::uint64_t pack(std::uint64_t unparked_count, std::uint64_t searching_count) {
    return unparked_count * one_unparked + searching_count;
  }
  static constexpr std::uint64_t searching(std::uint64_t state) { return state & 0xffffffffU; }
  static constexpr std::uint64_t unparked(std::uint64_t state) { return state >> 32; }

  const std::size_t m_workers;
  alignas(cache_line) std::atomic<std::uint64_t> m_state{0};
  std::mutex m_lock;
  std::vector<std::size_t> m_sleepers;  // guarded by m_lock
};

}  // namespace corun::detail
