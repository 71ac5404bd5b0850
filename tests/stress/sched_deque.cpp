/// \file
/// The work-stealing deque itself on real threads. The Relacy models (tests/model/deque_model.cpp)
/// check its orderings under every interleaving of small scenarios; this runs long random ones
/// under TSan. One owner pushes, pops and pops-if-bottom on a ring that starts with 4 slots, so
/// it grows and wraps around (pushes past the last top the owner read, `try_push`) while
/// thieves steal. Every item must be taken exactly once, and whoever takes an item reads the
/// payload the owner wrote before pushing it: a plain int, so a take that is not ordered after
/// its push is a data race TSan reports.
#include "scheduler/chase_lev_deque.hpp"
#include "support.hpp"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

using corun::detail::chase_lev_deque;
using namespace corun_test;

namespace {

struct item {
  int payload = 0;  // written by the owner before the push, read by the taker
  std::atomic<int> times_taken{0};
};

/// splitmix64: reproducible bursts.
class prng {
 public:
  explicit prng(std::uint64_t seed) noexcept : m_state(seed) {}
  std::uint64_t below(std::uint64_t n) noexcept {
    std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) % n;
  }

 private:
  std::uint64_t m_state;
};

struct outcome {
  long stolen = 0;
  long bad_payloads = 0;
};

outcome run(int thieves, bool light_push, std::vector<item>& items, std::uint64_t seed) {
  chase_lev_deque<item*> deque(light_push, 4);
  std::atomic<bool> owner_done{false};
  std::atomic<long> stolen{0};
  std::atomic<long> bad{0};
  const auto take = [&bad](item* it, int index) {
    if (it->payload != index + 1) {
      bad.fetch_add(1, std::memory_order_relaxed);
    }
    it->times_taken.fetch_add(1, std::memory_order_relaxed);
  };
  const auto index_of = [&items](const item* it) { return static_cast<int>(it - items.data()); };

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(thieves));
  for (int t = 0; t < thieves; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        // Acquire: once the owner is done, every item is out of the deque or still in it, and
        // a last round of steals finds the rest.
        const bool last_round = owner_done.load(std::memory_order_acquire);
        while (item* it = deque.steal()) {
          take(it, index_of(it));
          stolen.fetch_add(1, std::memory_order_relaxed);
        }
        if (last_round && !deque.maybe_nonempty()) {
          return;
        }
        std::this_thread::yield();
      }
    });
  }

  prng random(seed);
  const auto count = static_cast<int>(items.size());
  int next = 0;
  while (next < count) {
    // A burst of up to 8 pushes, then up to 4 pops, the first maybe of the item just pushed.
    const int pushes = 1 + static_cast<int>(random.below(8));
    item* last = nullptr;
    for (int k = 0; k < pushes && next < count; ++k, ++next) {
      item& it = items[static_cast<std::size_t>(next)];
      it.payload = next + 1;
      deque.push(&it);
      last = &it;
    }
    if (last != nullptr && random.below(2) == 0 && deque.pop_if_bottom(last)) {
      take(last, index_of(last));
    }
    const int pops = static_cast<int>(random.below(5));
    for (int k = 0; k < pops; ++k) {
      if (item* it = deque.pop()) {
        take(it, index_of(it));
      }
    }
  }
  while (item* it = deque.pop()) {
    take(it, index_of(it));
  }
  owner_done.store(true, std::memory_order_release);
  for (std::thread& thread : threads) {
    thread.join();
  }
  return outcome{stolen.load(), bad.load()};
}

}  // namespace

TEST_CASE("deque: every item pushed on a growing, wrapping ring is taken exactly once") {
  const auto count = static_cast<std::size_t>(scaled(1'000'000, 10'000));
  for (const int thieves : {1, 2, 3}) {
    for (const bool light_push : {false, true}) {
      CAPTURE(thieves);
      CAPTURE(light_push);
      std::vector<item> items(count);
      const std::uint64_t seed = 0x5EED0000ULL + static_cast<std::uint64_t>(thieves) * 2 +
                                 static_cast<std::uint64_t>(light_push);
      const outcome result = run(thieves, light_push, items, seed);
      long lost = 0;
      long duplicated = 0;
      for (const item& it : items) {
        const int times = it.times_taken.load(std::memory_order_relaxed);
        lost += times == 0 ? 1 : 0;
        duplicated += times > 1 ? 1 : 0;
      }
      CHECK(lost == 0);
      CHECK(duplicated == 0);
      CHECK(result.bad_payloads == 0);
      MESSAGE("thieves took " << result.stolen << " of " << count << " items");
    }
  }
}
