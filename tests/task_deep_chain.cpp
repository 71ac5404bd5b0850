/// \file
/// Deep synchronous chains must not overflow the stack. g++ 12 does not turn symmetric transfer
/// into a tail call at -O0/-O1 or under sanitizers, so every transfer may nest one more frame on
/// the thread's stack unless the runtime bounds inline resumption (DESIGN.md section 6). These
/// tests are meant to run under ASan at -O0, where stack frames are largest.
#include "support.hpp"

#include <cstdint>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

constexpr int million = 1'000'000;
constexpr int deep = 100'000;
/// Depth of the chains of spawned tasks, kept below `deep`: once any cancel request was made in
/// the process, each level's first cancellation check walks all its ancestors, so such a chain
/// costs time quadratic in its depth (217 s for 100k levels at -O0).
constexpr int spawned_deep = 20'000;

task<int> immediate(int value) { co_return value; }

task<void> immediate_void() { co_return; }

task<std::int64_t> sum_of_immediates(int count) {
  std::int64_t sum = 0;
  for (int i = 0; i < count; ++i) {
    sum += co_await immediate(i % 3);
  }
  co_return sum;
}

task<int> nested(int depth) {
  if (depth == 0) {
    co_return 0;
  }
  co_return 1 + co_await nested(depth - 1);
}

task<int> nested_throwing(int depth) {
  if (depth == 0) {
    throw test_error(depth);
  }
  co_return 1 + co_await nested_throwing(depth - 1);
}

/// Each level spawns the next as a child and awaits it: completion resumes each parent from the
/// finishing child, a chain as long as the depth.
task<int> spawned_chain(int depth) {
  if (depth == 0) {
    co_return 0;
  }
  auto child = corun::spawn(spawned_chain(depth - 1));
  co_return 1 + co_await child;
}

/// As above, but the handles are dropped: each parent completes when its child does, so the
/// completion of the whole chain cascades from the deepest task.
task<void> detached_chain(int depth, std::atomic<int>& finished) {
  if (depth > 0) {
    (void)corun::spawn(detached_chain(depth - 1, finished));
  }
  finished.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

std::int64_t expected_sum(int count) {
  std::int64_t sum = 0;
  for (int i = 0; i < count; ++i) {
    sum += i % 3;
  }
  return sum;
}

}  // namespace

TEST_SUITE("task_deep_chain") {
  TEST_CASE("a million sequential awaits of completed tasks do not overflow the stack") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK(rt.block_on(sum_of_immediates(million)) == expected_sum(million));
    }
  }

  TEST_CASE("a million sequential awaits of completed void tasks do not overflow the stack") {
    corun::runtime rt(with_workers(1));
    const int count = rt.block_on([]() -> task<int> {
      int n = 0;
      for (int i = 0; i < million; ++i) {
        co_await immediate_void();
        ++n;
      }
      co_return n;
    }());
    CHECK(count == million);
  }

  TEST_CASE("a recursion of 100k nested awaits does not overflow the stack") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK(rt.block_on(nested(deep)) == deep);
    }
  }

  TEST_CASE("an exception thrown 100k awaits deep reaches the top") {
    corun::runtime rt(with_workers(1));
    CHECK_THROWS_AS(rt.block_on(nested_throwing(deep)), test_error);
  }

  TEST_CASE("a chain of 20k spawned children each awaited by its parent does not overflow") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK(rt.block_on(spawned_chain(spawned_deep)) == spawned_deep);
    }
  }

  TEST_CASE("a chain of 100k detached children completing in cascade does not overflow") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> finished{0};
      rt.block_on(detached_chain(deep, finished));
      CHECK(finished.load() == deep + 1);
    }
  }

  TEST_CASE("awaiting a million spawned join handles in a loop does not overflow the stack") {
    corun::runtime rt(with_workers(2));
    const std::int64_t sum = rt.block_on([]() -> task<std::int64_t> {
      std::int64_t total = 0;
      for (int round = 0; round < 100; ++round) {
        std::vector<corun::join_handle<int>> handles;
        handles.reserve(10'000);
        for (int i = 0; i < 10'000; ++i) {
          handles.push_back(corun::spawn(immediate(1)));
        }
        for (auto& h : handles) {
          total += co_await h;
        }
      }
      co_return total;
    }());
    CHECK(sum == million);
  }
}
