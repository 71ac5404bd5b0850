/// \file
/// `timeout` and `move_on_after`, on virtual time (exact and instant).
#include "corun/time.hpp"
#include "corun/timeout.hpp"

#include "support.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

task<void> sleep_a_while(std::chrono::milliseconds d) { co_await corun::sleep_for(d); }

task<int> sleep_then(std::chrono::milliseconds d, int value) {
  co_await corun::sleep_for(d);
  co_return value;
}

}  // namespace

TEST_SUITE("time_timeout") {
  TEST_CASE("timeout: the task finishing in time gives its value, at its own pace") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      CHECK(rt.block_on(corun::timeout(1s, sleep_then(300ms, 7))) == 7);
      CHECK(rt.now() - start == 300ms);
    }
  }

  TEST_CASE("timeout: past the deadline the task is cancelled, awaited, then timeout_error") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::string reason;
      corun::cancel_origin origin = corun::cancel_origin::user;
      std::atomic<bool> cleaned_up{false};
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      const bool timed_out = rt.block_on([&]() -> task<bool> {
        try {
          // Named: a coroutine lambda's closure must outlive the task it made.
          auto slow_body = [&]() -> task<void> {
            bool cancelled = false;
            try {
              co_await corun::sleep_for(10s);
            } catch (const corun::cancelled& c) {
              reason = c.message();
              origin = c.origin();
              cancelled = true;
            }
            // Async cleanup after the cancel, shielded from it: the timeout waits for it.
            task<void> cleanup = sleep_a_while(50ms);
            co_await corun::shield(std::move(cleanup));
            cleaned_up.store(true);
            if (cancelled) {
              co_await corun::this_task::checkpoint();  // let the cancel end the task
            }
          };
          task<void> slow = slow_body();
          task<void> limited = corun::timeout(250ms, std::move(slow));
          co_await std::move(limited);
        } catch (const corun::timeout_error&) {
          CHECK(cleaned_up.load());
          co_return true;
        }
        co_return false;
      }());
      CHECK(timed_out);
      CHECK(origin == corun::cancel_origin::deadline);
      CHECK(reason == "timed out after 250 ms");
      CHECK(rt.now() - start == 300ms);
    }
  }

  // Provenance: the task a deadline cancels, and its children, can tell it was a deadline.
  TEST_CASE("timeout: the cancelled task and its children are told it was a deadline") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::string described;
      std::string child_described;
      std::uint64_t limited_id = 0;
      auto body = [&]() -> task<void> {
        limited_id = corun::this_task::id();
        auto child_body = [&]() -> task<void> {
          try {
            co_await corun::sleep_for(10s);
          } catch (const corun::cancelled& c) {
            child_described = c.describe();
            throw;
          }
        };
        auto child = corun::spawn(child_body());
        try {
          co_await corun::sleep_for(10s);
        } catch (const corun::cancelled& c) {
          described = c.describe();
          throw;
        }
      };
      CHECK_THROWS_AS(rt.block_on(corun::timeout(250ms, body())), corun::timeout_error);
      CHECK(described == "cancelled: deadline exceeded: timed out after 250 ms");
      CHECK(child_described ==
            "cancelled: deadline exceeded: timed out after 250 ms "
            "(requested on task #" +
                std::to_string(limited_id) + ")");
    }
  }

  TEST_CASE("move_on_after: the cancel names a limit that is not whole milliseconds") {
    corun::runtime rt(with_virtual_time(2));
    std::string described;
    std::string message;
    corun::cancel_origin origin = corun::cancel_origin::user;
    auto body = [&]() -> task<void> {
      try {
        co_await corun::sleep_for(1s);
      } catch (const corun::cancelled& c) {
        described = c.describe();
        message = c.message();
        origin = c.origin();
        throw;
      }
    };
    CHECK_FALSE(rt.block_on(corun::move_on_after(1500us, body())));
    CHECK(origin == corun::cancel_origin::deadline);
    CHECK(message == "timed out after 1500 us");
    CHECK(described == "cancelled: deadline exceeded: timed out after 1500 us");
  }

  // The deadline is armed before the task starts, so it comes first among the timers due at
  // its instant (ties fire in arming order), whichever worker runs the task.
  TEST_CASE("move_on_after: the deadline wins a tie with a sleep inside the task") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      for (int i = 0; i < 50; ++i) {
        CAPTURE(i);
        CHECK_FALSE(rt.block_on(corun::move_on_after(10ms, sleep_a_while(10ms))));
        CHECK_THROWS_AS(rt.block_on(corun::timeout(10ms, sleep_then(10ms, i))),
                        corun::timeout_error);
      }
      CHECK(rt.now() - start == 1000ms);
    }
  }

  // Real time: the deadline may fire before the task is attached to it (deadline_timer.cpp,
  // step 2); it must be cancelled all the same.
  TEST_CASE("timeout: a deadline that passed before the task started still cancels it") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      for (int i = 0; i < 100; ++i) {
        CAPTURE(i);
        CHECK_THROWS_AS(rt.block_on(corun::timeout(0ms, sleep_then(1h, i))), corun::timeout_error);
      }
    }
  }

  TEST_CASE("timeout: a failure of the task propagates as it is") {
    corun::runtime rt(with_virtual_time(2));
    CHECK_THROWS_AS(rt.block_on(corun::timeout(1s, fail_after(2, 5))), test_error);
  }

  TEST_CASE("timeout: a task that ignores the deadline and returns a value keeps it") {
    corun::runtime rt(with_virtual_time(1));
    const int value = rt.block_on(corun::timeout(10ms, []() -> task<int> {
      try {
        co_await corun::sleep_for(1s);
      } catch (const corun::cancelled&) {
        // completion beats cancellation: we still produce the value
      }
      co_return 42;
    }()));
    CHECK(value == 42);
  }

  TEST_CASE("timeout: when the caller itself is cancelled, its own cancelled propagates") {
    std::atomic<bool> started{false};
    corun::runtime rt(with_workers(2));
    auto caller = rt.spawn([&]() -> task<void> {
      try {
        auto forever_body = [&]() -> task<void> {
          started.store(true);
          co_await corun::sleep_for(24h);
        };
        task<void> forever = forever_body();
        task<void> limited = corun::timeout(24h, std::move(forever));
        co_await std::move(limited);
      } catch (const corun::timeout_error&) {
        FAIL("not a timeout");
      } catch (const corun::cancelled& c) {
        CHECK(c.message() == "shutdown of the caller");
        throw;
      }
    });
    REQUIRE(wait_until_set(started));
    caller.cancel("shutdown of the caller");
    CHECK(wait_until_done(caller));
    CHECK_THROWS_AS(caller.get(), corun::task_cancelled);
  }

  TEST_CASE("timeout: a deadline that never fires leaves nothing behind") {
    corun::runtime rt(with_virtual_time(2));
    const corun::time_point start = rt.now();
    for (int i = 0; i < 100; ++i) {
      CHECK(rt.block_on(corun::timeout(1h, sleep_then(1ms, i))) == i);
    }
    // The hour-long deadlines were disarmed: nothing is left for time to jump to.
    rt.block_on([]() -> task<void> { co_await corun::sleep_for(1ms); }());
    CHECK(rt.now() - start == 101ms);
  }

  TEST_CASE("move_on_after: an empty optional past the deadline, the value before it") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      CHECK(rt.block_on(corun::move_on_after(1s, sleep_then(10ms, 3))) == std::optional<int>(3));
      CHECK_FALSE(rt.block_on(corun::move_on_after(10ms, sleep_then(1s, 3))).has_value());
      CHECK(rt.block_on(corun::move_on_after(1s, yield_times(3))));
      CHECK_FALSE(rt.block_on(
          corun::move_on_after(1s, []() -> task<void> { co_await corun::sleep_for(1h); }())));
    }
  }

  TEST_CASE("timeout: nested deadlines, the inner one shorter") {
    corun::runtime rt(with_virtual_time(2));
    const corun::time_point start = rt.now();
    const std::optional<int> outer = rt.block_on(corun::move_on_after(1s, [&]() -> task<int> {
      task<std::optional<int>> limited = corun::move_on_after(100ms, sleep_then(1h, 1));
      const std::optional<int> inner = co_await std::move(limited);
      CHECK_FALSE(inner.has_value());
      co_return 2;
    }()));
    CHECK(outer == std::optional<int>(2));
    CHECK(rt.now() - start == 100ms);
  }
}
