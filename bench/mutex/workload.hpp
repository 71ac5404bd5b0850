/// \file
/// Mutex contention: many lockers each take one lock, increment a plain shared counter and
/// unlock, over and over, 1,000,000 lock/unlock pairs in total. The run checks the counter
/// reached the total, so a broken mutual exclusion fails the benchmark.
///
/// corun: 64 tasks share one `corun::async_mutex` (`auto guard = co_await m.lock();`). At one
/// worker a task runs its whole share without ever finding the lock taken (nothing suspends
/// inside the critical section), so it measures the uncontended fast path plus the spawns. At
/// two, lockers on both workers collide once the second worker has stolen some: a locker that
/// finds the lock taken suspends, and every unlock with waiters hands the lock to the first of
/// them and wakes it (FIFO, no barging). Once a queue forms it tends to persist (the unlocker's
/// next lock() queues behind the waiter it just woke: a lock convoy), and every pair then pays a
/// suspension, a hand-off and a wake-up. How early the lockers collide varies from run to run,
/// so the 2-worker figure is a mix of uncontended runs (~5-15 ns per pair here) and convoy runs
/// (~100-160 ns per pair): compare medians, and expect a wide spread.
///
/// oneTBB has no mutex that suspends a task, so the baseline is `threads`: as many
/// `std::thread`s as the worker count (started in every run), each doing its share of the pairs
/// on one `std::mutex`. `std::mutex` lets a running thread barge past sleeping ones, so under
/// contention it mostly re-takes its own lock without a hand-off: it measures unfair throughput
/// against corun's fair hand-off.
///
/// Tasks per run: the lock/unlock pairs, 1,000,000 (the counter `ns_per_task` is ns per pair).
///
/// `mutex_fair` is the fair comparison: the same corun lockers against `threads` on a FIFO
/// ticket lock (a `std::mutex` and a `std::condition_variable`; an unlock hands the lock to
/// the oldest waiter, no barging), so both sides pay a hand-off per contended pair. The
/// thread side sleeps in the kernel at each hand-off, so its runs are 200,000 pairs, and so
/// are corun's here to match.
#pragma once

#include "common/harness.hpp"

namespace bench::mutex {

/// Lock/unlock pairs per run: 1,000,000; 10,000 in smoke mode.
[[nodiscard]] inline long size() noexcept { return smoke() ? 10'000 : 1'000'000; }

/// Lock/unlock pairs per run of `mutex_fair`: 200,000; 10,000 in smoke mode.
[[nodiscard]] inline long fair_size() noexcept { return smoke() ? 10'000 : 200'000; }

/// corun lockers per run; each does its `share` of the pairs.
inline constexpr long lockers = 64;

/// The share of pairs of locker (or thread) `index` out of `count`: the remainder goes to the
/// first ones, so the shares add up to `total`.
[[nodiscard]] inline long share(long total, long count, long index) noexcept {
  return total / count + (index < total % count ? 1 : 0);
}

}  // namespace bench::mutex
