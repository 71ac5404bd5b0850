/// \file
/// `runtime::workers()`, `name()` and `stats()`.
#include "support.hpp"

#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

task<void> spawn_children(int n) {
  std::vector<corun::join_handle<int>> handles;
  for (int i = 0; i < n; ++i) {
    handles.push_back(corun::spawn(value_of(i)));
  }
  for (auto& h : handles) {
    (void)co_await h;
  }
}

}  // namespace

TEST_SUITE("sched_stats") {
  TEST_CASE("workers reports the requested number of worker threads") {
    for (const std::size_t workers : worker_counts) {
      corun::runtime rt(with_workers(workers));
      CHECK(rt.workers() == workers);
      CHECK(rt.stats().workers == workers);
    }
  }

  TEST_CASE("zero workers means one per hardware thread") {
    corun::runtime rt(with_workers(0));
    const std::size_t hardware = std::thread::hardware_concurrency();
    CHECK(rt.workers() == (hardware == 0 ? 1 : hardware));
  }

  TEST_CASE("the runtime's name is the name option") {
    corun::runtime unnamed(with_workers(1));
    CHECK(unnamed.name() == "corun");
  }

  TEST_CASE("stats count spawned, completed and injected tasks") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const corun::runtime_stats before = rt.stats();
      CHECK(before.spawned == 0);
      CHECK(before.completed == 0);
      rt.block_on(spawn_children(100));
      wait_for_completed(rt, 101);
      const corun::runtime_stats after = rt.stats();
      CHECK(after.spawned == 101);  // the root and its children
      CHECK(after.completed == 101);
      CHECK(after.injected >= 1);  // the root came from this thread
      CHECK(after.workers == workers);
      if (workers == 1) {
        CHECK(after.steals == 0);
      }
    }
  }

  TEST_CASE("inline awaits are not spawns") {
    corun::runtime rt(with_workers(2));
    rt.block_on([]() -> task<void> {
      for (int i = 0; i < 100; ++i) {
        (void)co_await value_of(i);
      }
    }());
    wait_for_completed(rt, 1);
    CHECK(rt.stats().spawned == 1);
  }

  TEST_CASE("stats live_frames matches the process-wide counter at rest") {
    corun::runtime rt(with_workers(2));
    rt.block_on(spawn_children(10));
    wait_for_completed(rt, 11);
    CHECK(rt.stats().live_frames == live_frames());
    auto unstarted = value_of(1);
    CHECK(rt.stats().live_frames == live_frames());
  }

  TEST_CASE("idle workers eventually park") {
    // Not a timing check: an idle worker must stop spinning at some point; if none ever parks,
    // this loops until the test's timeout.
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      rt.block_on(spawn_children(100));
      while (rt.stats().parks < workers) {
        std::this_thread::yield();
      }
      CHECK(rt.stats().parks >= workers);
    }
  }

  TEST_CASE("stats can be read from any thread while tasks run") {
    corun::runtime rt(with_workers(4));
    std::atomic<bool> stop{false};
    std::uint64_t last_seen = 0;
    bool monotonic = true;
    std::thread reader([&] {
      while (!stop.load(std::memory_order_acquire)) {
        const auto s = rt.stats();
        if (s.spawned < last_seen) {
          monotonic = false;
        }
        last_seen = s.spawned;
      }
    });
    const std::uint64_t from_inside = rt.block_on([](corun::runtime& r) -> task<std::uint64_t> {
      co_await spawn_children(2000);
      co_return r.stats().spawned;
    }(rt));
    stop.store(true, std::memory_order_release);
    reader.join();
    CHECK(monotonic);
    CHECK(from_inside >= 2001);
  }
}
