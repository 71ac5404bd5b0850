/// \file
/// Cancel wake-ups racing completions, and cancel callbacks racing their deregistration. A
/// joiner ends exactly once, with the value or with its own cancellation; nothing hangs (a
/// watchdog turns a lost wake-up or a deadlock into a failure); no callback runs twice or after
/// its deregistration returned.
#include "support.hpp"

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

task<int> value_after_yields(int yields, int value) {
  co_await yield_times(yields);
  co_return value;
}

/// Joins `target`, which is not its child. Outcome: the value, or `cancelled` for the joiner.
task<int> join_other(corun::join_handle<int> target) { co_return co_await target; }

/// Cancels `victim` after `yields` yields, from a worker thread: a cancel callback that resumed
/// the joiner inline would deadlock on its own registry shard here.
task<void> cancel_after(corun::task_handle victim, int yields) {
  co_await yield_times(yields);
  victim.cancel("raced");
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("cancel wake-ups of joins race the joined task's completion") {
    const std::uint64_t rounds = scaled(4000, 200);
    watchdog dog("join wake-up race");
    for (const std::size_t workers : {std::size_t{2}, std::size_t{4}}) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::mt19937 rng(static_cast<std::mt19937::result_type>(workers * 7919U));
      std::uint64_t got_value = 0;
      std::uint64_t got_cancelled = 0;
      for (std::uint64_t round = 0; round < rounds; ++round) {
        dog.progress("round " + std::to_string(round));
        const int value = static_cast<int>(round);
        auto target = rt.spawn(value_after_yields(static_cast<int>(rng() % 8), value));
        auto joiner = rt.spawn(join_other(std::move(target)));
        const bool from_worker = (rng() % 2) == 0;
        const int delay = static_cast<int>(rng() % 8);
        if (from_worker) {
          rt.spawn(cancel_after(joiner, delay)).get();
        } else {
          for (int i = 0; i < delay * 50; ++i) {
            std::this_thread::yield();
          }
          joiner.cancel("raced");
        }
        try {
          const int result = joiner.get();
          CHECK(result == value);
          ++got_value;
        } catch (const corun::task_cancelled&) {
          ++got_cancelled;
        }
      }
      CHECK(got_value + got_cancelled == rounds);
      MESSAGE("workers " << workers << ": " << got_value << " values, " << got_cancelled
                         << " cancelled");
    }
  }

  TEST_CASE("cancel callbacks race their deregistration and the request") {
    const std::uint64_t rounds = scaled(3000, 200);
    watchdog dog("callback deregistration race");
    std::atomic<std::uint64_t> errors{0};
    std::uint64_t ran_total = 0;
    for (std::uint64_t round = 0; round < rounds; ++round) {
      dog.progress("round " + std::to_string(round));
      corun::cancel_source source;
      constexpr int callbacks_per_thread = 8;
      constexpr int threads = 3;
      // One slot per callback: how often it ran, and whether its deregistration had returned.
      struct slot {
        std::atomic<int> runs{0};
        std::atomic<bool> deregistered{false};
      };
      std::vector<slot> slots(static_cast<std::size_t>(threads) * callbacks_per_thread);
      std::atomic<bool> go{false};
      std::vector<std::thread> registrants;
      for (int t = 0; t < threads; ++t) {
        registrants.emplace_back([&, t] {
          std::mt19937 rng(static_cast<unsigned>(round * 31 + static_cast<unsigned>(t)));
          wait_for_flag(go);
          for (int c = 0; c < callbacks_per_thread; ++c) {
            slot& s = slots[(static_cast<std::size_t>(t) * callbacks_per_thread) + c];
            {
              const corun::cancel_callback callback(source.token(), [&s, &errors]() noexcept {
                if (s.deregistered.load()) {
                  errors.fetch_add(1);  // ran after its deregistration returned
                }
                s.runs.fetch_add(1);
              });
              for (unsigned spin = rng() % 64; spin > 0; --spin) {
                std::this_thread::yield();
              }
            }
            s.deregistered.store(true);
          }
        });
      }
      go.store(true);
      for (int spin = static_cast<int>(round % 50); spin > 0; --spin) {
        std::this_thread::yield();
      }
      source.request_cancel("now");
      for (std::thread& t : registrants) {
        t.join();
      }
      for (slot& s : slots) {
        const int runs = s.runs.load();
        CHECK(runs <= 1);
        ran_total += static_cast<std::uint64_t>(runs);
      }
    }
    CHECK(errors.load() == 0);
    CHECK(ran_total > 0);  // the request did meet registered callbacks
  }
}
