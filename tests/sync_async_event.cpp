/// \file
/// `async_event`: set/wait, wake-ups of many waiters, and the claim protocol against cancellation.
#include "corun/async_event.hpp"

#include "support.hpp"

#include <atomic>
#include <vector>

using corun::task;
using namespace corun_test;

TEST_SUITE("sync_async_event") {
  TEST_CASE("async_event: wait returns at once when set, suspends until set otherwise") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_event event;
      std::atomic<int> woke{0};
      corun::runtime rt(with_workers(workers));
      CHECK_FALSE(event.is_set());
      std::vector<corun::join_handle<void>> waiters;
      for (int i = 0; i < 16; ++i) {
        waiters.push_back(rt.spawn([&]() -> task<void> {
          co_await event.wait();
          CHECK(event.is_set());
          woke.fetch_add(1);
        }));
      }
      // None can finish before the event is set.
      for (auto& h : waiters) {
        CHECK_FALSE(h.done());
      }
      CHECK(woke.load() == 0);
      event.set();
      event.set();  // idempotent
      for (auto& h : waiters) {
        h.get();
      }
      CHECK(woke.load() == 16);
      rt.block_on([](corun::async_event& e) -> task<void> { co_await e.wait(); }(event));  // set
    }
  }

  TEST_CASE("async_event: a cancelled waiter throws cancelled and leaves the queue") {
    corun::async_event event;
    corun::runtime rt(with_workers(2));
    auto waiter = rt.spawn([&]() -> task<int> {
      co_await event.wait();
      co_return 1;
    });
    auto other = rt.spawn([&]() -> task<int> {
      co_await event.wait();
      co_return 2;
    });
    waiter.cancel("stop waiting");
    CHECK_THROWS_AS(waiter.get(), corun::task_cancelled);
    CHECK_FALSE(other.done());
    event.set();
    CHECK(other.get() == 2);
  }

  TEST_CASE("async_event: an already cancelled task throws at wait, even on a set event") {
    corun::async_event event;
    event.set();
    std::atomic<bool> reached{false};
    corun::runtime rt(with_workers(1));
    CHECK_THROWS_AS(rt.block_on([&]() -> task<void> {
      auto inner = corun::spawn([&]() -> task<void> {
        try {
          co_await corun::this_task::yield();  // the parent cancels us meanwhile
        } catch (const corun::cancelled&) {
          // ignored: the point is what wait() does next
        }
        CHECK(corun::this_task::cancellation().has_value());
        try {
          co_await event.wait();
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
  }

  TEST_CASE("async_event: outside a task, wait is a logic_error") {
    corun::async_event event;
    auto awaiter = event.wait();
    CHECK_THROWS_AS(static_cast<void>(awaiter.await_ready()), std::logic_error);
  }

  TEST_CASE("async_event: set racing cancellation wakes each waiter exactly once") {
    const int rounds = static_cast<int>(scaled(200, 20));
    for (int round = 0; round < rounds; ++round) {
      CAPTURE(round);
      corun::async_event event;
      std::atomic<int> returned{0};
      std::atomic<int> cancelled{0};
      corun::runtime rt(with_workers(2));
      std::vector<corun::join_handle<void>> waiters;
      for (int i = 0; i < 8; ++i) {
        waiters.push_back(rt.spawn([&]() -> task<void> {
          try {
            co_await event.wait();
            returned.fetch_add(1);
          } catch (const corun::cancelled&) {
            cancelled.fetch_add(1);
            throw;
          }
        }));
      }
      std::thread setter([&] { event.set(); });
      for (std::size_t i = 0; i < waiters.size(); i += 2) {
        waiters[i].cancel("race");
      }
      setter.join();
      int done = 0;
      for (auto& h : waiters) {
        try {
          h.get();
        } catch (const corun::task_cancelled&) {
        }
        ++done;
      }
      CHECK(done == 8);
      // Every waiter either returned (woken by set) or threw (claimed by its cancel), never both.
      CHECK(returned.load() + cancelled.load() == 8);
      CHECK(returned.load() >= 4);  // the uncancelled half can only be woken by set()
    }
  }
}
