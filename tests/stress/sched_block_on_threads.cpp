/// \file
/// Concurrent `block_on` from 8 foreign threads: the injection queue, the futex wait of the
/// blocked threads and their wake-ups under contention.
#include "support.hpp"

#include <cstdint>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

constexpr int threads = 8;

task<std::int64_t> small_tree(int depth) {
  if (depth == 0) {
    co_await corun::this_task::yield();
    co_return 1;
  }
  auto left = corun::spawn(small_tree(depth - 1));
  const std::int64_t right = co_await small_tree(depth - 1);
  co_return 1 + right + co_await left;
}

}  // namespace

TEST_SUITE("stress_block_on_threads") {
  TEST_CASE("block_on from 8 foreign threads at once") {
    const std::uint64_t rounds = scaled(2000, 100);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("concurrent block_on at " + std::to_string(workers) + " workers");
      std::atomic<std::uint64_t> progress{0};
      std::vector<std::int64_t> wrong(threads, 0);
      std::vector<std::thread> callers;
      for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&, t] {
          for (std::uint64_t i = 0; i < rounds; ++i) {
            const int depth = static_cast<int>((i + static_cast<std::uint64_t>(t)) % 5);
            const std::int64_t expected = (std::int64_t{1} << (depth + 1)) - 1;
            if (rt.block_on(small_tree(depth)) != expected) {
              ++wrong[static_cast<std::size_t>(t)];
            }
            progress.fetch_add(1, std::memory_order_relaxed);
          }
        });
      }
      std::uint64_t last = 0;
      for (std::uint64_t target = rounds * threads; last < target;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const std::uint64_t now = progress.load(std::memory_order_relaxed);
        if (now != last) {
          dog.progress(std::to_string(now) + " block_on calls done");
          last = now;
        }
      }
      for (auto& c : callers) {
        c.join();
      }
      for (const std::int64_t w : wrong) {
        CHECK(w == 0);
      }
    }
  }

  TEST_CASE("roots spawned on one thread and joined on others") {
    const std::uint64_t rounds = scaled(500, 50);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      watchdog dog("cross-thread get at " + std::to_string(workers) + " workers");
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("round " + std::to_string(round));
        std::vector<corun::join_handle<std::int64_t>> handles;
        for (int t = 0; t < threads; ++t) {
          handles.push_back(rt.spawn(small_tree(3)));
        }
        std::vector<std::int64_t> results(threads, 0);
        std::vector<std::thread> joiners;
        for (int t = 0; t < threads; ++t) {
          joiners.emplace_back([&handles, &results, t] {
            results[static_cast<std::size_t>(t)] = handles[static_cast<std::size_t>(t)].get();
          });
        }
        for (auto& j : joiners) {
          j.join();
        }
        for (const std::int64_t r : results) {
          CHECK(r == 15);
        }
      }
    }
  }
}
