/// \file
/// Yield ping-pong: two tasks each give up their worker over and over, 1,000,000 yields in
/// total, half each. On one worker they alternate; on two, each yield asks the scheduler for
/// other work and resumes the task itself. It measures the suspend, requeue and resume round
/// trip that every corun awaitable that suspends goes through.
///
/// oneTBB has no yield, so its analog is the same round trip written as tasks: two chains whose
/// every step is a task that, when it ends, runs its successor in the same `task_group`, half
/// the steps each. A chain step is one suspend + requeue + resume of a corun task. Unlike a
/// yield, oneTBB takes the freshly run successor from the LIFO end of its deque, so at one thread
/// the chains do not alternate.
///
/// Tasks per run: the yields (oneTBB: the chain steps), 1,000,000.
#pragma once

#include "common/harness.hpp"

namespace bench::pingpong {

/// Yields (chain steps) per run: 1,000,000; 10,000 in smoke mode.
[[nodiscard]] inline long size() noexcept { return smoke() ? 10'000 : 1'000'000; }

/// The first player's share; the second one takes the rest.
[[nodiscard]] inline long first_half(long total) noexcept { return total / 2; }

}  // namespace bench::pingpong
