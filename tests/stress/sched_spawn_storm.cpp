/// \file
/// Spawn storms: ten million spawns (one million under sanitizers) in windows, with bounded
/// memory: live coroutine frames and the resident set must not grow with the number of spawns,
/// which only holds if frames are recycled (DESIGN.md section 6).
#include "support.hpp"

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

constexpr std::uint64_t window = 10'000;

task<int> one() { co_return 1; }

task<void> bump(std::atomic<std::uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

/// Resident set size in bytes, from /proc/self/statm.
std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0;
  std::int64_t resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

struct storm_result {
  std::uint64_t sum = 0;
  /// Most frames alive (above the baseline) at the end of a window, handles released.
  std::int64_t max_live_between_windows = 0;
  /// Most frames alive (above the baseline) with a full window of handles held.
  std::int64_t max_live_in_window = 0;
  std::int64_t rss_after_warmup = 0;
  std::int64_t rss_at_end = 0;
};

/// Spawns `total` children in windows of `window`: spawn a window, await it, release it, repeat.
task<storm_result> windowed_storm(std::uint64_t total, std::int64_t baseline) {
  storm_result r;
  std::vector<corun::join_handle<int>> handles;
  handles.reserve(window);
  std::uint64_t windows = 0;
  for (std::uint64_t spawned = 0; spawned < total; spawned += window) {
    for (std::uint64_t i = 0; i < window; ++i) {
      handles.push_back(corun::spawn(one()));
    }
    for (auto& h : handles) {
      r.sum += static_cast<std::uint64_t>(co_await h);
    }
    const std::int64_t in_window = live_frames() - baseline;
    r.max_live_in_window = in_window > r.max_live_in_window ? in_window : r.max_live_in_window;
    handles.clear();
    const std::int64_t between = live_frames() - baseline;
    r.max_live_between_windows =
        between > r.max_live_between_windows ? between : r.max_live_between_windows;
    if (++windows == 20) {
      r.rss_after_warmup = resident_bytes();
    }
  }
  r.rss_at_end = resident_bytes();
  co_return r;
}

/// Each window is a child that spawns `window` detached grandchildren and returns at once; it
/// completes (and its awaiter resumes) only when all of them did.
task<void> detached_window(std::atomic<std::uint64_t>& counter) {
  for (std::uint64_t i = 0; i < window; ++i) {
    (void)corun::spawn(bump(counter));
  }
  co_return;
}

}  // namespace

TEST_SUITE("stress_spawn_storm") {
  TEST_CASE("ten million spawns in windows run with bounded frames and memory") {
    const std::uint64_t total = scaled(10'000'000, 200'000) / window * window;
    CAPTURE(total);
    corun::runtime rt(with_workers(2));
    const std::int64_t baseline = live_frames();
    const storm_result r = rt.block_on(windowed_storm(total, baseline));
    CHECK(r.sum == total);
    // The root task (and its block_on plumbing) plus, at most, the window being awaited.
    CHECK(r.max_live_between_windows <= 8);
    CHECK(r.max_live_in_window <= static_cast<std::int64_t>(window) + 8);
    if (!under_asan) {  // ASan's quarantine holds freed memory on purpose
      const std::int64_t growth = r.rss_at_end - r.rss_after_warmup;
      CAPTURE(r.rss_after_warmup);
      CAPTURE(r.rss_at_end);
      CHECK(growth < std::int64_t{64} << 20);
    }
    CHECK(live_frames() == baseline);
  }

  TEST_CASE("spawn storms in windows at every worker count") {
    const std::uint64_t total = scaled(1'000'000, 50'000) / window * window;
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::int64_t baseline = live_frames();
      const storm_result r = rt.block_on(windowed_storm(total, baseline));
      CHECK(r.sum == total);
      CHECK(r.max_live_between_windows <= 8);
      CHECK(live_frames() == baseline);
    }
  }

  TEST_CASE("storms of detached children are joined by their parents") {
    const std::uint64_t windows = scaled(200, 20);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<std::uint64_t> counter{0};
      const std::int64_t baseline = live_frames();
      rt.block_on([](std::atomic<std::uint64_t>& c, std::uint64_t n) -> task<void> {
        for (std::uint64_t w = 0; w < n; ++w) {
          co_await corun::spawn(detached_window(c));
          CHECK(c.load(std::memory_order_relaxed) == (w + 1) * window);
        }
      }(counter, windows));
      CHECK(counter.load() == windows * window);
      CHECK(live_frames() == baseline);
    }
  }

  TEST_CASE("a storm of root spawns from a foreign thread") {
    const std::uint64_t total = scaled(1'000'000, 50'000) / window * window;
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{8}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::int64_t baseline = live_frames();
      std::uint64_t sum = 0;
      std::vector<corun::join_handle<int>> handles;
      handles.reserve(window);
      for (std::uint64_t spawned = 0; spawned < total; spawned += window) {
        for (std::uint64_t i = 0; i < window; ++i) {
          handles.push_back(rt.spawn(one()));
        }
        for (auto& h : handles) {
          sum += static_cast<std::uint64_t>(h.get());
        }
        handles.clear();
      }
      CHECK(sum == total);
      CHECK(live_frames() == baseline);
    }
  }
}
