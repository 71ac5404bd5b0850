/// \file
/// fib(n) with one spawn per call (no cutoff) at 1, 2, 4 and 8 workers: a quarter of a million
/// spawns and joins per run, exercising the deques, stealing and the join protocol.
#include "support.hpp"

#include <cmath>
#include <cstdint>

using corun::task;
using namespace corun_test;

namespace {

std::int64_t serial_fib(int n) { return n < 2 ? n : serial_fib(n - 1) + serial_fib(n - 2); }

/// Spawns both halves and awaits them.
task<std::int64_t> fib_spawn_both(int n) {
  if (n < 2) {
    co_return n;
  }
  auto a = corun::spawn(fib_spawn_both(n - 1));
  auto b = corun::spawn(fib_spawn_both(n - 2));
  const std::int64_t x = co_await a;
  const std::int64_t y = co_await b;
  co_return x + y;
}

/// Spawns one half and runs the other inline (the usual fork-join shape).
task<std::int64_t> fib_spawn_one(int n) {
  if (n < 2) {
    co_return n;
  }
  auto a = corun::spawn(fib_spawn_one(n - 1));
  const std::int64_t y = co_await fib_spawn_one(n - 2);
  co_return co_await a + y;
}

/// Drops every handle: the result arrives through an atomic, and only the ownership rule (a task
/// completes after its children) makes it complete when the root's awaiter resumes.
task<void> fib_detached(int n, std::atomic<std::int64_t>& sum) {
  if (n < 2) {
    sum.fetch_add(n, std::memory_order_relaxed);
    co_return;
  }
  (void)corun::spawn(fib_detached(n - 1, sum));
  (void)corun::spawn(fib_detached(n - 2, sum));
  co_return;
}

/// fib(25) in optimised builds; smaller under sanitizers so that each run stays short.
int fib_size() {
  const double reduction = std::log(stress_scale()) / std::log(1.618);
  const int n = 25 + static_cast<int>(std::lround(reduction));
  return n < 15 ? 15 : (n > 25 ? 25 : n);
}

}  // namespace

TEST_SUITE("stress_fib") {
  TEST_CASE("fib with a spawn per call gives the serial result at every worker count") {
    const int n = fib_size();
    CAPTURE(n);
    const std::int64_t expected = serial_fib(n);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK(rt.block_on(fib_spawn_both(n)) == expected);
      CHECK(rt.block_on(fib_spawn_one(n)) == expected);
      // Work-first at every spawn that finds a task queued: children run inside `spawn`, nested
      // up to the bound, while thieves take the queued ones.
      corun::runtime_options eager = with_workers(workers);
      eager.eager_spawn_threshold = 1;
      corun::runtime rt_eager(eager);
      CHECK(rt_eager.block_on(fib_spawn_both(n)) == expected);
      CHECK(rt_eager.block_on(fib_spawn_one(n)) == expected);
    }
  }

  TEST_CASE("fib with detached children completes only after all of them") {
    const int n = fib_size() - 2;
    CAPTURE(n);
    const std::int64_t expected = serial_fib(n);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime_options options = with_workers(workers);
      corun::runtime rt(options);
      options.eager_spawn_threshold = 1;  // the detached children also run inside `spawn`
      corun::runtime rt_eager(options);
      for (int repeat = 0; repeat < 4; ++repeat) {
        std::atomic<std::int64_t> sum{0};
        (repeat % 2 == 0 ? rt : rt_eager).block_on(fib_detached(n, sum));
        CHECK(sum.load() == expected);
      }
    }
  }
}
