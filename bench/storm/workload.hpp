/// \file
/// Spawn storm: one task spawns 1,000,000 independent trivial tasks and lets them go; the run
/// ends when all of them have finished (corun: the parent's completion waits for its children;
/// oneTBB: one `task_group` waited on). It measures spawning and running many tasks with no
/// tree to spread them: at two workers the second one can only get work by stealing.
///
/// Each child increments a counter, and the run checks it reached the count. The counter is
/// sharded per thread: a single shared atomic would bounce its cache line between the workers
/// on every increment (~55 ns here, DESIGN.md section 5) and measure that instead of the
/// scheduler.
///
/// Tasks per run: the spawned children, 1,000,000.
#pragma once

#include "common/harness.hpp"

#include <array>
#include <atomic>
#include <cstddef>

namespace bench::storm {

/// Children per run: 1,000,000; 10,000 in smoke mode.
[[nodiscard]] inline long size() noexcept { return smoke() ? 10'000 : 1'000'000; }

/// A counter that threads increment without sharing a cache line. Increments are relaxed:
/// the total is read only after the run joined every child, which orders all of them before it.
class sharded_counter {
 public:
  void increment() noexcept { add(1); }
  void add(long amount) noexcept {
    m_shards[my_shard()].value.fetch_add(amount, std::memory_order_relaxed);
  }

  /// Sum of all shards; only meaningful once every incrementing task was joined.
  [[nodiscard]] long total() const noexcept {
    long sum = 0;
    for (const shard& each : m_shards) {
      sum += each.value.load(std::memory_order_relaxed);
    }
    return sum;
  }

  /// Zeroes the counter; only while no task increments it.
  void reset() noexcept {
    for (shard& each : m_shards) {
      each.value.store(0, std::memory_order_relaxed);
    }
  }

 private:
  static constexpr std::size_t shard_count = 64;

  struct alignas(64) shard {
    std::atomic<long> value{0};
  };

  /// Threads take shards round-robin on first use; two threads sharing one still count right.
  [[nodiscard]] static std::size_t my_shard() noexcept {
    // Only hands out distinct numbers: relaxed is enough.
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine =
        next.fetch_add(1, std::memory_order_relaxed) % shard_count;
    return mine;
  }

  std::array<shard, shard_count> m_shards;
};

}  // namespace bench::storm
