/// \file
/// The coroutine frame pool (runtime/memory/frame_pool.cpp) through its allocation hooks: blocks
/// freed on one thread come back to another, oldest batch first, and are counted while live.
///
/// Every test case runs in a process of its own (doctest_discover_tests), so the central lists
/// start empty; the blocks used here are of the largest pooled class, which no task frame of the
/// test executable reaches.
#include "corun/detail/frame_alloc.hpp"

#include <doctest/doctest.h>

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
    const std::size_t count = 4 * frame_cache_limit;
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
}
