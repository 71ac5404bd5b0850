/// \file
/// When a thief waits before stealing again (runtime/scheduler/steal_backoff.hpp), step by step
/// with made-up cycle counts: trips of 100 cycles unless a test says otherwise; and in a runtime,
/// that a thief which waits still takes every task it must.
#include "scheduler/steal_backoff.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>

namespace {

using corun::detail::steal_backoff;

constexpr std::uint64_t trip = 100;
constexpr std::uint64_t start = 1'000'000;

/// A trip from `begin`, then a batch that ran `ran` cycles; returns the wait asked for.
std::uint64_t judge(steal_backoff& backoff, std::uint64_t begin, std::uint64_t ran,
                    bool spawned_nothing = true) {
  backoff.trip_done(begin, begin + trip);
  return backoff.wait_before_search(begin + trip + ran, spawned_nothing);
}

/// A victim whose spawn count the test moves, and how often the thief looked at it.
struct victim {
  std::uint64_t spawns = 0;
  int looks = 0;
  auto reader() {
    return [this] {
      ++looks;
      return spawns;
    };
  }
};

}  // namespace

TEST_CASE("a thief searches at once when no trip came before") {
  steal_backoff backoff;
  CHECK(backoff.wait_before_search(start, true) == 0);
}

TEST_CASE("a batch of leaves that ran long enough to pay for its trip asks for no wait") {
  steal_backoff backoff;
  CHECK(judge(backoff, start, steal_backoff::worth_ratio * trip) == 0);
  CHECK(judge(backoff, start + 10'000, 100 * trip) == 0);
}

TEST_CASE("a batch that spawned asks for no wait however briefly it ran") {
  steal_backoff backoff;
  CHECK(judge(backoff, start, 1, false) == 0);
}

TEST_CASE("a batch of leaves that ran briefly asks for a wait that doubles up to its bound") {
  steal_backoff backoff;
  std::uint64_t now = start;
  std::uint64_t expected = steal_backoff::first_wait_trips * trip;
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    CHECK(judge(backoff, now, steal_backoff::worth_ratio * trip - 1) == expected);
    expected = std::min(2 * expected, steal_backoff::max_wait_trips * trip);
    now += 100'000;
  }
  CHECK(expected == steal_backoff::max_wait_trips * trip);
}

TEST_CASE("a trip that paid ends the streak of waits") {
  steal_backoff backoff;
  CHECK(judge(backoff, start, trip) == steal_backoff::first_wait_trips * trip);
  CHECK(judge(backoff, start + 10'000, trip) == 2 * steal_backoff::first_wait_trips * trip);
  CHECK(judge(backoff, start + 20'000, 10 * trip) == 0);
  CHECK(judge(backoff, start + 30'000, trip) == steal_backoff::first_wait_trips * trip);
}

TEST_CASE("a trip is judged once: a second search without a trip asks for no wait") {
  steal_backoff backoff;
  CHECK(judge(backoff, start, trip) != 0);
  CHECK(backoff.wait_before_search(start + 50'000, true) == 0);
}

TEST_CASE("the wait is measured in trips of the trip being judged") {
  steal_backoff backoff;
  backoff.trip_done(start, start + 7);
  CHECK(backoff.wait_before_search(start + 7 + 1, true) == steal_backoff::first_wait_trips * 7);
  backoff.trip_done(start + 1'000, start + 1'000);  // a trip too short to measure
  CHECK(backoff.wait_before_search(start + 1'000, true) == 0);
}

TEST_CASE("a wait ends at its deadline while the victim keeps spawning") {
  steal_backoff backoff;
  const std::uint64_t wait = judge(backoff, start, trip);
  REQUIRE(wait == steal_backoff::first_wait_trips * trip);
  const std::uint64_t from = start + 2 * trip;
  victim v;
  for (std::uint64_t now = from; now < from + wait; now += 10) {
    CAPTURE(now);
    REQUIRE(backoff.keep_waiting(now, v.reader()));
    ++v.spawns;
  }
  CHECK_FALSE(backoff.keep_waiting(from + wait, v.reader()));
  // Looked at the victim at the start and once per `progress_trips` trips, not at every pause.
  CHECK(v.looks >= 1);
  CHECK(v.looks <= 1 + static_cast<int>(wait / (steal_backoff::progress_trips * trip)));
}

TEST_CASE("a wait ends early once the victim stops spawning, and the streak with it") {
  steal_backoff backoff;
  std::uint64_t now = start;
  for (int i = 0; i < 6; ++i) {
    static_cast<void>(judge(backoff, now, trip));
    now += 100'000;
  }
  const std::uint64_t wait = judge(backoff, now, trip);
  REQUIRE(wait == steal_backoff::max_wait_trips * trip);
  now += 2 * trip;
  victim v;
  v.spawns = 500;
  REQUIRE(backoff.keep_waiting(now, v.reader()));
  // The victim spawns nothing more: the next look ends the wait, long before its deadline.
  std::uint64_t ended = 0;
  for (std::uint64_t t = now + 1; t < now + wait; ++t) {
    if (!backoff.keep_waiting(t, v.reader())) {
      ended = t;
      break;
    }
  }
  REQUIRE(ended != 0);
  CHECK(ended - now == steal_backoff::progress_trips * trip);
  CHECK(v.looks == 2);
  // The early end reset the streak: the next brief batch starts from the first wait again.
  CHECK(judge(backoff, now + 100'000, trip) == steal_backoff::first_wait_trips * trip);
}

namespace {

corun::task<void> count_up(std::atomic<int>& ran) {
  // Release: the spinning spawner reads the count with acquire before it returns.
  ran.fetch_add(1, std::memory_order_release);
  co_return;
}

/// Queues `count` leaves on this worker, then keeps the worker until all of them ran: only a
/// thief can run them, in batches that each take far less time than their trip.
corun::task<void> spawn_leaves_then_hold_the_worker(int count, std::atomic<int>& ran) {
  for (int i = 0; i < count; ++i) {
    static_cast<void>(corun::spawn(count_up(ran)));
  }
  while (ran.load(std::memory_order_acquire) < count) {
    std::this_thread::yield();
  }
  co_return;
}

}  // namespace

TEST_CASE("a thief takes every leaf queued behind a worker busy with one long task") {
  // The thief's batches are leaves that run in a moment, the very trips it waits after; the
  // victim spawns nothing while it holds its worker, so each wait ends at its first look.
  constexpr int count = 20'000;
  corun::runtime_options options = corun_test::with_workers(2);
  options.eager_spawn_threshold = 0;  // queue every spawn
  corun::runtime rt(options);
  std::atomic<int> ran{0};
  rt.block_on(spawn_leaves_then_hold_the_worker(count, ran));
  CHECK(ran.load() == count);
  // At most 32 tasks per trip: the thief came back at least that often.
  CHECK(rt.stats().steals >= static_cast<std::uint64_t>(count / 32));
}
