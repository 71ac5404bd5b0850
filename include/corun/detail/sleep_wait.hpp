/// \file
/// What a suspended `sleep_for`/`sleep_until` holds: its timer entry and its waiter, claimed
/// either by the timer firing or by a cancel request (detail/waiter.hpp).
#pragma once

#include "corun/detail/timer_entry.hpp"
#include "corun/detail/waiter.hpp"

#include <coroutine>

namespace corun::detail {

struct sleep_wait : timer_entry {
  sleep_wait() noexcept : timer_entry(&fire_sleep) {}
  waiter m_waiter;
  /// The queue had no memory for the entry: `sleep_resumed` throws `std::bad_alloc`.
  bool m_no_memory = false;
  static void fire_sleep(timer_entry& e) noexcept;
};

/// True if `deadline` passed on the running task's runtime clock.
[[nodiscard]] bool sleep_elapsed(clock_time deadline);
/// Queues the entry and arms the waiter; false if the task must not suspend (cancelled
/// meanwhile, or no memory). Nothing may touch the coroutine frame after it returned true.
[[nodiscard]] bool sleep_suspend(sleep_wait& s, clock_time deadline,
                                 std::coroutine_handle<> h) noexcept;
/// After the sleep ended: returns if the deadline woke it, throws `cancelled` if a cancel did.
void sleep_resumed(sleep_wait& s);

}  // namespace corun::detail
