/// \file
/// Channel messaging: two tasks talking through `corun::channel`, against two `std::thread`s
/// talking through a bounded queue made of a `std::mutex` and two `std::condition_variable`s
/// (oneTBB has no comparable primitive). Two workloads:
///
/// - `channel_pingpong`: latency. Ping sends i on a capacity-1 channel and waits for the answer
///   on a second one; pong answers i + 1. 100,000 round trips; every message finds its receiver
///   waiting, so each one is a hand-off, a wake-up and a suspension.
/// - `channel`: throughput. One producer sends 0 .. n-1 through a capacity-64 channel to one
///   consumer that sums them; 1,000,000 messages. Most operations find room or an item and do
///   not suspend; the two sides wait for each other about once per buffer's worth.
///
/// At one thread corun runs both tasks on one worker, and the threads version pins its two
/// threads to one CPU (so every wait is an OS context switch); at two both get two CPUs.
///
/// Tasks per run: the messages (a round trip is two).
#pragma once

#include "common/harness.hpp"

#include <cstddef>

namespace bench::channel {

/// Round trips per `channel_pingpong` run: 100,000; 1,000 in smoke mode.
[[nodiscard]] inline long pingpong_rounds() noexcept { return smoke() ? 1'000 : 100'000; }
/// Messages per `channel_pingpong` run: two per round trip.
[[nodiscard]] inline long pingpong_messages(long rounds) noexcept { return 2 * rounds; }
/// What ping adds up: the answers 1 .. rounds.
[[nodiscard]] inline long pingpong_expected(long rounds) noexcept {
  return rounds * (rounds + 1) / 2;
}
/// Capacity of both ping-pong channels.
inline constexpr std::size_t pingpong_capacity = 1;

/// Messages per `channel` run: 1,000,000; 10,000 in smoke mode.
[[nodiscard]] inline long stream_messages() noexcept { return smoke() ? 10'000 : 1'000'000; }
/// What the consumer adds up: 0 .. messages - 1.
[[nodiscard]] inline long stream_expected(long messages) noexcept {
  return messages * (messages - 1) / 2;
}
/// Capacity of the `channel` workload's channel.
inline constexpr std::size_t stream_capacity = 64;

}  // namespace bench::channel
