/// \file
/// Cancellation (API.md section 2): `cancelled` thrown into a task at its suspension points,
/// `task_cancelled` thrown to whoever awaits a task that ended cancelled.
#include "support.hpp"

#include <atomic>
#include <exception>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

static_assert(!std::is_base_of_v<std::exception, corun::cancelled>,
              "catch (const std::exception&) must not swallow a cancellation");
static_assert(std::is_base_of_v<std::exception, corun::task_cancelled>);

/// What a cancellable test task saw.
struct observations {
  std::atomic<bool> started{false};
  std::atomic<bool> caught_cancelled{false};
  std::atomic<bool> caught_std_exception{false};
  std::atomic<int> alive{0};
  std::string message;  // written before the task ends, read after it was awaited
};

/// Yields until cancelled, recording what it sees, then lets the cancellation escape.
task<void> observed_yield_loop(observations& seen) {
  const alive_guard guard(seen.alive);
  seen.started.store(true, std::memory_order_release);
  try {
    for (;;) {
      co_await corun::this_task::yield();
    }
  } catch (const std::exception&) {
    seen.caught_std_exception = true;
    throw;
  } catch (const corun::cancelled& c) {
    seen.message = c.message();
    seen.caught_cancelled = true;
    throw;
  }
}

task<int> return_at_once(int value) { co_return value; }

task<int> throw_at_once(int id) {
  throw test_error(id);
  co_return 0;  // never reached: makes this a coroutine
}

/// Swallows the first cancellation, then returns `value` without suspending again.
task<int> swallow_once(int value, std::atomic<bool>& started) {
  started.store(true, std::memory_order_release);
  try {
    co_await yield_forever();
  } catch (const corun::cancelled&) {
  }
  co_return value;
}

}  // namespace

