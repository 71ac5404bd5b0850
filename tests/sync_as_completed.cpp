/// \file
/// `as_completed`: handles in completion order, on virtual time (the order is exact).
#include "corun/as_completed.hpp"
#include "corun/time.hpp"

#include "support.hpp"

#include <chrono>
#include <optional>
#include <vector>

using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

task<int> sleep_then(std::chrono::milliseconds d, int value) {
  co_await corun::sleep_for(d);
  co_return value;
}

task<int> sleep_then_fail(std::chrono::milliseconds d, int id) {
  co_await corun::sleep_for(d);
  throw test_error(id);
}

}  // namespace

TEST_SUITE("sync_as_completed") {
  TEST_CASE("as_completed yields the handles in completion order, results still takeable") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      const std::vector<int> order = rt.block_on([]() -> task<std::vector<int>> {
        std::vector<corun::join_handle<int>> joins;
        joins.push_back(corun::spawn(sleep_then(30ms, 0)));
        joins.push_back(corun::spawn(sleep_then(10ms, 1)));
        joins.push_back(corun::spawn(sleep_then(20ms, 2)));
        std::vector<corun::task_handle> handles(joins.begin(), joins.end());
        const std::vector<std::uint64_t> ids{joins[0].id(), joins[1].id(), joins[2].id()};
        std::vector<int> seen;
        auto done = corun::as_completed(std::move(handles));
        while (std::optional<corun::task_handle> h = co_await done.next()) {
          CHECK(h->done());
          for (std::size_t i = 0; i < ids.size(); ++i) {
            if (h->id() == ids[i]) {
              seen.push_back(static_cast<int>(i));
              // Nothing was taken: the join handle still gives the value.
              CHECK(co_await joins[i] == static_cast<int>(i));
            }
          }
        }
        co_return seen;
      }());
      CHECK(order == std::vector<int>{1, 2, 0});
    }
  }

  TEST_CASE("as_completed yields failed tasks without throwing, the handle tells") {
    corun::runtime rt(with_virtual_time(2));
    const int failed_id = rt.block_on([]() -> task<int> {
      auto ok = corun::spawn(sleep_then(20ms, 1));
      auto bad = corun::spawn(sleep_then_fail(10ms, 7));
      auto done = corun::as_completed({ok, bad});
      std::optional<corun::task_handle> first = co_await done.next();
      REQUIRE(first.has_value());
      CHECK(first->failed());
      int id = -1;
      try {
        first->rethrow();
      } catch (const test_error& e) {
        id = e.id();
      }
      std::optional<corun::task_handle> second = co_await done.next();
      REQUIRE(second.has_value());
      CHECK_FALSE(second->failed());
      CHECK_FALSE((co_await done.next()).has_value());
      CHECK(co_await ok == 1);
      co_return id;
    }());
    CHECK(failed_id == 7);
  }

  TEST_CASE("as_completed destroyed early stops waiting, not the tasks") {
    corun::runtime rt(with_virtual_time(2));
    const int total = rt.block_on([]() -> task<int> {
      auto fast = corun::spawn(sleep_then(1ms, 1));
      auto slow = corun::spawn(sleep_then(1h, 2));
      {
        auto done = corun::as_completed({fast, slow});
        std::optional<corun::task_handle> first = co_await done.next();
        REQUIRE(first.has_value());
        CHECK(first->done());
      }  // the wait on `slow` is cancelled; `slow` itself goes on
      CHECK_FALSE(slow.done());
      co_return co_await fast + co_await slow;
    }());
    CHECK(total == 3);
  }

  TEST_CASE("as_completed of nothing ends at once, of an empty handle is a logic_error") {
    corun::runtime rt(with_workers(1));
    rt.block_on([]() -> task<void> {
      auto none = corun::as_completed({});
      CHECK_FALSE((co_await none.next()).has_value());
    }());
    CHECK_THROWS_AS(static_cast<void>(corun::as_completed({corun::task_handle{}})),
                    std::logic_error);
  }
}
