/// \file
/// `shield` and `cancel_and_await`.
#include "support.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

using corun::task;
using namespace corun_test;

namespace {

/// Yields until `flag` is set; any cancellation that reaches it ends it.
task<int> cancellable_until(const std::atomic<bool>& flag, int value) {
  co_await yield_until(flag);
  co_return value;
}

/// Meant to run shielded: sets `inside`, yields until `cancel_sent` says that the outer cancel
/// was requested (the request happens before that store, so every cancel check after the load
/// sees it), then passes two more suspension points, where a cancel that got through the shield
/// must throw, and only then sets `survived` and returns `value`.
task<int> shielded_probe(std::atomic<bool>& inside, const std::atomic<bool>& cancel_sent,
                         std::atomic<bool>& survived, int value) {
  inside.store(true);
  co_await yield_until(cancel_sent);
  co_await corun::this_task::yield();
  co_await corun::this_task::checkpoint();
  survived.store(!corun::this_task::cancellation().has_value());
  co_return value;
}

}  // namespace

TEST_SUITE("cancel_shield") {
  TEST_CASE("shield: the shielded task finishes although its awaiter is cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> inside{false};
      std::atomic<bool> cancel_sent{false};
      std::atomic<bool> survived{false};
      std::atomic<int> got{0};
      corun::runtime rt(with_workers(workers));
      auto outer = rt.spawn(
          [](std::atomic<bool>& in, std::atomic<bool>& sent, std::atomic<bool>& ok,
             std::atomic<int>& g) -> task<void> {
            const int v = co_await corun::shield(shielded_probe(in, sent, ok, 42));
            g.store(v);
            co_await corun::this_task::yield();  // the outer task's cancel lands here
            g.store(-1);
          },
          std::ref(inside), std::ref(cancel_sent), std::ref(survived), std::ref(got));
      wait_for_flag(inside);
      outer.cancel("outer");
      cancel_sent.store(true);
      CHECK_THROWS_AS(outer.get(), corun::task_cancelled);
      CHECK(survived.load());
      CHECK(got.load() == 42);
    }
  }

  TEST_CASE("shield: children of the shielded task are not cancelled from outside") {
    std::atomic<bool> inside{false};
    std::atomic<bool> cancel_sent{false};
    std::atomic<bool> survived{false};
    corun::runtime rt(with_workers(2));
    auto outer = rt.spawn(
        [](std::atomic<bool>& in, std::atomic<bool>& sent, std::atomic<bool>& ok) -> task<int> {
          co_return co_await corun::shield([](std::atomic<bool>& in2, std::atomic<bool>& sent2,
                                              std::atomic<bool>& ok2) -> task<int> {
            std::atomic<bool> child_in{false};
            auto child = corun::spawn(shielded_probe(child_in, sent2, ok2, 5));
            co_await yield_until(child_in);
            in2.store(true);
            co_return co_await child + 1;
          }(in, sent, ok));
        },
        std::ref(inside), std::ref(cancel_sent), std::ref(survived));
    wait_for_flag(inside);
    outer.cancel();
    cancel_sent.store(true);
    // Completion beats cancellation: the value was delivered, and no suspension point follows.
    CHECK(outer.get() == 6);
    CHECK(survived.load());
  }

  TEST_CASE("shield: cancellation from inside the shielded task still works") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<bool> {
      co_return co_await corun::shield([]() -> task<bool> {
        std::atomic<bool> never{false};
        auto child = corun::spawn(cancellable_until(never, 1));
        child.cancel("from inside");
        try {
          static_cast<void>(co_await child);
        } catch (const corun::task_cancelled&) {
          co_return true;
        }
        co_return false;
      }());
    });
    CHECK(h.get());
  }

  TEST_CASE("shield: a failure of the shielded task is rethrown") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<int> { co_return co_await corun::shield(fail_after(3, 17)); });
    try {
      static_cast<void>(h.get());
      FAIL("no exception");
    } catch (const test_error& e) {
      CHECK(e.id() == 17);
    }
  }

  TEST_CASE("shield: of an empty task is a logic_error") {
    corun::runtime rt(with_workers(1));
    auto h = rt.spawn([]() -> task<int> { co_return co_await corun::shield(task<int>{}); });
    CHECK_THROWS_AS(h.get(), std::logic_error);
  }

  TEST_CASE("cancel_and_await: cancels a running task and waits for it") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> cleaned{0};
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn(
          [](std::atomic<int>& c) -> task<bool> {
            auto victim = corun::spawn(
                [](std::atomic<int>& c2) -> task<void> {
                  try {
                    co_await yield_forever();
                  } catch (const corun::cancelled&) {
                    c2.fetch_add(1);
                    throw;
                  }
                },
                std::ref(c));
            co_await corun::this_task::yield();
            co_await corun::cancel_and_await(victim);
            co_return victim.done() && victim.cancelled();
          },
          std::ref(cleaned));
      CHECK(h.get());
      CHECK(cleaned.load() == 1);
    }
  }

  TEST_CASE("cancel_and_await: returns at once for a task that is done") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<int> {
      auto done = corun::spawn(value_of(3));
      while (!done.done()) {
        co_await corun::this_task::yield();
      }
      co_await corun::cancel_and_await(done);
      co_return done.take_completed();  // not consumed: still there
    });
    CHECK(h.get() == 3);
  }

  TEST_CASE(
      "cancel_and_await: a join_handle whose task already failed rethrows the failure, which "
      "counts as observed") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      // The child's handle is dropped at the end of the task: had nobody observed the failure,
      // the task would fail with it (API.md, Ownership) instead of returning the ids.
      auto h = rt.spawn([]() -> task<std::pair<int, int>> {
        auto failed = corun::spawn(fail_after(0, 4));
        while (!failed.done()) {
          co_await corun::this_task::yield();
        }
        std::pair<int, int> seen{-1, -1};
        try {
          co_await corun::cancel_and_await(failed);
        } catch (const test_error& e) {
          seen.first = e.id();
        }
        // Nothing was taken from the handle: a second call rethrows the same failure.
        try {
          co_await corun::cancel_and_await(failed);
        } catch (const test_error& e) {
          seen.second = e.id();
        }
        co_return seen;
      });
      CHECK(h.get() == std::pair<int, int>{4, 4});
    }
  }

  TEST_CASE(
      "cancel_and_await: a join_handle whose task already ended cancelled returns quietly, "
      "also to a cancelled caller") {
    std::atomic<bool> ready{false};
    std::atomic<bool> returned{false};
    corun::runtime rt(with_workers(2));
    auto caller = rt.spawn([&]() -> task<void> {
      auto victim = corun::spawn(yield_forever());
      victim.cancel("before");
      while (!victim.done()) {
        co_await corun::this_task::yield();
      }
      ready.store(true);
      while (!corun::this_task::token().cancel_requested()) {
        std::this_thread::yield();  // blocks this worker only until the test cancels us
      }
      // Nothing is waited for: the victim's cancellation is not turned into ours.
      co_await corun::cancel_and_await(victim);
      returned.store(true);
      corun::this_task::checkpoint();  // our own cancellation, at the next suspension point
    });
    REQUIRE(wait_until_set(ready));
    caller.cancel("caller");
    CHECK_THROWS_AS(caller.get(), corun::task_cancelled);
    CHECK(returned.load());
  }

  TEST_CASE(
      "cancel_and_await: a task_handle whose task already failed rethrows the failure, which "
      "counts as observed") {
    failure_recorder unhandled;
    {
      corun::runtime_options options = with_workers(2);
      options.on_unhandled_exception = unhandled.handler();
      corun::runtime rt(options);
      corun::task_handle handle = rt.spawn(fail_after(0, 5));  // the join_handle is dropped
      REQUIRE(wait_until_done(handle));
      auto caller = rt.spawn([&]() -> task<int> {
        try {
          co_await corun::cancel_and_await(handle);
        } catch (const test_error& e) {
          co_return e.id();
        }
        co_return -1;
      });
      CHECK(caller.get() == 5);
    }  // the last handle goes with `handle`'s scope: an unobserved failure would be reported
    CHECK(unhandled.count() == 0);
  }

  TEST_CASE("cancel_and_await: another failure of the task propagates") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<void> {
      auto victim = corun::spawn([]() -> task<void> {
        try {
          co_await yield_forever();
        } catch (const corun::cancelled&) {
          throw test_error(9);  // fails while being cancelled
        }
      });
      co_await corun::this_task::yield();
      co_await corun::cancel_and_await(victim);
    });
    try {
      h.get();
      FAIL("no exception");
    } catch (const test_error& e) {
      CHECK(e.id() == 9);
    }
  }

  TEST_CASE("cancel_and_await: the caller's own cancellation propagates") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> waiting{false};
      std::atomic<bool> release{false};
      std::atomic<bool> own_cancel_seen{false};
      corun::runtime rt(with_workers(workers));
      auto caller = rt.spawn(
          [](std::atomic<bool>& w, std::atomic<bool>& rel, std::atomic<bool>& seen) -> task<void> {
            auto victim = corun::spawn(stubborn_until(rel, 1));  // ignores the cancel
            w.store(true);
            try {
              co_await corun::cancel_and_await(victim);
            } catch (const corun::cancelled&) {
              seen.store(true);
              throw;
            }
          },
          std::ref(waiting), std::ref(release), std::ref(own_cancel_seen));
      wait_for_flag(waiting);
      caller.cancel("caller");
      const bool seen = wait_until_set(own_cancel_seen);
      release.store(true);
      CHECK(seen);
      CHECK_THROWS_AS(caller.get(), corun::task_cancelled);
    }
  }
}
