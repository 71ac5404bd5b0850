/// \file
/// The runtime clock, `sleep_for`/`sleep_until`, and virtual time.
///
/// Everything that depends on how long things take runs on virtual time, where the answer is
/// exact. The few real-time cases only assert lower bounds (a sleep never ends early) or that
/// something happens at all within a minute-long limit, so they cannot flake.
#include "corun/time.hpp"

#include "support.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>
#include <vector>

using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

TEST_SUITE("time_sleep") {
  TEST_CASE("virtual time: sleep_for(3600s) returns at once with now() an hour later") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      const auto slept = rt.block_on([]() -> task<std::chrono::nanoseconds> {
        const corun::time_point before = corun::now();
        co_await corun::sleep_for(3600s);
        co_return corun::now() - before;
      }());
      CHECK(slept == 3600s);
      CHECK(rt.now() - start == 3600s);
    }
  }

  TEST_CASE("virtual time: sleepers wake in deadline order, ties in the order they slept") {
    std::mutex lock;
    std::vector<int> order;
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([&]() -> task<void> {
      std::vector<corun::join_handle<void>> sleepers;
      // Durations out of order, with two ties (ids 2/5 at 30 ms, 3/6 at 10 ms).
      const std::chrono::milliseconds delays[] = {50ms, 20ms, 30ms, 10ms, 40ms, 30ms, 10ms};
      for (int id = 0; id < 7; ++id) {
        sleepers.push_back(corun::spawn([&, id, d = delays[id]]() -> task<void> {
          co_await corun::sleep_for(d);
          const std::lock_guard guard(lock);
          order.push_back(id);
        }));
      }
      for (auto& s : sleepers) {
        co_await s;
      }
    }());
    CHECK(order == std::vector<int>{3, 6, 1, 2, 5, 4, 0});
  }

  TEST_CASE("virtual time: every sleeper wakes exactly at its deadline, on any worker count") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> early{0};
      std::atomic<int> late{0};
      std::atomic<int> woke{0};
      corun::runtime rt(with_virtual_time(workers));
      const int sleepers = static_cast<int>(scaled(2000, 200));
      rt.block_on([&]() -> task<void> {
        std::mt19937 rng(static_cast<unsigned>(workers));
        std::vector<corun::join_handle<void>> handles;
        for (int i = 0; i < sleepers; ++i) {
          const auto delay = std::chrono::microseconds(rng() % 1'000'000);
          handles.push_back(corun::spawn([&, delay]() -> task<void> {
            const corun::time_point deadline = corun::now() + delay;
            co_await corun::sleep_until(deadline);
            // Time only moves while every worker is idle, straight to the earliest deadline.
            const corun::time_point woke_at = corun::now();
            if (woke_at < deadline) {
              early.fetch_add(1);
            } else if (woke_at > deadline) {
              late.fetch_add(1);
            }
            woke.fetch_add(1);
          }));
        }
        for (auto& h : handles) {
          co_await h;
        }
      }());
      CHECK(woke.load() == sleepers);
      CHECK(early.load() == 0);
      CHECK(late.load() == 0);
    }
  }

  TEST_CASE("virtual time: the same program wakes its tasks in the same order every run") {
    auto run_once = [](std::size_t workers) {
      std::mutex lock;
      std::vector<std::pair<std::chrono::nanoseconds, int>> wakeups;
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      rt.block_on([&]() -> task<void> {
        std::vector<corun::join_handle<void>> handles;
        for (int id = 0; id < 40; ++id) {
          handles.push_back(corun::spawn([&, id]() -> task<void> {
            // Each task sleeps a few times, with distinct deadlines across all tasks.
            for (int step = 1; step <= 3; ++step) {
              co_await corun::sleep_for(std::chrono::milliseconds(step * 1000 + id * 7));
              const std::lock_guard guard(lock);
              wakeups.emplace_back(corun::now() - start, id);
            }
          }));
        }
        for (auto& h : handles) {
          co_await h;
        }
      }());
      return wakeups;
    };
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      const auto first = run_once(workers);
      const auto second = run_once(workers);
      CHECK(first.size() == 120);
      CHECK(first == second);
      CHECK(std::is_sorted(first.begin(), first.end()));
    }
  }

  TEST_CASE("virtual time: advance moves the clock by hand and fires what came due") {
    std::atomic<bool> woke{false};
    corun::runtime rt(with_virtual_time(2));
    const corun::time_point start = rt.now();
    rt.advance(5s);
    CHECK(rt.now() - start == 5s);
    rt.advance(-1s);  // time never goes back
    CHECK(rt.now() - start == 5s);
    // A task that sleeps while another keeps the pool busy: time does not jump on its own,
    // so only `advance` can wake the sleeper.
    std::atomic<bool> stop_spinning{false};
    std::atomic<bool> asleep{false};
    auto spinner = rt.spawn(yield_until(stop_spinning));
    auto sleeper = rt.spawn([&]() -> task<void> {
      asleep.store(true);
      co_await corun::sleep_until(start + 10s);
      woke.store(true);
    });
    REQUIRE(wait_until_set(asleep));
    rt.advance(4s);
    CHECK_FALSE(woke.load());
    rt.advance(6s);
    CHECK(wait_until_set(woke));
    stop_spinning.store(true);
    spinner.get();
    sleeper.get();
    CHECK(rt.now() - start == 15s);
  }

  TEST_CASE("virtual time: advance saturates instead of wrapping around") {
    corun::runtime rt(with_virtual_time(1));
    const corun::time_point start = rt.now();
    rt.advance(std::chrono::nanoseconds::max());
    const corun::time_point far = rt.now();
    CHECK(far > start);
    rt.advance(std::chrono::nanoseconds::max());
    CHECK(rt.now() == far);  // already at the end of the clock
  }

  TEST_CASE("advance on a real-time runtime is a logic_error") {
    corun::runtime rt(with_workers(1));
    CHECK_THROWS_AS(rt.advance(1s), std::logic_error);
  }

  TEST_CASE("sleep_for and now outside a task are logic_errors") {
    CHECK_THROWS_AS(static_cast<void>(corun::now()), std::logic_error);
    CHECK_THROWS_AS(static_cast<void>(corun::sleep_for(1s)), std::logic_error);
  }

  TEST_CASE("a sleep whose deadline passed returns without suspending") {
    corun::runtime rt(with_workers(1));
    rt.block_on([]() -> task<void> {
      co_await corun::sleep_for(0s);
      co_await corun::sleep_for(-5s);
      co_await corun::sleep_until(corun::now() - 1h);
      co_await corun::sleep_for(std::chrono::hours::max() - std::chrono::hours::max());
    }());
  }

  TEST_CASE("real time: a sleep never ends before its deadline") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const auto slept = rt.block_on([]() -> task<std::chrono::nanoseconds> {
        const corun::time_point before = corun::now();
        co_await corun::sleep_for(20ms);
        co_return corun::now() - before;
      }());
      CHECK(slept >= 20ms);
    }
  }

  TEST_CASE("real time: many concurrent sleepers all wake, none early") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> early{0};
      std::atomic<int> woke{0};
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        std::vector<corun::join_handle<void>> handles;
        for (int i = 0; i < 200; ++i) {
          handles.push_back(corun::spawn([&, i]() -> task<void> {
            const corun::time_point deadline = corun::now() + std::chrono::milliseconds(i % 25);
            co_await corun::sleep_until(deadline);
            if (corun::now() < deadline) {
              early.fetch_add(1);
            }
            woke.fetch_add(1);
          }));
        }
        for (auto& h : handles) {
          co_await h;
        }
      }());
      CHECK(woke.load() == 200);
      CHECK(early.load() == 0);
    }
  }

  TEST_CASE("real time: an earlier deadline wakes the worker sleeping until a later one") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      // A far deadline first: a parked worker now sleeps until it (an hour away). The worker
      // that runs it parks afterwards, so counting from before the spawn cannot miss that.
      const std::uint64_t parks_before = rt.stats().parks;
      auto far = rt.spawn([]() -> task<void> { co_await corun::sleep_for(1h); });
      while (rt.stats().parks == parks_before) {
        std::this_thread::yield();  // let the workers fall asleep
      }
      // Armed from a worker while the server sleeps until the far deadline: it must be kicked.
      auto near = rt.spawn([]() -> task<void> { co_await corun::sleep_for(10ms); });
      CHECK(wait_until_done(near));
      near.get();
      far.cancel("done");
      CHECK_THROWS_AS(far.get(), corun::task_cancelled);
    }
  }

  TEST_CASE("a cancelled sleep wakes at once and throws cancelled with the reason") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> asleep{false};
      std::atomic<bool> saw_cancel{false};
      corun::runtime rt(with_workers(workers));
      auto sleeper = rt.spawn([&]() -> task<void> {
        try {
          asleep.store(true);
          co_await corun::sleep_for(24h);
        } catch (const corun::cancelled& c) {
          saw_cancel.store(c.message() == "wake up");
          throw;
        }
      });
      REQUIRE(wait_until_set(asleep));
      sleeper.cancel("wake up");
      // A day-long sleep: only the cancel wake-up can end it within the minute.
      CHECK(wait_until_done(sleeper));
      CHECK_THROWS_AS(sleeper.get(), corun::task_cancelled);
      CHECK(saw_cancel.load());
    }
  }

  TEST_CASE("a task cancelled before it sleeps throws at the sleep without waiting") {
    corun::runtime rt(with_virtual_time(1));
    const corun::time_point start = rt.now();
    auto sleeper = rt.spawn([]() -> task<void> {
      // Busy until the cancel arrived (the clock cannot jump while a worker runs), ignoring
      // it, so that the sleep below is reached while cancelled.
      while (!corun::this_task::cancellation().has_value()) {
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          // ignored on purpose
        }
      }
      co_await corun::sleep_for(1h);
    });
    sleeper.cancel("early");
    CHECK_THROWS_AS(sleeper.get(), corun::task_cancelled);
    CHECK(rt.now() == start);  // the hour never passed
  }

  TEST_CASE("destroying a runtime with sleeping tasks cancels them and leaks nothing") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<int> started{0};
      {
        corun::runtime rt(with_workers(workers));
        for (int i = 0; i < 100; ++i) {
          static_cast<void>(rt.spawn([&]() -> task<void> {
            const alive_guard guard(alive);
            started.fetch_add(1);
            co_await corun::sleep_for(24h);
          }));
        }
        while (started.load() < 100) {
          std::this_thread::yield();
        }
        CHECK(alive.load() == 100);
      }
      CHECK(alive.load() == 0);  // every sleeper unwound; the frame count is checked after
    }
  }
}
