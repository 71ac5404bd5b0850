/// \file
/// Runtime destruction: cancel every task, wait for all of them, join the workers; every frame
/// destroyed exactly once, every destructor run, nothing hangs.
#include "support.hpp"

#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

struct shutdown_counters {
  std::atomic<int> started{0};
  std::atomic<int> alive{0};
  std::atomic<int> saw_cancelled{0};
};

/// Counts itself, then yields until cancelled.
task<void> counted_yield_loop(shutdown_counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  try {
    co_await yield_forever();
  } catch (const corun::cancelled&) {
    c.saw_cancelled.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

/// Counts itself, spawns a yield loop and waits for it in a join.
task<void> counted_joiner(shutdown_counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  auto child = corun::spawn(counted_yield_loop(c));
  try {
    co_await child;
  } catch (const corun::cancelled&) {
    c.saw_cancelled.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

/// A chain of `depth` tasks, each awaiting the next; the last yields until cancelled.
task<void> join_chain(int depth, shutdown_counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  if (depth == 0) {
    co_await yield_forever();
  } else {
    auto next = corun::spawn(join_chain(depth - 1, c));
    co_await next;
  }
}

}  // namespace

TEST_SUITE("sched_shutdown") {
  TEST_CASE("destroying an idle runtime joins its workers") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      for (int i = 0; i < 20; ++i) {
        corun::runtime rt(with_workers(workers));
        CHECK(rt.workers() == workers);
      }
    }
  }

  TEST_CASE("destroying a runtime right after a block_on joins its workers") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      for (int i = 0; i < 20; ++i) {
        corun::runtime rt(with_workers(workers));
        CHECK(rt.block_on(value_of(i)) == i);
      }
    }
  }

  TEST_CASE("destroying a runtime cancels thousands of tasks suspended in yield loops and joins") {
    constexpr int roots = 1000;
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      for (int repeat = 0; repeat < 5; ++repeat) {
        CAPTURE(repeat);
        shutdown_counters c;
        std::vector<corun::task_handle> handles;
        {
          corun::runtime rt(with_workers(workers));
          for (int i = 0; i < roots; ++i) {
            handles.emplace_back(i % 2 == 0 ? rt.spawn(counted_yield_loop(c))
                                            : rt.spawn(counted_joiner(c)));
          }
          // Wait until every task (roots and the joiners' children) has started.
          while (c.started.load() < roots + roots / 2) {
            std::this_thread::yield();
          }
        }
        CHECK(c.alive.load() == 0);
        CHECK(c.started.load() == roots + roots / 2);
        CHECK(c.saw_cancelled.load() == roots + roots / 2);
        for (const auto& h : handles) {
          CHECK(h.done());
          CHECK(h.cancelled());
        }
      }
    }
  }

  TEST_CASE("tasks that had not started when the runtime was destroyed still run and unwind") {
    constexpr int roots = 2000;
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      for (int repeat = 0; repeat < 5; ++repeat) {
        shutdown_counters c;
        {
          corun::runtime rt(with_workers(workers));
          for (int i = 0; i < roots; ++i) {
            (void)rt.spawn(counted_yield_loop(c));
          }
        }  // destroyed at once: most tasks are still queued
        CHECK(c.started.load() == roots);
        CHECK(c.saw_cancelled.load() == roots);
        CHECK(c.alive.load() == 0);
      }
    }
  }

  TEST_CASE("destroying a runtime cancels deep chains of joins") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      shutdown_counters c;
      {
        corun::runtime rt(with_workers(workers));
        for (int i = 0; i < 20; ++i) {
          (void)rt.spawn(join_chain(100, c));
        }
        while (c.started.load() < 20 * 101) {
          std::this_thread::yield();
        }
      }
      CHECK(c.started.load() == 20 * 101);
      CHECK(c.alive.load() == 0);
    }
  }

  TEST_CASE("destroying a runtime cancels tasks waiting in when_all") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      shutdown_counters c;
      corun::join_handle<void> h;
      {
        corun::runtime rt(with_workers(workers));
        h = rt.spawn(
            [](shutdown_counters& s) -> task<void> {
              std::vector<task<void>> tasks;
              for (int i = 0; i < 50; ++i) {
                tasks.push_back(counted_yield_loop(s));
              }
              co_await corun::when_all(std::move(tasks));
            },
            std::ref(c));
        while (c.started.load() < 50) {
          std::this_thread::yield();
        }
      }
      CHECK(c.alive.load() == 0);
      CHECK(c.saw_cancelled.load() == 50);
      REQUIRE(h.done());
      CHECK(h.cancelled());
    }
  }

  TEST_CASE("handles outlive the runtime and report the cancellation") {
    corun::join_handle<int> h;
    {
      corun::runtime rt(with_workers(2));
      h = rt.spawn([]() -> task<int> {
        co_await yield_forever();
        co_return 1;
      });
    }
    REQUIRE(h.done());
    CHECK(h.cancelled());
    CHECK_THROWS_AS((void)h.get(), corun::task_cancelled);
  }

  TEST_CASE("a thread blocked in get wakes with task_cancelled when the runtime is destroyed") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> started{false};
      std::atomic<bool> waiting{false};
      bool got_task_cancelled = false;
      std::thread waiter;
      {
        corun::runtime rt(with_workers(workers));
        auto h = rt.spawn(
            [](std::atomic<bool>& s) -> task<void> {
              s.store(true, std::memory_order_release);
              co_await yield_forever();
            },
            std::ref(started));
        waiter = std::thread([&got_task_cancelled, &waiting, handle = std::move(h)]() mutable {
          waiting.store(true, std::memory_order_release);
          try {
            handle.get();
          } catch (const corun::task_cancelled&) {
            got_task_cancelled = true;
          }
        });
        wait_for_flag(started);
        wait_for_flag(waiting);
      }
      waiter.join();
      CHECK(got_task_cancelled);
    }
  }

  TEST_CASE("a task that swallows the shutdown cancellation completes with its value") {
    corun::join_handle<int> h;
    std::atomic<bool> started{false};
    {
      corun::runtime rt(with_workers(2));
      h = rt.spawn(
          [](std::atomic<bool>& s) -> task<int> {
            s.store(true, std::memory_order_release);
            try {
              co_await yield_forever();
            } catch (const corun::cancelled&) {
            }
            // Cleanup that awaits without suspending still works.
            co_return co_await value_of(6);
          },
          std::ref(started));
      wait_for_flag(started);
    }
    REQUIRE(h.done());
    CHECK_FALSE(h.cancelled());
    CHECK(h.get() == 6);
  }

  TEST_CASE("failures of cleanup code during shutdown are reported as unhandled") {
    failure_recorder recorder;
    constexpr int roots = 50;
    {
      corun::runtime_options options = with_workers(2);
      options.on_unhandled_exception = recorder.handler();
      corun::runtime rt(std::move(options));
      for (int i = 0; i < roots; ++i) {
        (void)rt.spawn(
            [](int id) -> task<void> {
              try {
                co_await yield_forever();
              } catch (const corun::cancelled&) {
              }
              throw test_error(id);
            },
            i);
      }
    }
    const auto failures = recorder.failures();
    CHECK(failures.size() == static_cast<std::size_t>(roots));
    for (const auto& f : failures) {
      CHECK(test_error_id(f.error) >= 0);
    }
  }

  TEST_CASE("repeated runtime destruction returns the live frame count to its baseline") {
    const std::int64_t baseline = live_frames();
    for (int repeat = 0; repeat < 30; ++repeat) {
      CAPTURE(repeat);
      shutdown_counters c;
      {
        corun::runtime rt(with_workers(worker_counts[static_cast<std::size_t>(repeat) % 4]));
        for (int i = 0; i < 300; ++i) {
          (void)rt.spawn(counted_joiner(c));
        }
      }
      CHECK(c.alive.load() == 0);
      CHECK(live_frames() == baseline);
    }
  }

  TEST_CASE("spawning on a runtime that is shutting down throws or starts the task cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      for (int repeat = 0; repeat < 20; ++repeat) {
        std::atomic<bool> threw_logic_error{false};
        std::atomic<bool> started{false};
        corun::task_handle late;
        {
          corun::runtime rt(with_workers(workers));
          (void)rt.spawn(
              [](corun::runtime& r, std::atomic<bool>& threw, std::atomic<bool>& s,
                 corun::task_handle& out) -> task<void> {
                s.store(true, std::memory_order_release);
                try {
                  co_await yield_forever();
                } catch (const corun::cancelled&) {
                }
                // The runtime is being destroyed: a new root must be refused, or run (cancelled)
                // and be waited for by the destructor like every other root.
                try {
                  out = r.spawn(yield_forever());
                } catch (const std::logic_error&) {
                  threw = true;
                }
              },
              std::ref(rt), std::ref(threw_logic_error), std::ref(started), std::ref(late));
          wait_for_flag(started);
        }
        if (threw_logic_error.load()) {
          CHECK_FALSE(late.valid());
        } else {
          REQUIRE(late.valid());
          CHECK(late.done());
          CHECK(late.cancelled());
        }
      }
    }
  }
}
