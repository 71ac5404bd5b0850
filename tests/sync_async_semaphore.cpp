/// \file
/// `async_semaphore`: the holder limit, FIFO hand-off of released units, guards, and the claim
/// protocol against cancellation (a cancelled waiter leaves the queue; a unit released as its
/// waiter is cancelled is never lost).
#include "corun/async_semaphore.hpp"

#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// Raises `max_seen` to `value` if it is higher.
void raise_max(std::atomic<int>& max_seen, int value) {
  int seen = max_seen.load();
  while (seen < value && !max_seen.compare_exchange_weak(seen, value)) {
  }
}

/// Waits (on a foreign thread) until `counter` reached `count`, for at most a minute; returns
/// whether it did.
bool wait_for_count(const std::atomic<int>& counter, int count) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (counter.load() < count && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  return counter.load() >= count;
}

}  // namespace

TEST_SUITE("sync_async_semaphore") {
  TEST_CASE("async_semaphore: never more than n tasks hold a unit at once") {
    constexpr int tasks = 32;
    constexpr int rounds = 40;
    for (const std::size_t units : {std::size_t{1}, std::size_t{3}}) {
      for (const std::size_t workers : worker_counts) {
        CAPTURE(units);
        CAPTURE(workers);
        corun::async_semaphore semaphore(units);
        std::atomic<int> holders{0};
        std::atomic<int> max_holders{0};
        std::atomic<int> entered{0};
        corun::runtime rt(with_workers(workers));
        std::vector<corun::join_handle<void>> takers;
        for (int t = 0; t < tasks; ++t) {
          takers.push_back(rt.spawn([&, t]() -> task<void> {
            for (int i = 0; i < rounds; ++i) {
              if ((i + t) % 2 == 0) {
                auto guard = co_await semaphore.acquire_guard();
                raise_max(max_holders, holders.fetch_add(1) + 1);
                entered.fetch_add(1);
                co_await corun::this_task::yield();  // hold the unit across a suspension
                holders.fetch_sub(1);
              } else {
                co_await semaphore.acquire();
                raise_max(max_holders, holders.fetch_add(1) + 1);
                entered.fetch_add(1);
                holders.fetch_sub(1);
                semaphore.release();
              }
            }
          }));
        }
        for (auto& h : takers) {
          h.get();
        }
        CHECK(entered.load() == tasks * rounds);
        CHECK(max_holders.load() >= 1);
        CHECK(max_holders.load() <= static_cast<int>(units));
        CHECK(semaphore.available() == units);
      }
    }
  }

  TEST_CASE("async_semaphore: release hands units to waiters in FIFO order, and nobody barges") {
    // One worker: a waiter that bumped `queued` runs on to its suspension in acquire() before
    // the releaser runs again, so the queue order is the spawn order. The waiters one release
    // wakes resume in the scheduler's order, so each release's batch is compared as a set.
    constexpr int waiters = 6;
    corun::async_semaphore semaphore(0);
    std::vector<int> order;  // only one task runs at a time on one worker
    std::atomic<int> queued{0};
    bool barged = true;
    std::size_t available_after_hand_off = 99;
    std::vector<std::vector<int>> batches;
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      for (int i = 0; i < waiters; ++i) {
        (void)corun::spawn([&, i]() -> task<void> {
          queued.fetch_add(1);
          co_await semaphore.acquire();
          order.push_back(i);
        });
        while (queued.load() != i + 1) {
          co_await corun::this_task::yield();
        }
      }
      const auto release_and_collect = [&](std::size_t units, std::size_t takers) -> task<void> {
        const std::size_t from = order.size();
        semaphore.release(units);
        while (order.size() < from + takers) {
          co_await corun::this_task::yield();
        }
        std::vector<int> batch(order.begin() + static_cast<std::ptrdiff_t>(from), order.end());
        std::sort(batch.begin(), batch.end());
        batches.push_back(batch);
      };
      semaphore.release();  // straight to waiter 0: nothing becomes available
      available_after_hand_off = semaphore.available();
      barged = semaphore.try_acquire();
      while (order.empty()) {
        co_await corun::this_task::yield();
      }
      co_await release_and_collect(2, 2);      // waiters 1 and 2
      co_await release_and_collect(3 + 2, 3);  // waiters 3, 4 and 5; two units are left over
    }());
    CHECK(available_after_hand_off == 0);
    CHECK_FALSE(barged);
    REQUIRE(order.size() == waiters);
    CHECK(order.front() == 0);
    REQUIRE(batches.size() == 2);
    CHECK(batches[0] == std::vector<int>{1, 2});
    CHECK(batches[1] == std::vector<int>{3, 4, 5});
    CHECK(semaphore.available() == 2);
  }

  TEST_CASE(
      "async_semaphore: try_acquire takes available units only, and release raises the count") {
    corun::async_semaphore semaphore(2);
    CHECK(semaphore.available() == 2);
    CHECK(semaphore.try_acquire());
    CHECK(semaphore.try_acquire());
    CHECK_FALSE(semaphore.try_acquire());
    CHECK(semaphore.available() == 0);
    semaphore.release();
    CHECK(semaphore.available() == 1);
    semaphore.release(4);  // more than was acquired: the count simply grows
    CHECK(semaphore.available() == 5);
    {
      REQUIRE(semaphore.try_acquire());
      const corun::async_semaphore::guard adopted(semaphore, std::adopt_lock);
      CHECK(adopted.owns_unit());
      CHECK(adopted.semaphore() == &semaphore);
      CHECK(semaphore.available() == 4);
    }
    CHECK(semaphore.available() == 5);
    CHECK(corun::async_semaphore::max() > 1'000'000);
  }

  TEST_CASE("async_semaphore: a guard releases when destroyed, releases early, and moves") {
    corun::async_semaphore semaphore(2);
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      {
        auto guard = co_await semaphore.acquire_guard();
        CHECK(guard.owns_unit());
        CHECK(static_cast<bool>(guard));
        CHECK(semaphore.available() == 1);
      }
      CHECK(semaphore.available() == 2);

      auto a = co_await semaphore.acquire_guard();
      auto b = co_await semaphore.acquire_guard();
      CHECK(semaphore.available() == 0);
      auto moved = std::move(a);
      CHECK_FALSE(a.owns_unit());  // NOLINT(bugprone-use-after-move): checking the moved-from
      CHECK(semaphore.available() == 0);
      moved = std::move(b);  // releases the unit `moved` held
      CHECK(semaphore.available() == 1);
      moved.release();
      CHECK_FALSE(moved.owns_unit());
      CHECK(semaphore.available() == 2);
      moved.release();  // a no-op once it owns nothing
      CHECK(semaphore.available() == 2);
    }());
    CHECK(semaphore.available() == 2);
  }

  TEST_CASE("async_semaphore: a cancelled waiter throws cancelled and leaves the queue") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_semaphore semaphore(0);
      std::atomic<int> queued{0};
      std::atomic<bool> victim_got_unit{false};
      std::atomic<bool> victim_threw{false};
      int next_value = 0;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        auto victim = corun::spawn([&]() -> task<void> {
          queued.fetch_add(1);
          try {
            auto unit = co_await semaphore.acquire_guard();
            victim_got_unit.store(true);
          } catch (const corun::cancelled&) {
            victim_threw.store(true);
            throw;
          }
        });
        auto next = corun::spawn([&]() -> task<int> {
          queued.fetch_add(1);
          auto unit = co_await semaphore.acquire_guard();
          co_return 7;
        });
        while (queued.load() != 2) {
          co_await corun::this_task::yield();
        }
        victim.cancel("stop waiting");
        try {
          co_await victim;
        } catch (const corun::task_cancelled&) {
        }
        CHECK(victim.cancelled());
        CHECK_FALSE(next.done());
        semaphore.release();  // must reach `next`, not the departed victim
        next_value = co_await next;
      }());
      CHECK(victim_threw.load());
      CHECK_FALSE(victim_got_unit.load());
      CHECK(next_value == 7);
      CHECK(semaphore.available() == 1);
    }
  }

  TEST_CASE("async_semaphore: release passes units over a waiter its cancel claimed first") {
    // One worker: the cancel claims the first waiter and schedules it, but it cannot run (and
    // leave the queue) before the releaser, still running, releases two units. They must go to
    // the second and third waiters, none becoming available.
    corun::async_semaphore semaphore(0);
    std::atomic<int> queued{0};
    std::atomic<int> got{0};
    std::atomic<bool> victim_got_unit{false};
    std::size_t available_after_release = 99;
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      auto victim = corun::spawn([&]() -> task<void> {
        queued.fetch_add(1);
        co_await semaphore.acquire();
        victim_got_unit.store(true);
      });
      while (queued.load() != 1) {
        co_await corun::this_task::yield();
      }
      std::vector<corun::join_handle<void>> others;
      for (int i = 0; i < 2; ++i) {
        others.push_back(corun::spawn([&]() -> task<void> {
          queued.fetch_add(1);
          auto unit = co_await semaphore.acquire_guard();
          got.fetch_add(1);
        }));
        while (queued.load() != i + 2) {
          co_await corun::this_task::yield();
        }
      }
      victim.cancel("claimed first");
      semaphore.release(2);
      available_after_release = semaphore.available();
      for (auto& h : others) {
        if (available_after_release != 0) {
          h.cancel("a unit was not handed over");  // fail the checks below instead of hanging
        }
        try {
          co_await h;
        } catch (const corun::task_cancelled&) {
        }
      }
      try {
        co_await victim;
      } catch (const corun::task_cancelled&) {
      }
      CHECK(victim.cancelled());
    }());
    CHECK(available_after_release == 0);
    CHECK_FALSE(victim_got_unit.load());
    CHECK(got.load() == 2);
    CHECK(semaphore.available() == 2);
  }

  TEST_CASE("async_semaphore: a task cancelled before acquire() throws and takes no unit") {
    corun::async_semaphore semaphore(1);
    std::atomic<bool> reached{false};
    std::atomic<bool> got_unit{false};
    corun::runtime rt(with_workers(2));
    CHECK_THROWS_AS(rt.block_on([&]() -> task<void> {
      auto inner = corun::spawn([&]() -> task<void> {
        // Yields, ignoring `cancelled`, until the parent's cancel arrived: the point is what
        // acquire() does next.
        while (!corun::this_task::cancellation().has_value()) {
          try {
            co_await corun::this_task::yield();
          } catch (const corun::cancelled&) {
          }
        }
        try {
          co_await semaphore.acquire();
          got_unit.store(true);
        } catch (const corun::cancelled&) {
          reached.store(true);
          throw;
        }
      });
      inner.cancel("no");
      co_await std::move(inner);
    }()),
                    corun::task_cancelled);
    CHECK(reached.load());
    CHECK_FALSE(got_unit.load());
    CHECK(semaphore.available() == 1);
  }

  TEST_CASE("async_semaphore: outside a task, acquire is a logic_error") {
    corun::async_semaphore semaphore(1);
    auto awaiter = semaphore.acquire();
    CHECK_THROWS_AS(static_cast<void>(awaiter.await_ready()), std::logic_error);
    CHECK(semaphore.available() == 1);
  }

  TEST_CASE("async_semaphore: a release racing the first waiter's cancel loses no unit") {
    // Each round: no unit is available, one or two waiters queue, then another thread releases
    // one unit while this one cancels the first waiter. The first waiter either got the unit or
    // threw; a second waiter always gets it; every waiter that got the unit gives it back, so
    // exactly one unit is available afterwards.
    const int rounds = static_cast<int>(scaled(400, 40));
    for (const std::size_t workers : {std::size_t{2}, std::size_t{4}}) {
      CAPTURE(workers);
      corun::async_semaphore semaphore(0);
      std::atomic<int> holders{0};
      std::atomic<int> max_holders{0};
      std::atomic<int> first_got{0};
      std::atomic<int> first_threw{0};
      std::atomic<int> second_got{0};
      std::atomic<int> queued{0};
      corun::runtime rt(with_workers(workers));
      for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        const bool with_second = round % 2 == 1;
        first_got.store(0);
        first_threw.store(0);
        second_got.store(0);
        queued.store(0);
        auto taker = [&](std::atomic<int>& got) -> task<void> {
          queued.fetch_add(1);
          auto unit = co_await semaphore.acquire_guard();
          raise_max(max_holders, holders.fetch_add(1) + 1);
          got.fetch_add(1);
          holders.fetch_sub(1);
        };
        auto first = rt.spawn([&]() -> task<void> {
          try {
            co_await taker(first_got);
          } catch (const corun::cancelled&) {
            first_threw.fetch_add(1);
            throw;
          }
        });
        REQUIRE(wait_for_count(queued, 1));
        corun::join_handle<void> second;
        if (with_second) {
          second = rt.spawn(taker(second_got));
          REQUIRE(wait_for_count(queued, 2));
        }
        std::thread releaser([&] { semaphore.release(); });
        for (int spin = 0; spin < round % 16; ++spin) {
          std::this_thread::yield();
        }
        first.cancel("race");
        releaser.join();
        CHECK(wait_until_done(first));
        if (with_second) {
          CHECK(wait_until_done(second));
          CHECK(second_got.load() == 1);
        }
        CHECK(first_got.load() + first_threw.load() == 1);
        CHECK(semaphore.available() == 1);
        REQUIRE(semaphore.try_acquire());  // back to none for the next round
      }
      CHECK(max_holders.load() == 1);
    }
  }
}
