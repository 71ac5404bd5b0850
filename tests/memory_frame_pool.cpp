/// \file
/// The coroutine frame pool (runtime/memory/frame_pool.cpp) through its allocation hooks: blocks
/// freed on one thread come back to another, oldest batch first, and are counted while live.
///
/// Every test case runs in a process of its own (doctest_discover_tests), so the central lists
/// start empty and a test may change the pool's policy for itself; the blocks used here are of the
/// largest pooled class, which no task frame of the test executable reaches.
#include "corun/detail/frame_alloc.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

namespace {

using corun::detail::frame_alloc;
using corun::detail::frame_cache_limit;
using corun::detail::frame_class_count;
using corun::detail::frame_class_shift;
using corun::detail::frame_free;
using corun::detail::live_frames;
using corun::detail::pooled_frame_bytes;
using corun::detail::set_frame_pool_policy;

/// The largest size the pool recycles.
constexpr std::size_t block_size = (frame_class_count - 1) << frame_class_shift;

/// On a thread of its own: allocates `count` blocks, then frees them in allocation order. The
/// thread's list overflows, handing batches to the central list, and the rest follows when the
/// thread exits. Returns the blocks in the order they were freed.
std::vector<void*> free_on_other_thread(std::size_t count) {
  std::vector<void*> blocks;
  std::thread([&] {
    for (std::size_t i = 0; i < count; ++i) {
      blocks.push_back(frame_alloc(block_size));
    }
    for (void* block : blocks) {
      frame_free(block, block_size);
    }
  }).join();
  return blocks;
}

}  // namespace

TEST_SUITE("memory_frame_pool") {
  TEST_CASE("frames freed on one thread are reused by another, oldest batch first") {
    const std::int64_t baseline = live_frames();
    // One more than a thread keeps: the last free hands batches to the central list, cut from
    // the head of the thread's list (the blocks freed last), so the first batch given starts
    // with the very last block freed.
    const std::vector<void*> freed = free_on_other_thread(frame_cache_limit + 1);
    CHECK(live_frames() == baseline);

    std::vector<void*> taken;
    std::thread([&] {
      // This thread's list is empty: its first allocation takes a batch from the central list.
      // The oldest one is the first batch given above (a LIFO central list would hand out the
      // blocks the exiting thread gave last instead). The batch's other blocks follow from this
      // thread's own list, most recently freed first.
      for (std::size_t i = 0; i < 8; ++i) {
        taken.push_back(frame_alloc(block_size));
      }
      for (void* block : taken) {
        frame_free(block, block_size);
      }
    }).join();
    REQUIRE(taken.size() == 8);
    for (std::size_t i = 0; i < taken.size(); ++i) {
      CAPTURE(i);
      CHECK(taken[i] == freed[freed.size() - 1 - i]);
    }
    CHECK(live_frames() == baseline);
  }

  TEST_CASE("every block freed to the central lists is reused before new memory") {
    const std::int64_t baseline = live_frames();
    const std::size_t count = std::size_t{4} * frame_cache_limit;
    const std::vector<void*> freed = free_on_other_thread(count);
    const std::set<void*> pooled(freed.begin(), freed.end());
    REQUIRE(pooled.size() == count);

    std::vector<void*> taken;
    std::thread([&] {
      for (std::size_t i = 0; i < count; ++i) {
        taken.push_back(frame_alloc(block_size));
        CHECK(live_frames() == baseline + static_cast<std::int64_t>(i) + 1);
      }
      for (void* block : taken) {
        frame_free(block, block_size);
      }
    }).join();
    // All of them came back: none was lost between the lists, and none was allocated anew while
    // the central lists still held blocks (the lock-free "central list is empty" hint).
    CHECK(std::set<void*>(taken.begin(), taken.end()) == pooled);
    CHECK(live_frames() == baseline);
  }

  TEST_CASE("frames past the budget are kept while such frames were needed recently") {
    // A budget of 0: every block the central lists keep is past it. Needed an hour ago counts
    // as recently.
    set_frame_pool_policy(0, std::chrono::hours(1));
    const std::int64_t baseline = live_frames();
    const std::size_t count = std::size_t{4} * frame_cache_limit;
    // Every allocation of the burst finds the central list empty: frames past the pool's
    // holdings are needed, so the blocks given back afterwards are kept.
    const std::vector<void*> freed = free_on_other_thread(count);
    CHECK(pooled_frame_bytes() == count * block_size);

    // The next burst takes them all back before asking for new memory.
    std::vector<void*> taken;
    std::thread([&] {
      for (std::size_t i = 0; i < count; ++i) {
        taken.push_back(frame_alloc(block_size));
      }
      CHECK(pooled_frame_bytes() == 0);
      for (void* block : taken) {
        frame_free(block, block_size);
      }
    }).join();
    CHECK(std::set<void*>(taken.begin(), taken.end()) ==
          std::set<void*>(freed.begin(), freed.end()));
    CHECK(live_frames() == baseline);
  }

  TEST_CASE("frames past the budget go back to the system once not needed for the decay period") {
    set_frame_pool_policy(0, std::chrono::milliseconds(1));
    const std::int64_t baseline = live_frames();
    const std::size_t count = std::size_t{4} * frame_cache_limit;
    // Held across the burst, to be freed once the burst's need is stale.
    std::vector<void*> held;
    for (std::size_t i = 0; i < count; ++i) {
      held.push_back(frame_alloc(block_size));
    }
    static_cast<void>(free_on_other_thread(count));  // may be kept: its need is recent
    // 200 times the decay period: only a longer pause can pass here, never a shorter one.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::thread([&] {
      for (void* block : held) {
        frame_free(block, block_size);
      }
    }).join();
    // The first block given back past the budget found the need stale: it went to the system,
    // and so did every batch the lists held past the budget; so did the rest after it.
    CHECK(pooled_frame_bytes() == 0);
    CHECK(live_frames() == baseline);
  }
}
