/// \file
/// Random cancellation points in random task trees. Each tree mixes spawned-and-joined
/// children, task groups, shielded subtrees, yielding leaves and leaves that sleep until
/// cancelled; a foreign thread cancels random tasks of the tree at random moments, then the
/// root. Whatever the timing: the root ends (value, `task_cancelled`, or a failure of a
/// throwing node), nothing hangs (watchdog), no coroutine frame leaks (the test listener counts
/// them), and a shielded subtree always runs to its end.
///
/// Reproduce one tree with CORUN_SEED=<seed>; the seed of every failure is printed.
#include "support.hpp"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// Handles of the tree's tasks, for the canceller.
struct registry {
  std::mutex lock;
  std::vector<corun::task_handle> handles;
  void add(corun::task_handle h) {
    const std::lock_guard guard(lock);
    handles.push_back(std::move(h));
  }
};

struct context {
  registry& reg;
  std::atomic<int>& shielded_started;
  std::atomic<int>& shielded_finished;
};

task<long> node(std::uint64_t seed, int depth, bool in_shield, context& ctx) {
  std::mt19937_64 rng(seed);
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  if (depth == 0) {
    switch (pick(in_shield ? 2 : 4)) {
      case 0:
        co_return 1;
      case 1:
        co_await yield_times(pick(6));
        co_return 1;
      case 2:
        co_await corun::this_task::sleep_forever();  // only a cancel ends it
        co_return 0;
      default:
        co_await yield_times(pick(3));
        throw test_error(static_cast<int>(seed % 1000));
    }
  }
  long sum = 1;
  const int children = 1 + pick(4);
  switch (pick(in_shield ? 2 : 3)) {
    case 0: {  // spawn all, join in order; a cancelled child counts as 0
      std::vector<corun::join_handle<long>> kids;
      for (int i = 0; i < children; ++i) {
        kids.push_back(corun::spawn(node(rng(), depth - 1, in_shield, ctx)));
        ctx.reg.add(kids.back());
      }
      for (auto& k : kids) {
        try {
          sum += co_await k;
        } catch (const corun::task_cancelled&) {
        }
      }
      break;
    }
    case 1: {  // a task group
      co_await corun::with_task_group([&](corun::task_group& g) -> task<void> {
        for (int i = 0; i < children; ++i) {
          ctx.reg.add(g.spawn(node(rng(), depth - 1, in_shield, ctx)));
        }
        co_return;
      });
      sum += children;
      break;
    }
    default: {  // a shielded subtree: runs to its end whatever is cancelled outside
      ctx.shielded_started.fetch_add(1);
      try {
        sum += co_await corun::shield(node(rng(), depth - 1, true, ctx));
      } catch (const std::exception&) {
        // a throwing leaf inside: still the subtree ran to its end
      }
      ctx.shielded_finished.fetch_add(1);
      break;
    }
  }
  co_return sum;
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("random cancellation points in random trees") {
    const std::uint64_t trees = scaled(3000, 300);
    std::uint64_t first = 1;
    std::uint64_t count = trees;
    if (const char* fixed = std::getenv("CORUN_SEED"); fixed != nullptr) {
      first = std::strtoull(fixed, nullptr, 10);
      count = 1;
    }
    watchdog dog("random cancellation trees", std::chrono::seconds(60));
    corun::runtime rt_default(with_workers(4));
    // Odd seeds: nearly every spawn work-first (see task_random_trees.cpp).
    corun::runtime_options eager = with_workers(4);
    eager.eager_spawn_threshold = 1;
    corun::runtime rt_eager(eager);
    int ended_value = 0;
    int ended_cancelled = 0;
    int ended_failed = 0;
    for (std::uint64_t seed = first; seed < first + count; ++seed) {
      dog.progress("seed " + std::to_string(seed));
      CAPTURE(seed);
      registry reg;
      std::atomic<int> shielded_started{0};
      std::atomic<int> shielded_finished{0};
      context ctx{reg, shielded_started, shielded_finished};
      corun::runtime& rt = seed % 2 == 1 ? rt_eager : rt_default;
      auto root = rt.spawn(node(seed * 0x9E3779B97F4A7C15ULL, 4, false, ctx));
      std::mt19937_64 rng(seed);
      const int cancels = static_cast<int>(rng() % 4);
      for (int c = 0; c < cancels; ++c) {
        for (int spin = static_cast<int>(rng() % 200); spin > 0; --spin) {
          std::this_thread::yield();
        }
        const std::lock_guard guard(reg.lock);
        if (!reg.handles.empty()) {
          reg.handles[rng() % reg.handles.size()].cancel("random");
        }
      }
      root.cancel("the end");  // sleeping leaves need it to finish
      try {
        static_cast<void>(root.get());
        ++ended_value;
      } catch (const corun::task_cancelled&) {
        ++ended_cancelled;
      } catch (const test_error&) {
        ++ended_failed;
      } catch (const corun::exception_group&) {
        ++ended_failed;
      }
      CHECK(shielded_finished.load() == shielded_started.load());
    }
    MESSAGE(ended_value << " values, " << ended_cancelled << " cancelled, " << ended_failed
                        << " failed");
    CHECK(ended_value + ended_cancelled + ended_failed == static_cast<int>(count));
  }
}
