/// \file
/// Park/unpark storms that would expose a lost wake-up (DESIGN.md section 2: "a task made
/// runnable while every worker parks must be picked up"). Each round lets the workers go idle for
/// a random while (so that they are spinning, about to park, or parked), then wakes them with a
/// burst of work from a foreign thread or from a task. A lost wake-up shows up as a hang, which
/// the watchdog turns into an abort naming the round. Nothing here asserts on timing.
#include "support.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// splitmix64, for reproducible pauses and burst sizes.
class prng {
 public:
  explicit prng(std::uint64_t seed) noexcept : m_state(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }

 private:
  std::uint64_t m_state;
};

task<int> fan_out(int width) {
  std::vector<corun::join_handle<int>> children;
  for (int i = 0; i < width; ++i) {
    children.push_back(corun::spawn(value_of(1)));
  }
  int sum = 0;
  for (auto& c : children) {
    sum += co_await c;
  }
  co_return sum;
}

/// Blocks its thread until `expected` tasks arrived: needs that many workers awake at once.
task<void> block_until_all_arrived(std::atomic<std::size_t>& arrived, std::size_t expected) {
  arrived.fetch_add(1);
  while (arrived.load() < expected) {
    std::this_thread::yield();
  }
  co_return;
}

/// Spawns `workers - 1` blocking children and blocks itself: only completes if the spawns woke
/// the parked workers and they found the children.
task<void> wake_all_from_a_task(std::size_t workers) {
  std::atomic<std::size_t> arrived{0};
  std::vector<corun::join_handle<void>> children;
  for (std::size_t i = 0; i + 1 < workers; ++i) {
    children.push_back(corun::spawn(block_until_all_arrived(arrived, workers)));
  }
  co_await block_until_all_arrived(arrived, workers);
  for (auto& c : children) {
    co_await c;
  }
}

/// A chain of `depth` tasks each spawning and awaiting the next, yielding on the way: wake-ups
/// hop from worker to worker through joins.
task<int> hop_chain(int depth) {
  co_await corun::this_task::yield();
  if (depth == 0) {
    co_return 0;
  }
  auto next = corun::spawn(hop_chain(depth - 1));
  co_return 1 + co_await next;
}

void idle_pause(prng& rng) {
  const std::uint64_t kind = rng.below(4);
  if (kind == 0) {
    return;  // no pause: wake while the workers are still spinning
  }
  const std::uint64_t micros = kind == 1 ? rng.below(50) : kind == 2 ? rng.below(500) : 2000;
  std::this_thread::sleep_for(std::chrono::microseconds(micros));
}

}  // namespace

TEST_SUITE("stress_park_storm") {
  TEST_CASE("bursts after idle periods are always picked up") {
    const std::uint64_t rounds = scaled(600, 60);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("park storm at " + std::to_string(workers) + " workers");
      prng rng(workers * 7919);
      std::uint64_t wrong = 0;
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("round " + std::to_string(round) + " (foreign burst)");
        idle_pause(rng);
        {
          const std::size_t burst = 1 + rng.below(2 * workers + 2);
          std::vector<corun::join_handle<int>> roots;
          for (std::size_t i = 0; i < burst; ++i) {
            roots.push_back(rt.spawn(fan_out(static_cast<int>(rng.below(16)))));
          }
          for (auto& r : roots) {
            (void)r.get();
          }
        }

        dog.progress("round " + std::to_string(round) + " (single injected task)");
        idle_pause(rng);
        wrong += rt.block_on(value_of(1)) == 1 ? 0 : 1;

        dog.progress("round " + std::to_string(round) + " (wake every worker from a task)");
        idle_pause(rng);
        rt.block_on(wake_all_from_a_task(workers));

        dog.progress("round " + std::to_string(round) + " (every worker from outside)");
        idle_pause(rng);
        {
          std::atomic<std::size_t> arrived{0};
          std::vector<corun::join_handle<void>> blockers;
          for (std::size_t i = 0; i < workers; ++i) {
            blockers.push_back(rt.spawn(block_until_all_arrived(arrived, workers)));
          }
          for (auto& b : blockers) {
            b.get();
          }
        }

        dog.progress("round " + std::to_string(round) + " (hop chain)");
        idle_pause(rng);
        wrong += rt.block_on(hop_chain(20)) == 20 ? 0 : 1;
      }
      CHECK(wrong == 0);
      MESSAGE("workers=" << workers << " parks=" << rt.stats().parks
                         << " steals=" << rt.stats().steals);
    }
  }

  TEST_CASE("two foreign threads inject into an idle runtime at once") {
    const std::uint64_t rounds = scaled(1000, 100);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("concurrent injection at " + std::to_string(workers) + " workers");
      prng rng(workers);
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("round " + std::to_string(round));
        idle_pause(rng);
        int a = 0;
        int b = 0;
        std::thread other([&rt, &b] { b = rt.block_on(fan_out(3)); });
        a = rt.block_on(fan_out(3));
        other.join();
        CHECK(a == 3);
        CHECK(b == 3);
      }
    }
  }
}
