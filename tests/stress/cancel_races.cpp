/// \file
/// Cancellation racing completion, joins and spawns. Whatever wins, a task ends exactly once
/// with either its value or a cancellation, nothing is lost, nothing hangs, no frame leaks.
#include "support.hpp"

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

struct count_on_exit {
  std::atomic<int>& n;
  ~count_on_exit() { n.fetch_add(1); }
};

task<int> value_after_yields(int yields, int value) {
  co_await yield_times(yields);
  co_return value;
}

/// Awaits a child that returns `value`; either may be cancelled at any moment.
task<int> parent_of(int yields, int value) {
  auto child = corun::spawn(value_after_yields(yields, value));
  co_return co_await child;
}

/// Spawns children while it may be cancelled; each child counts itself when it ends.
task<void> spawner(int children, std::atomic<int>& spawned, std::atomic<int>& ended) {
  for (int i = 0; i < children; ++i) {
    (void)corun::spawn(
        [](std::atomic<int>& e) -> task<void> {
          const count_on_exit guard{e};
          co_await corun::this_task::yield();
        },
        std::ref(ended));
    spawned.fetch_add(1);
    co_await corun::this_task::yield();
  }
}

}  // namespace

TEST_SUITE("stress_cancel_races") {
  TEST_CASE("cancel racing completion gives either the value or task_cancelled") {
    const std::uint64_t rounds = scaled(50'000, 2'000);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("cancel vs completion at " + std::to_string(workers) + " workers");
      std::uint64_t values = 0;
      std::uint64_t cancellations = 0;
      std::uint64_t wrong = 0;
      constexpr int batch = 100;
      for (std::uint64_t round = 0; round < rounds; round += batch) {
        dog.progress("round " + std::to_string(round));
        std::vector<corun::join_handle<int>> handles;
        for (int i = 0; i < batch; ++i) {
          handles.push_back(i % 2 == 0 ? rt.spawn(value_after_yields(i % 4, i))
                                       : rt.spawn(parent_of(i % 3, i)));
        }
        for (int i = batch - 1; i >= 0; i -= 2) {
          handles[static_cast<std::size_t>(i)].cancel("race");
        }
        for (int i = 0; i < batch; ++i) {
          try {
            wrong += handles[static_cast<std::size_t>(i)].get() == i ? 0 : 1;
            ++values;
          } catch (const corun::task_cancelled&) {
            ++cancellations;
            // Only cancelled ones may end cancelled.
            wrong += i % 2 == 1 ? 0 : 1;
          }
        }
      }
      CHECK(wrong == 0);
      CHECK(values + cancellations == rounds);
      MESSAGE("workers=" << workers << " values=" << values << " cancelled=" << cancellations);
    }
  }

  TEST_CASE("cancel from inside tasks racing siblings' completion") {
    const std::uint64_t rounds = scaled(20'000, 500);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("sibling cancels at " + std::to_string(workers) + " workers");
      for (std::uint64_t round = 0; round < rounds; round += 100) {
        dog.progress("round " + std::to_string(round));
        const int wrong = rt.block_on([]() -> task<int> {
          std::vector<corun::join_handle<int>> handles;
          for (int i = 0; i < 100; ++i) {
            handles.push_back(corun::spawn(parent_of(i % 3, i)));
          }
          // A sibling cancels every third task while they run.
          auto canceller = corun::spawn(
              [](std::vector<corun::join_handle<int>>& hs) -> task<void> {
                for (std::size_t i = 0; i < hs.size(); i += 3) {
                  hs[i].cancel();
                  co_await corun::this_task::yield();
                }
              },
              std::ref(handles));
          co_await canceller;
          int bad = 0;
          for (int i = 0; i < 100; ++i) {
            try {
              bad += (co_await handles[static_cast<std::size_t>(i)]) == i ? 0 : 1;
            } catch (const corun::task_cancelled&) {
              bad += i % 3 == 0 ? 0 : 1;
            }
          }
          co_return bad;
        }());
        CHECK(wrong == 0);
      }
    }
  }

  TEST_CASE("cancel racing spawns: every child spawned still ends") {
    const std::uint64_t rounds = scaled(2'000, 200);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("cancel vs spawn at " + std::to_string(workers) + " workers");
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("round " + std::to_string(round));
        std::atomic<int> spawned{0};
        std::atomic<int> ended{0};
        auto h = rt.spawn(spawner(50, spawned, ended));
        for (std::uint64_t spin = 0; spin < round % 64; ++spin) {
          std::this_thread::yield();
        }
        h.cancel();
        try {
          h.get();
        } catch (const corun::task_cancelled&) {
        }
        // The spawner completed only after every child it managed to spawn had ended.
        CHECK(spawned.load() >= 1);
        CHECK(ended.load() == spawned.load());
      }
    }
  }
}
