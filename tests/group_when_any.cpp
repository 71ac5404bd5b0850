/// \file
/// `when_any` (variadic and vector forms): first to finish wins, the others are cancelled and
/// awaited.
#include "support.hpp"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// Yields until cancelled; its unwinding is counted only once it is complete (a destructor).
task<int> loser(std::atomic<int>& cleaned) {
  struct cleanup {
    std::atomic<int>& count;
    ~cleanup() {
      for (int i = 0; i < 50; ++i) {
        std::this_thread::yield();  // a slow unwinding: when_any must still wait for it
      }
      count.fetch_add(1);
    }
  };
  const cleanup guard{cleaned};
  co_await yield_forever();
  co_return 0;
}

task<int> value_after(int yields, int value) {
  co_await yield_times(yields);
  co_return value;
}

task<int> cancel_itself() {
  co_await corun::this_task::yield();
  throw corun::cancelled("by itself");
}

}  // namespace

TEST_SUITE("group_when_any") {
  TEST_CASE("when_any returns the index and value of the first task to finish") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cleaned{0};
      const auto [index, value] = rt.block_on([&]() -> task<std::pair<std::size_t, int>> {
        co_return co_await corun::when_any(loser(cleaned), value_after(3, 42), loser(cleaned));
      }());
      CHECK(index == 1);
      CHECK(value == 42);
      CHECK(cleaned.load() == 2);
    }
  }

  TEST_CASE("when_any cancels the losers and awaits them before returning") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cleaned{0};
      int cleaned_at_return = -1;
      rt.block_on([&]() -> task<void> {
        std::vector<task<int>> tasks;
        for (int i = 0; i < 6; ++i) {
          tasks.push_back(loser(cleaned));
        }
        tasks.push_back(value_after(5, 1));
        const auto result = co_await corun::when_any(std::move(tasks));
        cleaned_at_return = cleaned.load();
        CHECK(result.first == 6);
        CHECK(result.second == 1);
      }());
      CHECK(cleaned_at_return == 6);
    }
  }

  TEST_CASE("when_any rethrows the failure of a winner that failed") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cleaned{0};
      int thrown = 0;
      int cleaned_at_throw = -1;
      rt.block_on([&]() -> task<void> {
        try {
          (void)co_await corun::when_any(loser(cleaned), fail_after(2, 5), loser(cleaned));
        } catch (const test_error& e) {
          thrown = e.id();
          cleaned_at_throw = cleaned.load();
        }
      }());
      CHECK(thrown == 5);
      CHECK(cleaned_at_throw == 2);
    }
  }

  TEST_CASE("when_any reports a loser that fails anyway together with the winner") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::multiset<int> ids;
      rt.block_on([&]() -> task<void> {
        auto stubborn = []() -> task<int> {
          try {
            co_await yield_forever();
          } catch (const corun::cancelled&) {
            // its cleanup fails
          }
          throw test_error(11);
        };
        try {
          (void)co_await corun::when_any(stubborn(), value_after(2, 1));
        } catch (const corun::exception_group& group) {
          ids = member_ids(group);
        }
      }());
      CHECK(ids == std::multiset<int>{11});
    }
  }

  TEST_CASE("when_any of void tasks returns the winner's index") {
    corun::runtime rt(with_workers(4));
    const std::size_t index = rt.block_on([]() -> task<std::size_t> {
      const auto [i, nothing] =
          co_await corun::when_any(yield_forever(), yield_times(2), yield_forever());
      CHECK(nothing == std::monostate{});
      co_return i;
    }());
    CHECK(index == 1);
  }

  TEST_CASE("when_any of a single task returns its value") {
    corun::runtime rt(with_workers(2));
    const auto [index, value] = rt.block_on(corun::when_any(value_of(9)));
    CHECK(index == 0);
    CHECK(value == 9);
  }

  TEST_CASE("when_any throws task_cancelled when every task ended cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      bool got = false;
      rt.block_on([&]() -> task<void> {
        try {
          (void)co_await corun::when_any(cancel_itself(), cancel_itself());
        } catch (const corun::task_cancelled&) {
          got = true;
        }
      }());
      CHECK(got);
    }
  }

  TEST_CASE("when_any in a cancelled task throws cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cleaned{0};
      std::atomic<bool> inside{false};
      std::atomic<int> seen{0};  // 1: cancelled, 2: other
      auto h = rt.spawn([&]() -> task<void> {
        inside = true;
        try {
          (void)co_await corun::when_any(loser(cleaned), loser(cleaned));
        } catch (const corun::cancelled&) {
          seen = 1;
          throw;
        } catch (...) {
          seen = 2;
          throw;
        }
      });
      wait_for_flag(inside);
      h.cancel();
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(seen.load() == 1);
      CHECK(cleaned.load() == 2);
    }
  }

  TEST_CASE("when_any of an empty vector or an empty task throws logic_error") {
    corun::runtime rt(with_workers(1));
    CHECK_THROWS_AS(rt.block_on(corun::when_any(std::vector<task<int>>{})), std::logic_error);
    CHECK_THROWS_AS(rt.block_on(corun::when_any(value_of(1), task<int>{})), std::logic_error);
  }

  TEST_CASE("when_any nested in a task_group child is cancelled with the group") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cleaned{0};
      std::multiset<int> ids;
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](corun::task_group& g) -> task<void> {
            (void)g.spawn([&]() -> task<void> {
              (void)co_await corun::when_any(loser(cleaned), loser(cleaned));
            });
            (void)g.spawn(fail_after(3, 12));
            co_return;
          });
        } catch (const corun::exception_group& group) {
          ids = member_ids(group);  // the when_any's cancellation is not a failure
        }
      }());
      CHECK(ids == std::multiset<int>{12});
      CHECK(cleaned.load() == 2);
    }
  }
}
