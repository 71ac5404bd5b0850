/// \file
/// `async_mutex`: mutual exclusion, FIFO hand-off, guards, and the claim protocol against
/// cancellation (a cancelled waiter leaves the queue; a hand-off racing a cancel is never lost).
#include "corun/async_mutex.hpp"

#include "support.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
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

TEST_SUITE("sync_async_mutex") {
  TEST_CASE("async_mutex: tasks contending for the lock never overlap and lose no increment") {
    constexpr int tasks = 32;
    constexpr int rounds = 50;
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_mutex mutex;
      long counter = 0;  // deliberately not atomic: the mutex is what protects it
      std::atomic<int> inside{0};
      std::atomic<int> max_inside{0};
      corun::runtime rt(with_workers(workers));
      std::vector<corun::join_handle<void>> lockers;
      for (int t = 0; t < tasks; ++t) {
        lockers.push_back(rt.spawn([&, t]() -> task<void> {
          for (int i = 0; i < rounds; ++i) {
            auto guard = co_await mutex.lock();
            raise_max(max_inside, inside.fetch_add(1) + 1);
            const long before = counter;
            if ((i + t) % 4 == 0) {
              co_await corun::this_task::yield();  // hold the lock across a suspension
            }
            counter = before + 1;
            inside.fetch_sub(1);
          }
        }));
      }
      for (auto& h : lockers) {
        h.get();
      }
      CHECK(counter == long{tasks} * rounds);
      CHECK(max_inside.load() == 1);
      CHECK_FALSE(mutex.is_locked());
      CHECK(mutex.try_lock());
      mutex.unlock();
    }
  }

  TEST_CASE("async_mutex: waiters get the lock in the order they queued, and nobody barges") {
    // One worker: a waiter that set its flag runs on to its suspension in lock() before the
    // holder runs again, so the queue order is the spawn order.
    constexpr int waiters = 8;
    corun::async_mutex mutex;
    std::vector<int> order;  // written under the mutex
    std::atomic<int> queued{0};
    bool barged = true;
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      auto guard = co_await mutex.lock();
      for (int i = 0; i < waiters; ++i) {
        (void)corun::spawn([&, i]() -> task<void> {
          queued.fetch_add(1);
          auto mine = co_await mutex.lock();
          order.push_back(i);
        });
        while (queued.load() != i + 1) {
          co_await corun::this_task::yield();
        }
      }
      guard.unlock();
      // The lock went straight to the first waiter: it is still held, so a newcomer queues.
      barged = mutex.try_lock();
    }());
    CHECK_FALSE(barged);
    REQUIRE(order.size() == waiters);
    for (int i = 0; i < waiters; ++i) {
      CHECK(order[static_cast<std::size_t>(i)] == i);
    }
    CHECK_FALSE(mutex.is_locked());
  }

  TEST_CASE("async_mutex: try_lock takes a free lock only, and unlock of a free mutex throws") {
    corun::async_mutex mutex;
    CHECK_FALSE(mutex.is_locked());
    CHECK(mutex.try_lock());
    CHECK(mutex.is_locked());
    CHECK_FALSE(mutex.try_lock());
    mutex.unlock();
    CHECK_FALSE(mutex.is_locked());
    CHECK_THROWS_AS(mutex.unlock(), std::logic_error);
    {
      REQUIRE(mutex.try_lock());
      const corun::async_mutex::guard adopted(mutex, std::adopt_lock);
      CHECK(adopted.owns_lock());
      CHECK(adopted.mutex() == &mutex);
    }
    CHECK_FALSE(mutex.is_locked());
  }

  TEST_CASE("async_mutex: a guard unlocks when destroyed, unlocks early, and moves") {
    corun::async_mutex first;
    corun::async_mutex second;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      {
        auto guard = co_await first.lock();
        CHECK(guard.owns_lock());
        CHECK(static_cast<bool>(guard));
        CHECK(first.is_locked());
      }
      CHECK_FALSE(first.is_locked());

      auto guard = co_await first.lock();
      auto moved = std::move(guard);
      CHECK_FALSE(guard.owns_lock());  // NOLINT(bugprone-use-after-move): checking the moved-from
      CHECK(moved.owns_lock());
      CHECK(first.is_locked());
      moved.unlock();
      CHECK_FALSE(moved.owns_lock());
      CHECK_FALSE(first.is_locked());
      moved.unlock();  // a no-op once it owns nothing
      CHECK_FALSE(first.is_locked());

      // Move assignment unlocks what the target held.
      auto a = co_await first.lock();
      auto b = co_await second.lock();
      a = std::move(b);
      CHECK_FALSE(first.is_locked());
      CHECK(second.is_locked());
      CHECK(a.mutex() == &second);
    }());
    CHECK_FALSE(first.is_locked());
    CHECK_FALSE(second.is_locked());
  }

  TEST_CASE("async_mutex: a guard may be released by another task than the locker") {
    corun::async_mutex mutex;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      auto guard = co_await mutex.lock();
      auto releaser = corun::spawn(
          [](corun::async_mutex::guard held) -> task<void> {
            co_await corun::this_task::yield();
            held.unlock();
          },
          std::move(guard));
      auto relocked = co_await mutex.lock();  // waits until the other task released it
      CHECK(relocked.owns_lock());
      co_await releaser;
    }());
    CHECK_FALSE(mutex.is_locked());
  }

  TEST_CASE("async_mutex: a cancelled waiter throws cancelled and leaves the queue") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_mutex mutex;
      std::atomic<int> queued{0};
      std::atomic<bool> cancelled_got_lock{false};
      std::atomic<bool> cancelled_threw{false};
      int next_value = 0;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        auto guard = co_await mutex.lock();
        auto victim = corun::spawn([&]() -> task<void> {
          queued.fetch_add(1);
          try {
            auto mine = co_await mutex.lock();
            cancelled_got_lock.store(true);
          } catch (const corun::cancelled&) {
            cancelled_threw.store(true);
            throw;
          }
        });
        auto next = corun::spawn([&]() -> task<int> {
          queued.fetch_add(1);
          auto mine = co_await mutex.lock();
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
        CHECK_FALSE(next.done());  // still waiting: the lock is ours
        guard.unlock();            // must reach `next`, not the departed victim
        next_value = co_await next;
      }());
      CHECK(cancelled_threw.load());
      CHECK_FALSE(cancelled_got_lock.load());
      CHECK(next_value == 7);
      CHECK_FALSE(mutex.is_locked());
    }
  }

  TEST_CASE("async_mutex: unlock passes the lock over a waiter its cancel claimed first") {
    // One worker: the cancel claims the first waiter and schedules it, but it cannot run (and
    // leave the queue) before the holder, still running, unlocks. The unlock finds the cancelled
    // waiter at the front and must hand the lock to the second one.
    corun::async_mutex mutex;
    std::atomic<int> queued{0};
    std::atomic<bool> victim_got_lock{false};
    bool locked_after_unlock = false;
    int next_value = 0;
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      auto guard = co_await mutex.lock();
      auto victim = corun::spawn([&]() -> task<void> {
        queued.fetch_add(1);
        auto mine = co_await mutex.lock();
        victim_got_lock.store(true);
      });
      while (queued.load() != 1) {
        co_await corun::this_task::yield();
      }
      auto next = corun::spawn([&]() -> task<int> {
        queued.fetch_add(1);
        auto mine = co_await mutex.lock();
        co_return 7;
      });
      while (queued.load() != 2) {
        co_await corun::this_task::yield();
      }
      victim.cancel("claimed first");
      guard.unlock();
      locked_after_unlock = mutex.is_locked();  // handed to `next`, not freed
      if (!locked_after_unlock) {
        next.cancel("the hand-off was lost");  // fail the checks below instead of hanging
      }
      try {
        next_value = co_await next;
      } catch (const corun::task_cancelled&) {
      }
      try {
        co_await victim;
      } catch (const corun::task_cancelled&) {
      }
      CHECK(victim.cancelled());
    }());
    CHECK(locked_after_unlock);
    CHECK_FALSE(victim_got_lock.load());
    CHECK(next_value == 7);
    CHECK_FALSE(mutex.is_locked());
  }

  TEST_CASE("async_mutex: a waiter handed the lock as it is cancelled keeps the lock") {
    // One worker: the unlock claims the queued waiter for the mutex, then the cancel arrives
    // before the waiter runs. Completion beats cancellation: it resumes holding the lock and
    // sees the cancel at its next suspension point, where its guard unwinds and unlocks.
    corun::async_mutex mutex;
    std::atomic<bool> queued{false};
    std::atomic<bool> got_lock{false};
    std::atomic<bool> cancelled_after{false};
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      auto guard = co_await mutex.lock();
      auto waiter = corun::spawn([&]() -> task<void> {
        queued.store(true);
        auto mine = co_await mutex.lock();
        got_lock.store(true);
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          cancelled_after.store(true);
          throw;
        }
      });
      while (!queued.load()) {
        co_await corun::this_task::yield();
      }
      guard.unlock();
      waiter.cancel("too late");
      try {
        co_await waiter;
      } catch (const corun::task_cancelled&) {
      }
    }());
    CHECK(got_lock.load());
    CHECK(cancelled_after.load());
    CHECK_FALSE(mutex.is_locked());
  }

  TEST_CASE("async_mutex: a task cancelled before lock() throws and does not take the lock") {
    for (const bool held : {false, true}) {
      CAPTURE(held);
      corun::async_mutex mutex;
      std::atomic<bool> reached{false};
      std::atomic<bool> got_lock{false};
      corun::runtime rt(with_workers(2));
      if (held) {
        REQUIRE(mutex.try_lock());
      }
      CHECK_THROWS_AS(rt.block_on([&]() -> task<void> {
        auto inner = corun::spawn([&]() -> task<void> {
          // Yields, ignoring `cancelled`, until the parent's cancel arrived: the point is what
          // lock() does next.
          while (!corun::this_task::cancellation().has_value()) {
            try {
              co_await corun::this_task::yield();
            } catch (const corun::cancelled&) {
            }
          }
          try {
            auto guard = co_await mutex.lock();
            got_lock.store(true);
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
      CHECK_FALSE(got_lock.load());
      CHECK(mutex.is_locked() == held);
      if (held) {
        mutex.unlock();
      }
      CHECK(mutex.try_lock());
      mutex.unlock();
    }
  }

  TEST_CASE("async_mutex: outside a task, lock is a logic_error") {
    corun::async_mutex mutex;
    auto awaiter = mutex.lock();
    CHECK_THROWS_AS(static_cast<void>(awaiter.await_ready()), std::logic_error);
    CHECK_FALSE(mutex.is_locked());
  }

  TEST_CASE(
      "async_mutex: an unlock racing the first waiter's cancel hands the lock on exactly once") {
    // Each round: the lock is held by this thread, one or two waiters queue, then another thread
    // unlocks while this one cancels the first waiter. The first waiter either got the lock or
    // threw, never both nor neither; a second waiter always gets it (directly, or passed on from
    // the cancelled first); afterwards the mutex is free.
    const int rounds = static_cast<int>(scaled(400, 40));
    for (const std::size_t workers : {std::size_t{2}, std::size_t{4}}) {
      CAPTURE(workers);
      corun::async_mutex mutex;
      std::atomic<int> inside{0};
      std::atomic<int> max_inside{0};
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
        REQUIRE(mutex.try_lock());
        auto locker = [&](std::atomic<int>& got) -> task<void> {
          queued.fetch_add(1);
          auto guard = co_await mutex.lock();
          raise_max(max_inside, inside.fetch_add(1) + 1);
          got.fetch_add(1);
          inside.fetch_sub(1);
        };
        auto first = rt.spawn([&]() -> task<void> {
          try {
            co_await locker(first_got);
          } catch (const corun::cancelled&) {
            first_threw.fetch_add(1);
            throw;
          }
        });
        REQUIRE(wait_for_count(queued, 1));
        corun::join_handle<void> second;
        if (with_second) {
          second = rt.spawn(locker(second_got));
          REQUIRE(wait_for_count(queued, 2));
        }
        std::thread unlocker([&] { mutex.unlock(); });
        for (int spin = 0; spin < round % 16; ++spin) {
          std::this_thread::yield();
        }
        first.cancel("race");
        unlocker.join();
        CHECK(wait_until_done(first));
        if (with_second) {
          CHECK(wait_until_done(second));
          CHECK(second_got.load() == 1);
        }
        CHECK(first_got.load() + first_threw.load() == 1);
        // The lock is not lost: a fresh task takes it.
        rt.block_on([](corun::async_mutex& m) -> task<void> { auto g = co_await m.lock(); }(mutex));
        CHECK_FALSE(mutex.is_locked());
      }
      CHECK(max_inside.load() == 1);
    }
  }
}
