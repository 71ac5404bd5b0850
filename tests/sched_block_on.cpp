/// \file
/// `runtime::block_on`: run a task as a root and wait for it from a thread that is not a worker.
#include "support.hpp"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

task<int> sum_children(int n) {
  std::vector<corun::join_handle<int>> handles;
  for (int i = 0; i < n; ++i) {
    handles.push_back(corun::spawn(
        [](int v) -> task<int> {
          co_await corun::this_task::yield();
          co_return v;
        },
        i));
  }
  int sum = 0;
  for (auto& h : handles) {
    sum += co_await h;
  }
  co_return sum;
}

}  // namespace

TEST_SUITE("sched_block_on") {
  TEST_CASE("block_on returns the task's value") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK(rt.block_on(value_of(3)) == 3);
      CHECK(rt.block_on(sum_children(100)) == 4950);
      const std::unique_ptr<int> p =
          rt.block_on([]() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(4); }());
      REQUIRE(p != nullptr);
      CHECK(*p == 4);
    }
  }

  TEST_CASE("block_on of a void task returns once it completed") {
    corun::runtime rt(with_workers(2));
    bool ran = false;
    rt.block_on([](bool& r) -> task<void> {
      co_await yield_times(5);
      r = true;
    }(ran));
    CHECK(ran);
  }

  TEST_CASE("block_on rethrows the task's exception") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      try {
        (void)rt.block_on(fail_after(3, 17));
        FAIL("expected test_error");
      } catch (const test_error& e) {
        CHECK(e.id() == 17);
      }
    }
  }

  TEST_CASE("block_on of a task that ends cancelled throws task_cancelled") {
    corun::runtime rt(with_workers(2));
    CHECK_THROWS_AS(rt.block_on([]() -> task<void> {
      co_await corun::this_task::yield();
      throw corun::cancelled("gave up");
    }()),
                    corun::task_cancelled);
  }

  TEST_CASE("block_on returns only after the task's children completed") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> finished{0};
      rt.block_on([](std::atomic<int>& f) -> task<void> {
        for (int i = 0; i < 10; ++i) {
          (void)corun::spawn(
              [](std::atomic<int>& g, int yields) -> task<void> {
                co_await yield_times(yields);
                g.fetch_add(1);
              },
              std::ref(f), i * 10);
        }
        co_return;
      }(finished));
      CHECK(finished.load() == 10);
    }
  }

  TEST_CASE("many block_on calls in sequence reuse the runtime") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      int total = 0;
      for (int i = 0; i < 1000; ++i) {
        total += rt.block_on(value_of(1));
      }
      CHECK(total == 1000);
    }
  }

  TEST_CASE("block_on from several foreign threads at once") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      constexpr int threads = 4;
      std::vector<int> results(threads, 0);
      std::vector<std::thread> callers;
      for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&rt, &results, t] {
          for (int i = 0; i < 50; ++i) {
            results[static_cast<std::size_t>(t)] += rt.block_on(sum_children(10));
          }
        });
      }
      for (auto& c : callers) {
        c.join();
      }
      for (const int r : results) {
        CHECK(r == 50 * 45);
      }
    }
  }

  TEST_CASE("block_on works on several runtimes from one thread") {
    corun::runtime a(with_workers(1));
    corun::runtime b(with_workers(2));
    CHECK(a.block_on(value_of(1)) + b.block_on(value_of(2)) == 3);
  }
}
