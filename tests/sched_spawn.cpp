/// \file
/// Spawning: `runtime::spawn` from any thread, the free `spawn` inside tasks, `spawn(fn, args)`
/// lifetimes, names and ids, `this_task::yield`.
#include "support.hpp"

#include <pthread.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

task<std::int64_t> tree_sum(int depth, int fanout) {
  if (depth == 0) {
    co_return 1;
  }
  std::vector<corun::join_handle<std::int64_t>> children;
  children.reserve(static_cast<std::size_t>(fanout));
  for (int i = 0; i < fanout; ++i) {
    children.push_back(corun::spawn(tree_sum(depth - 1, fanout)));
  }
  std::int64_t sum = 1;
  for (auto& child : children) {
    sum += co_await child;
  }
  co_return sum;
}

/// Blocks its worker thread (no suspension) until `arrived` reaches `expected`: `expected` of
/// these only finish if that many workers run them at the same time.
task<void> block_until_all_arrived(std::atomic<std::size_t>& arrived, std::size_t expected) {
  arrived.fetch_add(1);
  while (arrived.load() < expected) {
    std::this_thread::yield();
  }
  co_return;
}

/// Spawns the next level and joins it at once, down to `depth` levels: each join finds its
/// child still at the bottom of the worker's deque (unless a thief took it) and runs it inline.
task<std::int64_t> joined_at_once(int depth) {
  if (depth == 0) {
    co_return 1;
  }
  auto child = corun::spawn(joined_at_once(depth - 1));
  co_return 1 + co_await child;
}

std::string current_thread_name() {
  char buffer[32] = {};
  ::pthread_getname_np(::pthread_self(), buffer, sizeof buffer);
  return buffer;
}

}  // namespace

