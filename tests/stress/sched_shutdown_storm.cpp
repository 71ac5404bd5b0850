/// \file
/// Destroying runtimes with thousands of suspended tasks, many times over: every frame destroyed
/// exactly once, every destructor run, all workers joined, nothing hung (DESIGN.md section 6).
#include "support.hpp"

#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

struct counters {
  std::atomic<int> started{0};
  std::atomic<int> alive{0};
};

task<void> looper(counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  co_await yield_forever();
}

task<void> joiner(counters& c, int depth) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  if (depth == 0) {
    co_await yield_forever();
  } else {
    auto child = corun::spawn(joiner(c, depth - 1));
    co_await child;
  }
}

task<void> grouped(counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  co_await corun::when_all(looper(c), joiner(c, 2), looper(c));
}

/// Ignores the first cancellation, then yields again (and is cancelled again).
task<void> stubborn(counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  try {
    co_await yield_forever();
  } catch (const corun::cancelled&) {
  }
  co_await corun::this_task::yield();
}

task<void> detached_parent(counters& c) {
  const alive_guard guard(c.alive);
  c.started.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 3; ++i) {
    (void)corun::spawn(looper(c));
  }
  co_return;
}

}  // namespace

TEST_SUITE("stress_shutdown_storm") {
  TEST_CASE("runtimes destroyed with thousands of suspended tasks, many times over") {
    const std::uint64_t repeats = scaled(25, 4);
    constexpr int roots = 2000;
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      watchdog dog("shutdown storm at " + std::to_string(workers) + " workers");
      for (std::uint64_t repeat = 0; repeat < repeats; ++repeat) {
        CAPTURE(repeat);
        dog.progress("repeat " + std::to_string(repeat));
        const std::int64_t baseline = live_frames();
        counters c;
        std::vector<corun::task_handle> handles;
        std::thread blocked;
        {
          corun::runtime rt(with_workers(workers));
          for (int i = 0; i < roots; ++i) {
            switch (i % 5) {
              case 0:
                handles.emplace_back(rt.spawn(looper(c)));
                break;
              case 1:
                handles.emplace_back(rt.spawn(joiner(c, 3)));
                break;
              case 2:
                handles.emplace_back(rt.spawn(grouped(c)));
                break;
              case 3:
                handles.emplace_back(rt.spawn(stubborn(c)));
                break;
              default:
                (void)rt.spawn(detached_parent(c));
                break;
            }
          }
          blocked = std::thread([h = rt.spawn(looper(c))]() mutable {
            try {
              h.get();
            } catch (const corun::task_cancelled&) {
            }
          });
          // Half of the repeats wait until some tasks run; the others destroy at once.
          if (repeat % 2 == 0) {
            while (c.started.load() < roots / 2) {
              std::this_thread::yield();
            }
          }
        }
        blocked.join();
        CHECK(c.alive.load() == 0);
        // Every task ran: 400 loopers, 400 chains of 4, 400 groups of 1 + 1 + 3 + 1,
        // 400 stubborn, 400 detached parents with 3 loopers each, and the blocked thread's.
        CHECK(c.started.load() == 400 * (1 + 4 + 6 + 1 + 4) + 1);
        for (const auto& h : handles) {
          CHECK(h.done());
          CHECK(h.cancelled());
        }
        handles.clear();
        CHECK(live_frames() == baseline);
      }
    }
  }
}
