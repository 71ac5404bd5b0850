/// \file
/// Many tasks contending for an `async_mutex` or an `async_semaphore` while random ones are
/// cancelled: waiting, being handed the lock, or holding it across a suspension. Whatever the
/// interleaving, no two tasks hold the mutex (no more than n the semaphore) at once, no increment
/// is lost, no hand-off is lost (every task ends and a fresh one can lock), and nothing hangs (a
/// watchdog turns a lost wake-up into a failure).
#include "support.hpp"

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// Raises `max_seen` to `value` if it is higher.
void raise_max(std::atomic<int>& max_seen, int value) {
  int seen = max_seen.load(std::memory_order_relaxed);
  while (seen < value && !max_seen.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

/// Cancels about half of `tasks`, in random order with random pauses, from this thread.
void cancel_randomly(std::vector<corun::join_handle<void>>& tasks, std::mt19937& rng) {
  for (auto& h : tasks) {
    if (rng() % 2 == 0) {
      continue;
    }
    const unsigned pause = rng() % 64;
    for (unsigned i = 0; i < pause; ++i) {
      std::this_thread::yield();
    }
    h.cancel("random");
  }
}

/// Joins every task; returns how many ended cancelled. Anything else fails the test.
int join_all(std::vector<corun::join_handle<void>>& tasks) {
  int cancelled = 0;
  for (auto& h : tasks) {
    try {
      h.get();
    } catch (const corun::task_cancelled&) {
      ++cancelled;
    }
  }
  return cancelled;
}

}  // namespace

TEST_SUITE("stress_sync_lock_races") {
  TEST_CASE(
      "sync_lock_races: lockers cancelled at random lose neither the mutex nor an increment") {
    const std::uint64_t rounds = scaled(300, 10);
    constexpr int lockers = 24;
    constexpr int iterations = 20;
    watchdog dog("async_mutex under random cancellation");
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_mutex mutex;
      long counter = 0;  // deliberately not atomic: the mutex is what protects it
      std::atomic<long> entered{0};
      std::atomic<int> inside{0};
      std::atomic<int> max_inside{0};
      corun::runtime rt(with_workers(workers));
      std::mt19937 rng(static_cast<std::mt19937::result_type>(workers * 104'729U));
      int cancelled_total = 0;
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("workers " + std::to_string(workers) + ", round " + std::to_string(round));
        std::vector<corun::join_handle<void>> tasks;
        for (int l = 0; l < lockers; ++l) {
          const unsigned pattern = rng();
          tasks.push_back(rt.spawn([&, pattern]() -> task<void> {
            for (int i = 0; i < iterations; ++i) {
              auto guard = co_await mutex.lock();
              raise_max(max_inside, inside.fetch_add(1, std::memory_order_relaxed) + 1);
              const long before = counter;
              if (((pattern >> (i % 16)) & 1U) != 0) {
                try {
                  // Holding the lock across a suspension where a cancel may strike: the guard
                  // then unlocks while unwinding, and this iteration counts nothing.
                  co_await corun::this_task::yield();
                } catch (const corun::cancelled&) {
                  inside.fetch_sub(1, std::memory_order_relaxed);
                  throw;
                }
              }
              counter = before + 1;
              entered.fetch_add(1, std::memory_order_relaxed);
              inside.fetch_sub(1, std::memory_order_relaxed);
            }
          }));
        }
        cancel_randomly(tasks, rng);
        cancelled_total += join_all(tasks);
        REQUIRE(counter == entered.load());
        REQUIRE_FALSE(mutex.is_locked());
        rt.block_on([](corun::async_mutex& m) -> task<void> { auto g = co_await m.lock(); }(mutex));
      }
      CHECK(max_inside.load() == 1);
      CHECK(counter == entered.load());
      MESSAGE("workers " << workers << ": " << entered.load() << " critical sections, "
                         << cancelled_total << " lockers cancelled");
    }
  }

  TEST_CASE("sync_lock_races: acquirers cancelled at random never exceed the units nor lose one") {
    const std::uint64_t rounds = scaled(300, 10);
    constexpr int takers = 24;
    constexpr int iterations = 20;
    constexpr std::size_t units = 3;
    watchdog dog("async_semaphore under random cancellation");
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_semaphore semaphore(units);
      std::atomic<int> holders{0};
      std::atomic<int> max_holders{0};
      std::atomic<long> entered{0};
      corun::runtime rt(with_workers(workers));
      std::mt19937 rng(static_cast<std::mt19937::result_type>(workers * 7'919U));
      int cancelled_total = 0;
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("workers " + std::to_string(workers) + ", round " + std::to_string(round));
        std::vector<corun::join_handle<void>> tasks;
        for (int t = 0; t < takers; ++t) {
          const unsigned pattern = rng();
          tasks.push_back(rt.spawn([&, pattern]() -> task<void> {
            for (int i = 0; i < iterations; ++i) {
              const bool with_guard = ((pattern >> (i % 16)) & 1U) != 0;
              corun::async_semaphore::guard guard;
              if (with_guard) {
                guard = co_await semaphore.acquire_guard();
              } else {
                co_await semaphore.acquire();
              }
              raise_max(max_holders, holders.fetch_add(1, std::memory_order_relaxed) + 1);
              entered.fetch_add(1, std::memory_order_relaxed);
              if (with_guard) {
                try {
                  co_await corun::this_task::yield();
                } catch (const corun::cancelled&) {
                  holders.fetch_sub(1, std::memory_order_relaxed);
                  throw;
                }
              }
              holders.fetch_sub(1, std::memory_order_relaxed);
              if (!with_guard) {
                semaphore.release();
              }
            }
          }));
        }
        cancel_randomly(tasks, rng);
        cancelled_total += join_all(tasks);
        REQUIRE(semaphore.available() == units);
      }
      CHECK(max_holders.load() >= 1);
      CHECK(max_holders.load() <= static_cast<int>(units));
      MESSAGE("workers " << workers << ": " << entered.load() << " acquisitions, "
                         << cancelled_total << " takers cancelled");
    }
  }
}