TEST_SUITE("sched_spawn") {
  TEST_CASE("runtime::spawn runs a task and its handle yields the value") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn(value_of(42));
      CHECK(h.valid());
      CHECK(h.get() == 42);
      CHECK(h.done());
    }
  }

  TEST_CASE("a task can spawn children and await them all") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      // 1 + 4 + 16 + 64 + 256 + 1024 nodes
      CHECK(rt.block_on(tree_sum(5, 4)) == 1365);
    }
  }

  TEST_CASE("a task can spawn thousands of children before awaiting any") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::int64_t sum = rt.block_on([]() -> task<std::int64_t> {
        std::vector<corun::join_handle<int>> handles;
        for (int i = 0; i < 5000; ++i) {
          handles.push_back(corun::spawn(value_of(i)));
        }
        std::int64_t total = 0;
        for (auto& h : handles) {
          total += co_await h;
        }
        co_return total;
      }());
      CHECK(sum == std::int64_t{5000} * 4999 / 2);
    }
  }

  TEST_CASE("runtime::spawn is callable from many foreign threads at once") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      constexpr int threads = 8;
      constexpr int per_thread = 500;
      std::vector<std::int64_t> sums(threads, 0);
      std::vector<std::thread> spawners;
      for (int t = 0; t < threads; ++t) {
        spawners.emplace_back([&rt, &sums, t] {
          std::vector<corun::join_handle<int>> handles;
          for (int i = 0; i < per_thread; ++i) {
            handles.push_back(rt.spawn(value_of(i)));
          }
          for (auto& h : handles) {
            sums[static_cast<std::size_t>(t)] += h.get();
          }
        });
      }
      for (auto& s : spawners) {
        s.join();
      }
      for (const std::int64_t sum : sums) {
        CHECK(sum == std::int64_t{per_thread} * (per_thread - 1) / 2);
      }
    }
  }

  TEST_CASE("a handle can be awaited on a different thread than the one that spawned it") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<int> {
      co_await yield_times(20);
      co_return 9;
    });
    int result = 0;
    std::thread other([&] { result = h.get(); });
    other.join();
    CHECK(result == 9);
  }

  TEST_CASE("as many workers as requested run tasks at the same time") {
    // Each task blocks its thread until all have arrived: this needs every worker to be awake
    // and to find one of the tasks, whether they came from outside or from a task.
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      for (int round = 0; round < 20; ++round) {
        std::atomic<std::size_t> arrived{0};
        std::vector<corun::join_handle<void>> handles;
        for (std::size_t i = 0; i < workers; ++i) {
          handles.push_back(rt.spawn(block_until_all_arrived(arrived, workers)));
        }
        for (auto& h : handles) {
          h.get();
        }
        CHECK(arrived.load() == workers);
        std::atomic<std::size_t> arrived_children{0};
        rt.block_on([](std::atomic<std::size_t>& a, std::size_t n) -> task<void> {
          std::vector<corun::join_handle<void>> children;
          for (std::size_t i = 0; i + 1 < n; ++i) {
            children.push_back(corun::spawn(block_until_all_arrived(a, n)));
          }
          co_await block_until_all_arrived(a, n);
          for (auto& c : children) {
            co_await c;
          }
        }(arrived_children, workers));
        CHECK(arrived_children.load() == workers);
      }
    }
  }

  TEST_CASE("spawn of a callable keeps the callable and its arguments alive") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      corun::join_handle<std::string> root;
      {
        auto prefix = std::make_unique<std::string>("root:");
        root = rt.spawn(
            [p = std::move(prefix)](std::string suffix) -> task<std::string> {
              co_await yield_times(20);
              co_return *p + suffix;
            },
            std::string("done"));
      }  // the lambda object the caller built is gone
      CHECK(root.get() == "root:done");

      const std::string nested = rt.block_on([]() -> task<std::string> {
        corun::join_handle<std::string> child;
        {
          std::string local = "child:";
          child = corun::spawn(
              [local](int n) -> task<std::string> {
                co_await yield_times(n);
                co_return local + std::to_string(n);
              },
              15);
          local = "changed";
        }
        co_return co_await child;
      }());
      CHECK(nested == "child:15");
    }
  }

  TEST_CASE("spawn with options names the task") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<std::string> { co_return corun::this_task::name(); });
    CHECK(h.get().empty());
    auto named = rt.spawn([]() -> task<std::string> { co_return corun::this_task::name(); }(),
                          {.name = "root-name"});
    CHECK(named.name() == "root-name");
    CHECK(named.get() == "root-name");
    const std::string child_name = rt.block_on([]() -> task<std::string> {
      auto c = corun::spawn([]() -> task<std::string> { co_return corun::this_task::name(); }(),
                            {.name = "child-name"});
      CHECK(c.name() == "child-name");
      auto d = corun::spawn({.name = "fn-name"},
                            []() -> task<std::string> { co_return corun::this_task::name(); });
      CHECK((co_await d) == "fn-name");
      co_return co_await c;
    }());
    CHECK(child_name == "child-name");
  }

  TEST_CASE("tasks awaited inline run as part of the spawned task that awaits them") {
    corun::runtime rt(with_workers(2));
    const bool same = rt.block_on([]() -> task<bool> {
      const std::uint64_t outer = corun::this_task::id();
      const std::uint64_t inner = co_await []() -> task<std::uint64_t> {
        co_await corun::this_task::yield();
        co_return corun::this_task::id();
      }();
      co_return inner == outer;
    }());
    CHECK(same);
  }

  // A child joined while it still waits at the bottom of the joiner's deque runs inline on the
  // joiner's stack and completes straight into the joiner (`complete_inline_joined`,
  // task_lifecycle.cpp), which takes it off the joiner's count of children there. A child
  // counted off twice, or not at all, leaves its parent waiting for ever: the watchdog turns
  // that into a failure.
  TEST_CASE(
      "children joined right after their spawn hand back their values and end their parents") {
    watchdog guard("joins of children just spawned");
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      guard.progress("workers " + std::to_string(workers));
      corun::runtime rt(with_workers(workers));
      const corun::runtime_stats before = rt.stats();
      constexpr int rounds = 1000;
      const std::int64_t sum = rt.block_on([]() -> task<std::int64_t> {
        std::int64_t total = 0;
        for (int round = 0; round < rounds; ++round) {
          auto chain = corun::spawn(joined_at_once(3));
          total += co_await chain;
          // The same join without the cancel wake-up (`shield`'s).
          auto shielded = corun::spawn(value_of(1));
          total += co_await shielded.wait_uncancellable();
        }
        co_return total;
      }());
      CHECK(sum == rounds * (4 + 1));
      const corun::runtime_stats after = rt.stats();
      // Every task spawned (the root, and per round four in the chain and the shielded one)
      // completed.
      CHECK(after.spawned - before.spawned == 1 + rounds * 5);
      CHECK(after.completed - before.completed == after.spawned - before.spawned);
    }
  }

  TEST_CASE("task ids are unique and match this_task::id") {
    corun::runtime rt(with_workers(4));
    std::vector<corun::join_handle<std::uint64_t>> handles;
    for (int i = 0; i < 200; ++i) {
      handles.push_back(
          rt.spawn([]() -> task<std::uint64_t> { co_return corun::this_task::id(); }));
    }
    std::set<std::uint64_t> ids;
    for (auto& h : handles) {
      const std::uint64_t handle_id = h.id();
      CHECK(h.get() == handle_id);
      CHECK(h.id() == handle_id);  // stable
      ids.insert(handle_id);
    }
    CHECK(ids.size() == handles.size());
    CHECK(ids.count(0) == 0);
  }

  TEST_CASE("runtime::spawn inside a task makes a root task that the task does not wait for") {
    corun::runtime rt(with_workers(2));
    std::atomic<bool> release{false};
    corun::join_handle<int> root;
    rt.block_on(
        [](corun::runtime& r, corun::join_handle<int>& out, std::atomic<bool>& rel) -> task<void> {
          out = r.spawn(
              [](std::atomic<bool>& x) -> task<int> {
                co_await yield_until(x);
                co_return 3;
              },
              std::ref(rel));
          co_return;
        }(rt, root, release));
    // The spawner completed although the root it spawned cannot finish yet.
    CHECK_FALSE(root.done());
    release.store(true, std::memory_order_release);
    CHECK(root.get() == 3);
  }

  TEST_CASE("yield lets the other tasks of the worker run") {
    corun::runtime rt(with_workers(1));
    std::atomic<bool> flag{false};
    const int yields = rt.block_on([](std::atomic<bool>& f) -> task<int> {
      auto child = corun::spawn(
          [](std::atomic<bool>& g) -> task<void> {
            g.store(true, std::memory_order_release);
            co_return;
          },
          std::ref(f));
      int n = 0;
      // With one worker the child can only run while this task is yielding.
      while (!f.load(std::memory_order_acquire)) {
        co_await corun::this_task::yield();
        ++n;
      }
      co_await child;
      co_return n;
    }(flag));
    CHECK(flag.load());
    CHECK(yields >= 1);
  }

  TEST_CASE("two tasks yielding to each other on one worker both make progress") {
    corun::runtime rt(with_workers(1));
    std::atomic<bool> a{false};
    std::atomic<bool> b{false};
    auto ha = rt.spawn(
        [](std::atomic<bool>& mine, std::atomic<bool>& other) -> task<void> {
          mine.store(true);
          co_await yield_until(other);
        },
        std::ref(a), std::ref(b));
    auto hb = rt.spawn(
        [](std::atomic<bool>& mine, std::atomic<bool>& other) -> task<void> {
          mine.store(true);
          co_await yield_until(other);
        },
        std::ref(b), std::ref(a));
    ha.get();
    hb.get();
    CHECK(a.load());
    CHECK(b.load());
  }

  TEST_CASE("assigning over a join_handle detaches the task it referred to") {
    corun::runtime rt(with_workers(2));
    std::atomic<bool> release{false};
    std::atomic<bool> first_finished{false};
    auto h = rt.spawn(
        [](std::atomic<bool>& r, std::atomic<bool>& f) -> task<int> {
          co_await yield_until(r);
          f.store(true, std::memory_order_release);
          co_return 1;
        },
        std::ref(release), std::ref(first_finished));
    const corun::task_handle first = h;
    h = rt.spawn(value_of(2));
    CHECK(h.get() == 2);
    CHECK_FALSE(first.done());
    release.store(true, std::memory_order_release);
    wait_for_flag(first_finished);
    while (!first.done()) {
      std::this_thread::yield();
    }
    CHECK_FALSE(first.failed());
  }

  TEST_CASE("a runtime without frame recycling runs tasks and frees their frames") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      const std::int64_t baseline = live_frames();
      {
        corun::runtime_options options = with_workers(workers);
        options.recycle_frames = false;
        corun::runtime rt(std::move(options));
        CHECK(rt.block_on(tree_sum(4, 4)) == 341);
        CHECK(rt.block_on([]() -> task<int> {
          int sum = 0;
          for (int i = 0; i < 1000; ++i) {
            sum += co_await value_of(1);
          }
          co_return sum;
        }()) == 1000);
      }
      CHECK(live_frames() == baseline);
    }
  }

  TEST_CASE("worker threads are named after the runtime") {
    corun::runtime_options options = with_workers(2);
    options.name = "nametest";
    corun::runtime rt(std::move(options));
    CHECK(rt.name() == "nametest");
    const std::string name =
        rt.block_on([]() -> task<std::string> { co_return current_thread_name(); }());
    CHECK(name.rfind("nametest-w", 0) == 0);
  }
}
