/// \file
/// Minimal Linux futex wrappers: sleep until a 32-bit word changes, wake sleepers.
///
/// Only sleeping goes through the kernel; every hand-off of data is an atomic operation on the
/// word itself (TSan does not see futex calls as synchronisation, and need not).
#pragma once

#include "scheduler/tsan.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

namespace corun::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

#if defined(CORUN_TSAN)
/// Under ThreadSanitizer no futex sleep lasts longer than this. TSan runs a signal handler at
/// once only in a thread that is inside a call TSan intercepts; elsewhere it defers the handler
/// to the thread's next entry into TSan (an atomic, an intercepted call). A raw futex syscall is
/// not intercepted, so a signal delivered between a sleeper's last atomic and its syscall waits
/// unhandled for as long as the sleep lasts: forever for a parked worker or a thread in
/// `join_handle::get`. Seen as a rare hang of a run_until_signal test (about 1 run in 100 with
/// the machine loaded), whose second signal never reached the handler. Bounded sleeps end each
/// such wait within this long; every caller loops on early wake-ups anyway.
inline constexpr std::chrono::milliseconds tsan_longest_sleep{50};
#endif

/// Sleeps while `*word == expected`, for at most `timeout` (may wake early; callers loop).
inline void futex_wait_for(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                           std::chrono::nanoseconds timeout) noexcept {
#if defined(CORUN_TSAN)
  timeout = std::min<std::chrono::nanoseconds>(timeout, tsan_longest_sleep);
#endif
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  timespec relative{};
  relative.tv_sec = static_cast<time_t>(seconds.count());
  relative.tv_nsec = static_cast<long>((timeout - seconds).count());
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the kernel takes the raw word
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
          &relative, nullptr, 0);
}

/// Sleeps while `*word == expected` (may wake spuriously; callers loop).
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
#if defined(CORUN_TSAN)
  futex_wait_for(word, expected, tsan_longest_sleep);
#else
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the kernel takes the raw word
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
#endif
}

/// Wakes up to `count` threads sleeping on `word`.
inline void futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the kernel takes the raw word
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

inline void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept { futex_wake(word, INT_MAX); }

}  // namespace corun::detail
