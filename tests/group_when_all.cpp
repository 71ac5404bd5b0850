/// \file
/// `when_all` (variadic and vector forms, fail-fast) and `exception_group`.
#include "support.hpp"

#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

task<std::string> text_after_yields(std::string s, int yields) {
  co_await yield_times(yields);
  co_return s;
}

task<void> nothing() { co_return; }

task<int> throw_at_start(int id) {
  throw test_error(id);
  co_return 0;
}

/// Waits (yielding) until `other` is set, after setting `mine`: two of these only finish if they
/// run concurrently.
task<int> rendezvous(std::atomic<bool>& mine, const std::atomic<bool>& other, int value) {
  mine.store(true, std::memory_order_release);
  co_await yield_until(other);
  co_return value;
}

/// Yields until cancelled, then runs some cleanup with suspension-free awaits and records it.
task<int> cancellable_worker(std::atomic<int>& cancelled_count, std::atomic<int>& cleaned) {
  try {
    co_await yield_forever();
  } catch (const corun::cancelled&) {
    cancelled_count.fetch_add(1);
    cleaned.fetch_add(1);
    throw;
  }
  co_return 0;
}

}  // namespace

TEST_SUITE("group_when_all") {
  TEST_CASE("when_all returns the values in order with monostate for void") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      auto [a, b, c] = rt.block_on([]() -> task<std::tuple<int, std::string, std::monostate>> {
        co_return co_await corun::when_all(value_of(1), text_after_yields("two", 5), nothing());
      }());
      CHECK(a == 1);
      CHECK(b == "two");
      CHECK(c == std::monostate{});
    }
  }

  TEST_CASE("block_on of a when_all runs it as the root task") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const auto [a, b] = rt.block_on(corun::when_all(value_of(4), text_after_yields("x", 3)));
      CHECK(a == 4);
      CHECK(b == "x");
      CHECK_THROWS_AS(rt.block_on(corun::when_all(value_of(1), fail_after(2, 3))),
                      corun::exception_group);
    }
  }

  TEST_CASE("when_all of a vector returns the values in input order") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::vector<int> values = rt.block_on([]() -> task<std::vector<int>> {
        std::vector<task<int>> tasks;
        for (int i = 0; i < 200; ++i) {
          tasks.push_back([](int v) -> task<int> {
            co_await yield_times(v % 7);
            co_return v* v;
          }(i));
        }
        co_return co_await corun::when_all(std::move(tasks));
      }());
      REQUIRE(values.size() == 200);
      for (int i = 0; i < 200; ++i) {
        CHECK(values[static_cast<std::size_t>(i)] == i * i);
      }
    }
  }

  TEST_CASE("when_all of an empty vector returns an empty vector") {
    corun::runtime rt(with_workers(2));
    const auto values = rt.block_on([]() -> task<std::vector<int>> {
      co_return co_await corun::when_all(std::vector<task<int>>{});
    }());
    CHECK(values.empty());
  }

  TEST_CASE("when_all of void tasks in a vector waits for all of them") {
    corun::runtime rt(with_workers(2));
    std::atomic<int> done{0};
    rt.block_on([](std::atomic<int>& d) -> task<void> {
      std::vector<task<void>> tasks;
      for (int i = 0; i < 50; ++i) {
        tasks.push_back([](std::atomic<int>& n, int yields) -> task<void> {
          co_await yield_times(yields);
          n.fetch_add(1);
        }(d, i % 5));
      }
      co_await corun::when_all(std::move(tasks));
      CHECK(d.load() == 50);
    }(done));
    CHECK(done.load() == 50);
  }

  TEST_CASE("when_all can return move-only values") {
    corun::runtime rt(with_workers(2));
    const int sum = rt.block_on([]() -> task<int> {
      auto [p, q] = co_await corun::when_all(
          []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(2); }(),
          []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(3); }());
      co_return *p + *q;
    }());
    CHECK(sum == 5);
  }

  TEST_CASE("when_all runs its tasks concurrently") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> a{false};
      std::atomic<bool> b{false};
      const auto [x, y] = rt.block_on(
          [](std::atomic<bool>& fa, std::atomic<bool>& fb) -> task<std::tuple<int, int>> {
            co_return co_await corun::when_all(rendezvous(fa, fb, 1), rendezvous(fb, fa, 2));
          }(a, b));
      CHECK(x == 1);
      CHECK(y == 2);
    }
  }

  TEST_CASE("when_all cancels the other tasks on the first failure and throws exception_group") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::atomic<int> cleaned{0};
      try {
        rt.block_on([](std::atomic<int>& cc, std::atomic<int>& cl) -> task<void> {
          std::vector<task<int>> tasks;
          for (int i = 0; i < 5; ++i) {
            tasks.push_back(cancellable_worker(cc, cl));
          }
          tasks.push_back(fail_after(10, 99));
          (void)co_await corun::when_all(std::move(tasks));
        }(cancelled_count, cleaned));
        FAIL("when_all should have thrown");
      } catch (const corun::exception_group& group) {
        CHECK(leaf_ids(group) == std::multiset<int>{99});
        CHECK(group.exceptions().size() == 1);
      }
      // Every other task was cancelled and had finished its cleanup before when_all returned.
      CHECK(cancelled_count.load() == 5);
      CHECK(cleaned.load() == 5);
    }
  }

  TEST_CASE("when_all collects every failure that happened") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      try {
        rt.block_on([]() -> task<void> {
          (void)co_await corun::when_all(throw_at_start(1), throw_at_start(2), throw_at_start(3));
        }());
        FAIL("when_all should have thrown");
      } catch (const corun::exception_group& group) {
        // They throw before their first suspension point: cancellation cannot pre-empt any.
        CHECK(leaf_ids(group) == std::multiset<int>{1, 2, 3});
      }
    }
  }

  TEST_CASE("a when_all failure can be caught and the task goes on") {
    corun::runtime rt(with_workers(2));
    const int value = rt.block_on([]() -> task<int> {
      try {
        (void)co_await corun::when_all(value_of(1), fail_after(2, 5));
      } catch (const corun::exception_group& group) {
        CHECK(leaf_ids(group) == std::multiset<int>{5});
      }
      co_await yield_times(2);
      corun::this_task::checkpoint();  // the caller itself was not cancelled
      co_return 11;
    }());
    CHECK(value == 11);
  }

  TEST_CASE("when_all in a cancelled task ends with the task's own cancellation") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> inside{false};
      std::atomic<int> seen{0};  // 1: cancelled, 2: exception_group, 3: other
      auto h = rt.spawn(
          [](std::atomic<bool>& in, std::atomic<int>& s) -> task<void> {
            in.store(true, std::memory_order_release);
            try {
              (void)co_await corun::when_all(yield_forever(), yield_forever());
            } catch (const corun::cancelled&) {
              s = 1;
              throw;
            } catch (const corun::exception_group&) {
              s = 2;
              throw;
            } catch (...) {
              s = 3;
              throw;
            }
          },
          std::ref(inside), std::ref(seen));
      wait_for_flag(inside);
      h.cancel();
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(seen.load() == 1);
    }
  }

  TEST_CASE("nested when_all propagates values and failures") {
    corun::runtime rt(with_workers(4));
    const int sum = rt.block_on([]() -> task<int> {
      auto inner = []() -> task<int> {
        auto [a, b] = co_await corun::when_all(value_of(1), value_of(2));
        co_return a + b;
      };
      auto [x, y] = co_await corun::when_all(inner(), inner());
      co_return x + y;
    }());
    CHECK(sum == 6);
    try {
      rt.block_on([]() -> task<void> {
        auto inner = []() -> task<int> {
          auto [a, b] = co_await corun::when_all(value_of(1), fail_after(1, 8));
          co_return a + b;
        };
        (void)co_await corun::when_all(inner(), value_of(0));
      }());
      FAIL("expected an exception_group");
    } catch (const corun::exception_group& group) {
      CHECK(leaf_ids(group) == std::multiset<int>{8});
    }
  }

  TEST_CASE("exception_group flattens nested groups in leaves and lists members in what") {
    const auto inner = std::make_exception_ptr(corun::exception_group(
        "inner", {std::make_exception_ptr(test_error(2)), std::make_exception_ptr(test_error(3))}));
    const corun::exception_group outer("outer", {std::make_exception_ptr(test_error(1)), inner});
    CHECK(outer.exceptions().size() == 2);
    CHECK(outer.message() == "outer");
    CHECK(leaf_ids(outer) == std::multiset<int>{1, 2, 3});
    const std::string what = outer.what();
    CHECK(what.find("outer") != std::string::npos);
    CHECK(what.find("test_error 1") != std::string::npos);
    // The copy is the point: an exception_group is copyable and the copy keeps the leaves.
    // NOLINTNEXTLINE(performance-unnecessary-copy-initialization)
    const corun::exception_group copy = outer;
    CHECK(copy.exceptions().size() == 2);
  }

  TEST_CASE("describe_exception names std exceptions, cancellations and unknown ones") {
    CHECK(corun::describe_exception(std::make_exception_ptr(test_error(4))) == "test_error 4");
    CHECK(corun::describe_exception(std::make_exception_ptr(corun::cancelled("bye"))).find("bye") !=
          std::string::npos);
    CHECK(corun::describe_exception(std::make_exception_ptr(42)) == "unknown exception");
  }
}
