/// \file
/// `async_generator`: values in order, laziness, end and errors, destruction of a suspended
/// body, corun awaitables inside the body, cancellation at `next()`, deep synchronous use.
#include "corun/async_generator.hpp"

#include "support.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corun::async_generator;
using corun::task;
using namespace corun_test;

namespace {

async_generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i) {
    co_yield i;
  }
}

async_generator<int> nothing() { co_return; }

/// Yields `0, 1, ...` forever, keeping `alive` up while its frame lives.
async_generator<int> endless(std::atomic<int>& alive) {
  const alive_guard guard(alive);
  for (int i = 0;; ++i) {
    co_yield i;
  }
}

/// Yields `count` values, then throws `test_error(id)`.
async_generator<int> failing_after(int count, int id, std::atomic<int>& alive) {
  const alive_guard guard(alive);
  for (int i = 0; i < count; ++i) {
    co_yield i;
  }
  throw test_error(id);
}

/// Every value of `gen`, in order.
template <class T>
task<std::vector<T>> drain(async_generator<T> gen) {
  std::vector<T> values;
  while (std::optional<T> v = co_await gen.next()) {
    values.push_back(std::move(*v));
  }
  co_return values;
}

std::vector<int> iota(int n) {
  std::vector<int> values;
  for (int i = 0; i < n; ++i) {
    values.push_back(i);
  }
  return values;
}

/// Passes every value of `inner` on, plus `add`: generators consuming generators.
async_generator<int> plus(async_generator<int> inner, int add) {
  while (std::optional<int> v = co_await inner.next()) {
    co_yield *v + add;
  }
}

/// `depth` generators stacked, each adding one.
async_generator<int> stacked(int depth, int n) {
  if (depth == 0) {
    return count_to(n);
  }
  return plus(stacked(depth - 1, n), 1);
}

}  // namespace