TEST_SUITE("cancel_basics") {
  TEST_CASE("cancel makes the task see cancelled at its next suspension point") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      observations seen;
      auto h = rt.spawn(observed_yield_loop(seen));
      wait_for_flag(seen.started);
      h.cancel("stop now");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(seen.caught_cancelled.load());
      CHECK_FALSE(seen.caught_std_exception.load());
      CHECK(seen.message == "stop now");
      CHECK(seen.alive.load() == 0);
      CHECK(h.done());
      CHECK(h.cancelled());
      CHECK_FALSE(h.failed());
    }
  }

  TEST_CASE("the awaiter of a cancelled task gets task_cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      observations seen;
      const std::string what = rt.block_on([](observations& s) -> task<std::string> {
        auto child = corun::spawn(observed_yield_loop(s), {.name = "victim"});
        co_await yield_times(3);
        child.cancel("enough");
        try {
          co_await child;
        } catch (const corun::task_cancelled& e) {
          CHECK(e.task_id() == child.id());
          co_return std::string(e.what());
        }
        co_return std::string("no task_cancelled");
      }(seen));
      CHECK(what.find("victim") != std::string::npos);
      CHECK(what.find("enough") != std::string::npos);
      CHECK(seen.caught_cancelled.load());
    }
  }

  TEST_CASE("a task cancelled before it first runs still starts and sees cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      for (int round = 0; round < 50; ++round) {
        observations seen;
        auto h = rt.spawn(observed_yield_loop(seen));
        h.cancel("early");
        CHECK_THROWS_AS(h.get(), corun::task_cancelled);
        CHECK(seen.started.load());
        CHECK(seen.caught_cancelled.load());
        CHECK(seen.message == "early");
        CHECK(seen.alive.load() == 0);
      }
    }
  }

  TEST_CASE("a child cancelled before it first runs still starts and runs its handlers") {
    // One worker: the parent runs, so the child cannot start before it is cancelled.
    corun::runtime rt(with_workers(1));
    observations seen;
    const bool got_task_cancelled = rt.block_on([](observations& s) -> task<bool> {
      auto child = corun::spawn(observed_yield_loop(s));
      child.cancel();
      CHECK_FALSE(s.started.load());
      try {
        co_await child;
      } catch (const corun::task_cancelled&) {
        co_return true;
      }
      co_return false;
    }(seen));
    CHECK(got_task_cancelled);
    CHECK(seen.started.load());
    CHECK(seen.caught_cancelled.load());
    CHECK(seen.alive.load() == 0);
  }

  TEST_CASE("catch std::exception does not catch cancelled") {
    corun::runtime rt(with_workers(2));
    observations seen;
    auto h = rt.spawn(observed_yield_loop(seen));
    wait_for_flag(seen.started);
    h.cancel();
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK_FALSE(seen.caught_std_exception.load());
    CHECK(seen.caught_cancelled.load());
  }

  TEST_CASE("checkpoint throws cancelled once the task is cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> started{false};
      std::atomic<long> spins{0};
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn(
          [](std::atomic<bool>& s, std::atomic<long>& n) -> task<void> {
            s.store(true, std::memory_order_release);
            for (;;) {
              corun::this_task::checkpoint();  // never suspends
              n.fetch_add(1, std::memory_order_relaxed);
            }
            co_return;
          },
          std::ref(started), std::ref(spins));
      wait_for_flag(started);
      h.cancel("checkpoint");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(h.cancelled());
    }
  }

  TEST_CASE("co_await checkpoint throws cancelled too") {
    corun::runtime rt(with_workers(2));
    const bool threw = rt.block_on([]() -> task<bool> {
      auto child = corun::spawn([]() -> task<int> {
        for (;;) {
          co_await corun::this_task::checkpoint();
        }
        co_return 0;
      });
      child.cancel();
      try {
        (void)co_await child;
      } catch (const corun::task_cancelled&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(threw);
  }

  TEST_CASE("checkpoint does nothing when the task is not cancelled") {
    corun::runtime rt(with_workers(1));
    const int n = rt.block_on([]() -> task<int> {
      int count = 0;
      for (int i = 0; i < 1000; ++i) {
        corun::this_task::checkpoint();
        co_await corun::this_task::checkpoint();
        ++count;
      }
      co_return count;
    }());
    CHECK(n == 1000);
  }

  TEST_CASE("cancelling a parent cancels its children") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::vector<corun::task_handle> children;
      std::atomic<int> started{0};
      std::atomic<bool> spawned{false};
      auto parent = rt.spawn(
          [](std::vector<corun::task_handle>& out, std::atomic<int>& n,
             std::atomic<bool>& ready) -> task<void> {
            std::vector<corun::join_handle<void>> handles;
            for (int i = 0; i < 5; ++i) {
              handles.push_back(corun::spawn(
                  [](std::atomic<int>& m) -> task<void> {
                    m.fetch_add(1);
                    co_await yield_forever();
                  },
                  std::ref(n)));
              out.emplace_back(handles.back());
            }
            ready.store(true, std::memory_order_release);
            for (auto& h : handles) {
              co_await h;
            }
          },
          std::ref(children), std::ref(started), std::ref(spawned));
      wait_for_flag(spawned);
      parent.cancel("parent");
      CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
      CHECK(started.load() == 5);
      REQUIRE(children.size() == 5);
      for (const auto& child : children) {
        CHECK(child.done());
        CHECK(child.cancelled());
      }
    }
  }

  TEST_CASE("a cancelled task awaiting a cancelled child sees its own cancelled") {
    std::atomic<bool> waiting{false};
    std::atomic<int> outcome{0};  // 1: cancelled, 2: task_cancelled
    corun::runtime rt(with_workers(2));
    auto parent = rt.spawn(
        [](std::atomic<bool>& w, std::atomic<int>& o) -> task<void> {
          auto child = corun::spawn(yield_forever());
          w.store(true, std::memory_order_release);
          try {
            co_await child;
          } catch (...) {
            o = cancellation_kind(std::current_exception());
            throw;
          }
        },
        std::ref(waiting), std::ref(outcome));
    wait_for_flag(waiting);
    parent.cancel();
    CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
    CHECK(outcome.load() == 1);
  }

  // A join of a task that is already done does not suspend (join_handle's awaiter takes the
  // result straight from await_ready); it must end as a join that waited would.
  TEST_CASE("joining a child that already ended gives its value, its failure or task_cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const int result = rt.block_on([]() -> task<int> {
        auto value = corun::spawn(return_at_once(5));
        auto failing = corun::spawn(throw_at_once(7));
        auto stopped = corun::spawn(yield_forever());
        stopped.cancel();
        while (!value.done() || !failing.done() || !stopped.done()) {
          co_await corun::this_task::yield();
        }
        int sum = co_await value;
        try {
          co_await failing;
        } catch (const test_error& e) {
          sum += 10 * e.id();
        }
        try {
          co_await stopped;
        } catch (const corun::task_cancelled&) {
          sum += 100;
        }
        corun::this_task::checkpoint();  // its children's endings did not cancel the parent
        co_return sum;
      }());
      CHECK(result == 175);
    }
  }

  TEST_CASE("a cancelled task joining children that ended gets a value, then its own cancelled") {
    std::atomic<bool> children_done{false};
    std::atomic<bool> parent_cancelled{false};
    std::atomic<int> value_seen{0};
    std::atomic<int> outcome{0};  // 1: cancelled, 2: task_cancelled
    corun::runtime rt(with_workers(2));
    auto parent = rt.spawn(
        [](std::atomic<bool>& done, const std::atomic<bool>& cancelled, std::atomic<int>& v,
           std::atomic<int>& o) -> task<void> {
          auto value = corun::spawn(return_at_once(5));
          auto stopped = corun::spawn(yield_forever());
          stopped.cancel();
          // Without suspending (a suspension would throw our cancellation): the other worker
          // runs both children meanwhile.
          while (!value.done() || !stopped.done()) {
            std::this_thread::yield();
          }
          done.store(true, std::memory_order_release);
          while (!cancelled.load(std::memory_order_acquire)) {
            std::this_thread::yield();
          }
          v = co_await value;
          try {
            co_await stopped;
          } catch (...) {
            o = cancellation_kind(std::current_exception());
            throw;
          }
        },
        std::ref(children_done), std::cref(parent_cancelled), std::ref(value_seen),
        std::ref(outcome));
    wait_for_flag(children_done);
    parent.cancel();
    parent_cancelled.store(true, std::memory_order_release);
    CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
    CHECK(value_seen.load() == 5);
    CHECK(outcome.load() == 1);
  }

  TEST_CASE("cancelling a child does not cancel its parent") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const int value = rt.block_on([]() -> task<int> {
        auto child = corun::spawn(yield_forever());
        child.cancel();
        try {
          co_await child;
        } catch (const corun::task_cancelled&) {
        }
        co_await yield_times(10);
        corun::this_task::checkpoint();
        co_return 42;
      }());
      CHECK(value == 42);
    }
  }

  TEST_CASE("a task that catches cancelled and returns completes with its value") {
    std::atomic<bool> started{false};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(swallow_once(5, started));
    wait_for_flag(started);
    h.cancel();
    CHECK(h.get() == 5);
    CHECK(h.done());
    CHECK_FALSE(h.cancelled());
    CHECK_FALSE(h.failed());
  }

  TEST_CASE("a swallowed cancellation is raised again at the next suspension point") {
    std::atomic<int> catches{0};
    std::atomic<bool> started{false};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(
        [](std::atomic<int>& n, std::atomic<bool>& s) -> task<void> {
          s.store(true, std::memory_order_release);
          try {
            co_await yield_forever();
          } catch (const corun::cancelled&) {
            ++n;
          }
          try {
            co_await corun::this_task::yield();
          } catch (const corun::cancelled&) {
            ++n;
            throw;
          }
        },
        std::ref(catches), std::ref(started));
    wait_for_flag(started);
    h.cancel();
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(catches.load() == 2);
  }

  TEST_CASE("cancel after completion has no effect") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(value_of(3));
    while (!h.done()) {
      std::this_thread::yield();
    }
    h.cancel("too late");
    CHECK_FALSE(h.cancelled());
    CHECK(h.get() == 3);
  }

  TEST_CASE("the first cancel message wins") {
    corun::runtime rt(with_workers(2));
    observations seen;
    auto h = rt.spawn(observed_yield_loop(seen));
    h.cancel("first");
    h.cancel("second");
    try {
      h.get();
      FAIL("expected task_cancelled");
    } catch (const corun::task_cancelled& e) {
      CHECK(std::string(e.what()).find("first") != std::string::npos);
      CHECK(e.task_id() == h.id());
    }
    CHECK(seen.message == "first");
  }

  TEST_CASE("task_handle copies share the task and can cancel it") {
    corun::runtime rt(with_workers(2));
    observations seen;
    auto h = rt.spawn(observed_yield_loop(seen), {.name = "shared"});
    corun::task_handle a = h;
    const corun::task_handle b = a;  // NOLINT(performance-unnecessary-copy-initialization)
    CHECK(a.id() == h.id());
    CHECK(b.id() == h.id());
    CHECK(b.name() == "shared");
    b.cancel("via copy");
    while (!a.done()) {
      std::this_thread::yield();
    }
    CHECK(a.cancelled());
    CHECK(b.cancelled());
    CHECK_FALSE(a.failed());
    CHECK(a.exception() == nullptr);
    CHECK_THROWS_AS(a.rethrow(), corun::task_cancelled);
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(seen.message == "via copy");
  }

  TEST_CASE("a child spawned by a cancelled task starts cancelled") {
    corun::runtime rt(with_workers(2));
    observations child_seen;
    std::atomic<bool> started{false};
    auto h = rt.spawn(
        [](observations& cs, std::atomic<bool>& s) -> task<void> {
          s.store(true, std::memory_order_release);
          try {
            co_await yield_forever();
          } catch (const corun::cancelled&) {
          }
          // Cleanup work spawned after the cancellation belongs to a cancelled scope.
          auto cleanup = corun::spawn(observed_yield_loop(cs));
          try {
            co_await cleanup;
          } catch (const corun::cancelled&) {
          }
          throw corun::cancelled("done cleaning");
        },
        std::ref(child_seen), std::ref(started));
    wait_for_flag(started);
    h.cancel();
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(child_seen.started.load());
    CHECK(child_seen.caught_cancelled.load());
    CHECK(child_seen.alive.load() == 0);
  }

  TEST_CASE("a task that throws cancelled itself ends cancelled") {
    corun::runtime rt(with_workers(1));
    auto h = rt.spawn([]() -> task<int> {
      throw corun::cancelled("self");
      co_return 0;
    });
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(h.cancelled());
    CHECK_FALSE(h.failed());
  }

  TEST_CASE("cancel wakes a task suspended in a join") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> joined{false};
      std::atomic<bool> parent_woke{false};
      corun::runtime rt(with_workers(workers));
      auto parent = rt.spawn(
          [](std::atomic<bool>& j, std::atomic<bool>& woke) -> task<void> {
            // The child ignores cancellation until the parent has been woken by it (or, so that a
            // missing wake-up fails instead of hanging, for a minute), so the parent can only get
            // out of the join early through the cancel wake-up.
            auto child = corun::spawn(
                [](std::atomic<bool>& w) -> task<void> {
                  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
                  while (!w.load(std::memory_order_acquire) &&
                         std::chrono::steady_clock::now() < give_up) {
                    try {
                      co_await corun::this_task::yield();
                    } catch (const corun::cancelled&) {
                    }
                  }
                },
                std::ref(woke));
            j.store(true, std::memory_order_release);
            try {
              co_await child;
            } catch (const corun::cancelled&) {
              woke.store(true, std::memory_order_release);
              throw;
            }
          },
          std::ref(joined), std::ref(parent_woke));
      wait_for_flag(joined);
      parent.cancel();
      CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
      CHECK(parent_woke.load());
    }
  }

  TEST_CASE("cancelled carries its message and copies cheaply") {
    const corun::cancelled c("why");
    const corun::cancelled copy = c;  // NOLINT(performance-unnecessary-copy-initialization)
    CHECK(copy.message() == "why");
    CHECK(corun::cancelled().message().empty());
    const corun::task_cancelled tc(12, "name", "reason");
    CHECK(tc.task_id() == 12);
    const std::string what = tc.what();
    CHECK(what.find("12") != std::string::npos);
    CHECK(what.find("name") != std::string::npos);
    CHECK(what.find("reason") != std::string::npos);
  }
}
