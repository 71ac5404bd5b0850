/// \file
/// A cheap, monotonic count of cycles for the scheduler's own judgements of how long something
/// took (steal_backoff.hpp), where only ratios of two counts matter, never their unit.
///
/// On x86 the time-stamp counter (about 10 ns to read, no system call; constant-rate on every
/// processor this runtime targets); elsewhere `std::chrono::steady_clock`'s ticks.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace corun::detail {

[[nodiscard]] inline std::uint64_t cycle_count() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

}  // namespace corun::detail