TEST_SUITE("sync_async_generator") {
  TEST_CASE("async_generator: yields its values in order, then ends") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK(rt.block_on(drain(count_to(100))) == iota(100));
      rt.block_on([]() -> task<void> {
        async_generator<int> gen = count_to(2);
        CHECK(co_await gen.next() == std::optional<int>(0));
        CHECK(co_await gen.next() == std::optional<int>(1));
        CHECK_FALSE((co_await gen.next()).has_value());
        CHECK_FALSE((co_await gen.next()).has_value());  // and keeps ending
      }());
    }
  }

  TEST_CASE("async_generator: an empty one ends at its first next()") {
    corun::runtime rt(with_workers(1));
    rt.block_on([]() -> task<void> {
      async_generator<int> gen = nothing();
      CHECK_FALSE((co_await gen.next()).has_value());
      CHECK_FALSE((co_await gen.next()).has_value());
    }());
  }

  TEST_CASE("async_generator: is lazy, the body starts at the first next()") {
    std::atomic<int> started{0};
    corun::runtime rt(with_workers(1));
    auto make = [](std::atomic<int>& flag) -> async_generator<int> {
      flag.fetch_add(1);
      co_yield 1;
    };
    {
      async_generator<int> unused = make(started);
      CHECK(unused.valid());
    }
    CHECK(started.load() == 0);
    rt.block_on([](async_generator<int> gen, std::atomic<int>& flag) -> task<void> {
      CHECK(flag.load() == 0);
      CHECK(co_await gen.next() == std::optional<int>(1));
      CHECK(flag.load() == 1);
    }(make(started), started));
  }

  TEST_CASE("async_generator: co_yield copies lvalues, moves rvalues and converts") {
    corun::runtime rt(with_workers(1));
    auto strings = []() -> async_generator<std::string> {
      std::string kept = "kept";
      co_yield kept;                      // copied
      co_yield std::string("temporary");  // moved
      co_yield "literal";                 // converted
      std::string moved = "moved";
      co_yield std::move(moved);
      co_yield kept;  // still there: the first yield copied it
    };
    CHECK(rt.block_on(drain(strings())) ==
          std::vector<std::string>{"kept", "temporary", "literal", "moved", "kept"});

    auto boxes = []() -> async_generator<std::unique_ptr<int>> {
      for (int i = 0; i < 3; ++i) {
        auto box = std::make_unique<int>(i);
        co_yield std::move(box);
      }
      co_yield std::make_unique<int>(3);
    };
    const std::vector<std::unique_ptr<int>> values = rt.block_on(drain(boxes()));
    REQUIRE(values.size() == 4);
    for (int i = 0; i < 4; ++i) {
      REQUIRE(values[static_cast<std::size_t>(i)] != nullptr);
      CHECK(*values[static_cast<std::size_t>(i)] == i);
    }
  }

  TEST_CASE("async_generator: an exception of the body is rethrown from next(), which then ends") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      corun::runtime rt(with_workers(workers));
      rt.block_on([](std::atomic<int>& live) -> task<void> {
        async_generator<int> gen = failing_after(2, 7, live);
        CHECK(co_await gen.next() == std::optional<int>(0));
        CHECK(co_await gen.next() == std::optional<int>(1));
        int caught = -1;
        try {
          static_cast<void>(co_await gen.next());
        } catch (const test_error& e) {
          caught = e.id();
        }
        CHECK(caught == 7);
        CHECK(live.load() == 0);  // the body's locals were destroyed as the exception left it
        CHECK_FALSE((co_await gen.next()).has_value());
      }(alive));
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("async_generator: destroying a suspended one runs its body's destructors") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      corun::runtime rt(with_workers(workers));
      rt.block_on([](std::atomic<int>& live) -> task<void> {
        {
          async_generator<int> gen = endless(live);
          for (int i = 0; i < 3; ++i) {
            CHECK(co_await gen.next() == std::optional<int>(i));
          }
          CHECK(live.load() == 1);
        }
        CHECK(live.load() == 0);
        // Moved-from and reassigned generators destroy what they held, too.
        async_generator<int> first = endless(live);
        static_cast<void>(co_await first.next());
        async_generator<int> second = std::move(first);
        CHECK_FALSE(first.valid());  // NOLINT(bugprone-use-after-move): checking the move
        CHECK(live.load() == 1);
        second = count_to(1);
        CHECK(live.load() == 0);
      }(alive));
      // The live-frame check of the test main verifies no generator frame is left.
    }
  }

  TEST_CASE(
      "async_generator: the body awaits tasks, joins, events and yields in the consumer's task") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_event event;
      std::atomic<std::uint64_t> body_task{0};
      corun::runtime rt(with_workers(workers));
      auto body = [](corun::async_event& e,
                     std::atomic<std::uint64_t>& seen) -> async_generator<int> {
        seen.store(corun::this_task::id());
        co_yield co_await value_of(1);  // a task, awaited inline
        auto child = corun::spawn([]() -> task<int> {
          co_await yield_times(3);
          co_return 2;
        });
        co_yield co_await child;  // a join handle: the child is the consumer's child
        auto setter = corun::spawn([](corun::async_event& ev) -> task<void> {
          co_await yield_times(2);
          ev.set();
        }(e));
        co_await e.wait();  // suspends the consumer's task until set
        co_yield 3;
        co_await corun::this_task::yield();
        co_await setter;
        if (corun::this_task::id() != seen.load()) {
          throw std::logic_error("the body changed tasks");
        }
        co_yield 4;
      };
      const std::vector<int> values = rt.block_on(
          [](async_generator<int> gen, std::atomic<std::uint64_t>& seen) -> task<std::vector<int>> {
            std::vector<int> got;
            while (std::optional<int> v = co_await gen.next()) {
              CHECK(corun::this_task::id() == seen.load());
              got.push_back(*v);
            }
            co_return got;
          }(body(event, body_task), body_task));
      CHECK(values == std::vector<int>{1, 2, 3, 4});
    }
  }

  TEST_CASE("async_generator: can be handed to another task between next() calls") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const int sum = rt.block_on([]() -> task<int> {
        async_generator<int> gen = []() -> async_generator<int> {
          for (int i = 1; i <= 10; ++i) {
            co_await corun::this_task::yield();
            co_yield i * 100 + static_cast<int>(corun::this_task::id() % 100);
          }
        }();
        const int first = *co_await gen.next();
        CHECK(first % 100 == static_cast<int>(corun::this_task::id() % 100));
        auto other = corun::spawn([](async_generator<int> g) -> task<int> {
          int total = 0;
          while (std::optional<int> v = co_await g.next()) {
            CHECK(*v % 100 == static_cast<int>(corun::this_task::id() % 100));
            total += *v / 100;
          }
          co_return total;
        }(std::move(gen)));
        co_return first / 100 + co_await other;
      }());
      CHECK(sum == 55);
    }
  }

  TEST_CASE(
      "async_generator: next() of a cancelled task throws cancelled without resuming the body") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> resumed{0};
      std::atomic<bool> waiting{false};
      std::atomic<bool> threw{false};
      corun::runtime rt(with_workers(workers));
      auto consumer = rt.spawn([&]() -> task<void> {
        auto gen = [](std::atomic<int>& count) -> async_generator<int> {
          for (int i = 0;; ++i) {
            count.fetch_add(1);
            co_yield i;
          }
        }(resumed);
        CHECK(co_await gen.next() == std::optional<int>(0));
        try {
          waiting.store(true);
          co_await corun::this_task::sleep_forever();
        } catch (const corun::cancelled&) {
          // ignored: the point is what next() does now
        }
        try {
          static_cast<void>(co_await gen.next());
        } catch (const corun::cancelled&) {
          threw.store(true);
          throw;
        }
      });
      wait_for_flag(waiting);
      consumer.cancel("stop consuming");
      CHECK_THROWS_AS(consumer.get(), corun::task_cancelled);
      CHECK(threw.load());
      CHECK(resumed.load() == 1);
    }
  }

  TEST_CASE(
      "async_generator: a cancel reaches the body's suspension points and leaves through next()") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<bool> sleeping{false};
      std::atomic<bool> body_saw_cancel{false};
      corun::runtime rt(with_workers(workers));
      auto consumer = rt.spawn([&]() -> task<void> {
        auto gen = [](std::atomic<int>& live, std::atomic<bool>& asleep,
                      std::atomic<bool>& saw) -> async_generator<int> {
          const alive_guard guard(live);
          co_yield 1;
          try {
            asleep.store(true);
            co_await corun::this_task::sleep_forever();
          } catch (const corun::cancelled&) {
            saw.store(true);
            throw;
          }
          co_yield 2;
        }(alive, sleeping, body_saw_cancel);
        CHECK(co_await gen.next() == std::optional<int>(1));
        try {
          static_cast<void>(co_await gen.next());
        } catch (const corun::cancelled&) {
          CHECK(alive.load() == 0);  // the body ended with the exception
          throw;
        }
      });
      wait_for_flag(sleeping);
      consumer.cancel("stop");
      CHECK_THROWS_AS(consumer.get(), corun::task_cancelled);
      CHECK(body_saw_cancel.load());
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("async_generator: a million values consumed in a loop do not overflow the stack") {
    constexpr int million = 1'000'000;
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::int64_t sum = rt.block_on([]() -> task<std::int64_t> {
        async_generator<int> gen = count_to(million);
        std::int64_t total = 0;
        while (std::optional<int> v = co_await gen.next()) {
          total += *v % 3;
        }
        co_return total;
      }());
      std::int64_t expected = 0;
      for (int i = 0; i < million; ++i) {
        expected += i % 3;
      }
      CHECK(sum == expected);
    }
  }

  TEST_CASE(
      "async_generator: a million values each awaiting a completed task do not overflow the "
      "stack") {
    constexpr int million = 1'000'000;
    corun::runtime rt(with_workers(1));
    const int count = rt.block_on([]() -> task<int> {
      auto gen = []() -> async_generator<int> {
        for (int i = 0; i < million; ++i) {
          co_yield co_await value_of(1);
        }
      }();
      int total = 0;
      while (std::optional<int> v = co_await gen.next()) {
        total += *v;
      }
      co_return total;
    }());
    CHECK(count == million);
  }

  TEST_CASE("async_generator: stacked generators pass values through every level") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::vector<int> values = rt.block_on(drain(stacked(200, 1000)));
      REQUIRE(values.size() == 1000);
      for (int i = 0; i < 1000; ++i) {
        CHECK(values[static_cast<std::size_t>(i)] == i + 200);
      }
    }
  }

  TEST_CASE("async_generator: misused next() throws logic_error") {
    SUBCASE("outside a task") {
      async_generator<int> gen = count_to(1);
      auto awaiter = gen.next();
      CHECK_THROWS_AS(static_cast<void>(awaiter.await_ready()), std::logic_error);
    }
    SUBCASE("on an empty generator") {
      corun::runtime rt(with_workers(1));
      CHECK_THROWS_AS(rt.block_on([]() -> task<void> {
        async_generator<int> empty;
        static_cast<void>(co_await empty.next());
      }()),
                      std::logic_error);
    }
    SUBCASE("from the generator's own body") {
      corun::runtime rt(with_workers(1));
      CHECK(rt.block_on([]() -> task<int> {
        async_generator<int> gen;
        gen = [](async_generator<int>& self) -> async_generator<int> {
          int refused = 0;
          try {
            static_cast<void>(co_await self.next());
          } catch (const std::logic_error&) {
            refused = 1;
          }
          co_yield refused;
        }(gen);
        co_return *co_await gen.next();
      }()) == 1);
    }
  }
}
