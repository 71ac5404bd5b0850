/// \file
/// When a thief sleeps before stealing again (runtime/scheduler/steal_backoff.hpp), step by step
/// with made-up times: trips of 100 ns unless a test says otherwise; and in a runtime, that a
/// thief which sleeps still takes every task it must.
#include "scheduler/steal_backoff.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace {

using corun::detail::steal_backoff;

constexpr std::uint64_t trip = 100;
constexpr std::uint64_t start = 1'000'000;
constexpr std::uint64_t sleep_asked = steal_backoff::sleep_trips * trip;

/// A victim whose spawn count the test sets, and how often the thief looked at it.
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

/// A trip from `begin` after which the victim had spawned `at_trip` tasks, then a batch that
/// ran `ran` ns while the victim reached `v.spawns`; returns the sleep asked for.
std::uint64_t judge(steal_backoff& backoff, victim& v, std::uint64_t begin, std::uint64_t ran,
                    std::uint64_t at_trip, bool spawned_nothing = true) {
  backoff.trip_done(begin, begin + trip, at_trip);
  return backoff.sleep_before_search(begin + trip + ran, spawned_nothing, v.reader());
}

}  // namespace

TEST_CASE("a thief searches at once when no trip came before") {
  steal_backoff backoff;
  victim v;
  CHECK(backoff.sleep_before_search(start, true, v.reader()) == 0);
  CHECK(v.looks == 0);
}

TEST_CASE("a batch of leaves from a spawning victim that ran briefly asks for a sleep") {
  steal_backoff backoff;
  victim v{.spawns = 50};
  CHECK(judge(backoff, v, start, 1, 10) == sleep_asked);
  CHECK(judge(backoff, v, start + 10'000, steal_backoff::worth_ratio * trip - 1, 20) ==
        sleep_asked);
  CHECK(v.looks == 2);
}

TEST_CASE("a batch of leaves that ran long enough to pay for its trip asks for no sleep") {
  steal_backoff backoff;
  victim v{.spawns = 50};
  CHECK(judge(backoff, v, start, steal_backoff::worth_ratio * trip, 10) == 0);
  CHECK(judge(backoff, v, start + 10'000, 100 * trip, 10) == 0);
  // Decided without looking at the victim's line.
  CHECK(v.looks == 0);
}

TEST_CASE("a batch that spawned asks for no sleep however briefly it ran") {
  steal_backoff backoff;
  victim v{.spawns = 50};
  CHECK(judge(backoff, v, start, 1, 10, false) == 0);
  CHECK(v.looks == 0);
}

TEST_CASE("a victim that spawned nothing since the trip is stolen from again at once") {
  steal_backoff backoff;
  victim v{.spawns = 10};
  CHECK(judge(backoff, v, start, 1, 10) == 0);
  CHECK(v.looks == 1);
  // The same thief, once the victim spawns again, sleeps after the next such trip.
  v.spawns = 11;
  CHECK(judge(backoff, v, start + 10'000, 1, 10) == sleep_asked);
}

TEST_CASE("a trip is judged once: a second search without a trip asks for no sleep") {
  steal_backoff backoff;
  victim v{.spawns = 50};
  CHECK_FALSE(backoff.has_trip_to_judge());
  backoff.trip_done(start, start + trip, 10);
  CHECK(backoff.has_trip_to_judge());
  CHECK(backoff.sleep_before_search(start + trip + 1, true, v.reader()) == sleep_asked);
  CHECK_FALSE(backoff.has_trip_to_judge());
  CHECK(backoff.sleep_before_search(start + 50'000, true, v.reader()) == 0);
  CHECK(v.looks == 1);
}

TEST_CASE("the sleep is measured in trips of the trip being judged") {
  steal_backoff backoff;
  victim v{.spawns = 50};
  backoff.trip_done(start, start + 7, 10);
  CHECK(backoff.sleep_before_search(start + 7 + 1, true, v.reader()) ==
        steal_backoff::sleep_trips * 7);
  backoff.trip_done(start + 1'000, start + 1'000, 10);  // a trip too short to measure
  CHECK(backoff.sleep_before_search(start + 1'000, true, v.reader()) == 0);
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
  // The thief's batches are leaves that run in a moment, the very trips it sleeps after when
  // their victim goes on spawning; this victim spawns nothing while it holds its worker.
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
