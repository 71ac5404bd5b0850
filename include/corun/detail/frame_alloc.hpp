/// \file
/// Allocation hooks for coroutine frames: a per-thread, size-class recycling cache.
///
/// Every corun coroutine frame is allocated here (see `promise_base::operator new`). The fast path
/// pops a block from the calling thread's free list for the frame's size class; the slow path
/// (runtime/memory/frame_pool.cpp) refills from a central, per-class list of batches that other
/// threads have released, or falls back to `::operator new`. Frames freed on another thread go
/// into that thread's cache and travel back to allocating threads in batches through the central
/// lists, so a producer/consumer pair of workers reaches a steady state without touching `malloc`.
///
/// THREAD SAFETY: `thread_frame_cache` is touched only by its own thread, except for the live
/// counter, which other threads read (relaxed) when summing `live_frames()`.
#pragma once

#include "corun/detail/config.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace corun::detail {

/// Size classes are multiples of 64 bytes up to `frame_class_count * 64`; larger frames go
/// straight to `::operator new`.
inline constexpr std::size_t frame_class_shift = 6;
inline constexpr std::size_t frame_class_count = 32;

struct free_frame {
  free_frame* next;
};

struct thread_frame_cache {
  free_frame* free_list[frame_class_count];
  std::uint32_t free_count[frame_class_count];
  /// False on threads that count frames but allocate each with `::operator new`; their
  /// `free_count`s are pinned at the limit so the fast paths never take or keep a block.
  bool recycle;
  /// Frames allocated minus frames freed by this thread. Written only by the owner (a relaxed
  /// load and store, which compiles to a plain add) and read by `live_frames()` on any thread.
  std::atomic<std::int64_t> live;
};

/// The calling thread's cache; null until the thread's first allocation creates it, and also
/// null on threads where recycling is switched off (every call then takes the slow path).
extern constinit thread_local thread_frame_cache* tl_frame_cache CORUN_HOT_TLS;

/// `tl_frame_cache` read afresh: a frame is allocated and freed inside coroutine bodies, which
/// may resume on another thread (see `CORUN_TLS_ACCESSOR`).
CORUN_TLS_ACCESSOR inline thread_frame_cache* this_thread_frame_cache() noexcept {
  CORUN_TLS_FENCE();
  return tl_frame_cache;
}

void* frame_alloc_slow(std::size_t size);
void frame_free_slow(void* block, std::size_t size) noexcept;

[[nodiscard]] inline std::size_t frame_class(std::size_t size) noexcept {
  return (size + ((std::size_t{1} << frame_class_shift) - 1)) >> frame_class_shift;
}

/// Upper bound of frames a thread keeps per size class before it hands a batch back.
inline constexpr std::uint32_t frame_cache_limit = 512;

[[nodiscard]] inline void* frame_alloc(std::size_t size) {
  thread_frame_cache* cache = this_thread_frame_cache();
  const std::size_t cls = frame_class(size);
  if (CORUN_LIKELY(cache != nullptr && cls < frame_class_count)) {
    if (free_frame* block = cache->free_list[cls]; CORUN_LIKELY(block != nullptr)) {
      free_frame* next = block->next;
      cache->free_list[cls] = next;
      // The next allocation reads `next->next`: start that load now. A recycled list is in no
      // particular address order, so the hardware prefetcher cannot guess it.
      __builtin_prefetch(next);
      --cache->free_count[cls];
      // Owner-only counter: relaxed load + store is enough, see `thread_frame_cache::live`.
      cache->live.store(cache->live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return block;
    }
  }
  return frame_alloc_slow(size);
}

inline void frame_free(void* block, std::size_t size) noexcept {
  thread_frame_cache* cache = this_thread_frame_cache();
  const std::size_t cls = frame_class(size);
  if (CORUN_LIKELY(cache != nullptr && cls < frame_class_count &&
                   cache->free_count[cls] < frame_cache_limit)) {
    auto* node = static_cast<free_frame*>(block);
    node->next = cache->free_list[cls];
    cache->free_list[cls] = node;
    ++cache->free_count[cls];
    cache->live.store(cache->live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return;
  }
  frame_free_slow(block, size);
}

/// Sets what the central lists keep for good (`budget_bytes`) and how long they keep more after
/// it was last needed (`decay`, capped at about 1,000 days; zero or less keeps nothing more), in
/// place of CORUN_FRAME_POOL_MB and CORUN_FRAME_POOL_DECAY_MS (runtime/memory/frame_pool.cpp,
/// step 3). Process-wide.
void set_frame_pool_policy(std::size_t budget_bytes, std::chrono::milliseconds decay) noexcept;

/// Bytes of free frames the central lists hold (runtime/memory/frame_pool.cpp, step 3): what
/// the pool keeps beyond the threads' own caches.
[[nodiscard]] std::size_t pooled_frame_bytes() noexcept;

/// Coroutine frames allocated and not yet freed, over all threads, ever. Tests assert it returns
/// to its starting value: LeakSanitizer misses leaked coroutine frames with g++ 12.
[[nodiscard]] std::int64_t live_frames() noexcept;

}  // namespace corun::detail
