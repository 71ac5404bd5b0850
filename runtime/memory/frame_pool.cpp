// Coroutine frame recycling.
//
//  1. Frames are rounded up to 64-byte size classes, so any block of a class serves any frame of
//     that class, whichever thread allocated it.
//  2. Each thread keeps a free list per class (frame_alloc.hpp, the fast paths). A list that
//     grows past `frame_cache_limit` gives batches of `batch_size` blocks to the central list of
//     its class; a thread whose list is empty takes a batch from there. Frames freed on another
//     worker thus travel back to allocating workers a batch at a time, with one lock per batch.
//  3. The central lists keep `central_budget` bytes over all classes (16 MiB, or
//     CORUN_FRAME_POOL_MB) for good. Past it they keep blocks only while frames beyond the
//     budget were needed recently: an allocation found its class's central list empty and went
//     to `::operator new`, or took a batch while the lists were over the budget, less than
//     `decay` ago (1 s, or CORUN_FRAME_POOL_DECAY_MS; 0 keeps nothing past the budget). A block
//     given back later, when that is stale, goes to `::operator delete`, and so do the batches
//     over the budget, oldest first. So repeated bursts reuse their frames, and a burst's peak
//     is given back on the first return to the pool a second after it was last needed (as
//     jemalloc decays dirty pages), not kept for good. Measured on a spawn storm of 1M live
//     192-byte frames at one worker, three interleaved runs: 84-105 ns per task with this rule
//     against 137-143 giving every block past the budget back (`::operator new` and `delete`
//     were half of the instructions).
//     Batches are linked through their first block, so handing them over never allocates.
//     The central lists are FIFO: a thread refilling takes the batch given longest ago. The
//     newest batch is still in the cache of the thread that freed it, modified, and taking it
//     costs a cross-core transfer per line; on a two-worker spawn storm (one worker allocates,
//     the other frees) LIFO measured 230 ns per task against 161 for FIFO with every frame kept
//     (CORUN_FRAME_POOL_MB=1024), 148-151 against 142-147 within the default budget.
//     An allocation that finds the central list empty skips its lock (`central_has`).
//  4. A thread that exits gives its lists to the central ones and folds its live count into
//     `retired_live`, so `live_frames()` stays exact.
#include "memory/frame_pool.hpp"

#include "corun/detail/frame_alloc.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace corun::detail {

constinit thread_local thread_frame_cache* tl_frame_cache = nullptr;

namespace {

constexpr std::uint32_t batch_size = 64;

/// A batch of free blocks of one class: a list linked through `free_frame::next`, whose first
/// block also links the batches of a central list (every class is at least 64 bytes).
struct batch : free_frame {
  batch* next_batch;
  std::uint32_t count;
};
static_assert(sizeof(batch) <= (std::size_t{1} << frame_class_shift));

/// The central list of one class: batches in the order they were given (step 3).
struct batch_queue {
  batch* head = nullptr;
  batch* tail = nullptr;

  void push(batch* b) noexcept {
    b->next_batch = nullptr;
    (head == nullptr ? head : tail->next_batch) = b;
    tail = b;
  }
  /// The oldest batch, or null.
  batch* pop() noexcept {
    batch* b = head;
    if (b != nullptr) {
      head = b->next_batch;
    }
    return b;
  }
  [[nodiscard]] bool empty() const noexcept { return head == nullptr; }
};

/// Caps a budget in MiB or a decay in ms (about 1,000 days), so neither overflows in bytes or ns.
constexpr std::uint64_t policy_max = 86'400'000'000;

/// The value of the environment variable `name` if it is a decimal number (capped at
/// `policy_max`), else `fallback`.
std::uint64_t number_from_env(const char* name, std::uint64_t fallback) noexcept {
  if (const char* text = std::getenv(name); text != nullptr && *text != '\0') {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (end != nullptr && *end == '\0') {
      return std::min<std::uint64_t>(value, policy_max);
    }
  }
  return fallback;
}

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct central_registry {
  std::mutex lock;
  std::vector<thread_frame_cache*> caches;  // guarded by lock
  batch_queue central[frame_class_count];   // guarded by lock
  /// Mirrors "central[cls] is not empty", written under the lock and read without it, so an
  /// allocation that finds the central list empty (a burst that outgrew every cache) goes to
  /// `::operator new` without taking the lock. Relaxed: a stale value only costs a needless
  /// lock (the queue is then re-read under it) or one `::operator new` that could have reused
  /// a block; it never hands out a block.
  std::atomic<bool> central_has[frame_class_count] = {};
  std::size_t central_bytes = 0;  // guarded by lock
  std::size_t central_budget =    // guarded by lock
      static_cast<std::size_t>(number_from_env("CORUN_FRAME_POOL_MB", 16)) << 20;
  /// How long blocks past the budget are kept after they were last needed (step 3).
  std::int64_t decay_ns =  // guarded by lock
      static_cast<std::int64_t>(number_from_env("CORUN_FRAME_POOL_DECAY_MS", 1000)) * 1000000;
  /// When frames past the budget were last needed (steady clock, ns; 0: never). Written by
  /// allocations, without the lock on the `::operator new` path; read under the lock. Relaxed:
  /// a stale value only moves the moment blocks are given back by one allocation's worth.
  std::atomic<std::int64_t> excess_needed_ns{0};
  /// Live frames of exited threads and of allocations made without a cache.
  std::atomic<std::int64_t> retired_live{0};
};

central_registry& registry() {
  // Never destroyed: threads may free frames during static destruction.
  static auto* instance = new central_registry;
  return *instance;
}

std::size_t class_bytes(std::size_t cls) noexcept { return cls << frame_class_shift; }

void delete_list(free_frame* head) noexcept {
  while (head != nullptr) {
    free_frame* next = head->next;
    ::operator delete(head);
    head = next;
  }
}

/// Frames past the budget were not needed for `decay`: gives the batches over the budget back
/// to the system, oldest first, from the classes in order. The caller holds the registry lock.
void trim_to_budget(central_registry& reg) noexcept {
  for (std::size_t cls = 0; cls < frame_class_count && reg.central_bytes > reg.central_budget;
       ++cls) {
    batch_queue& queue = reg.central[cls];
    while (reg.central_bytes > reg.central_budget && !queue.empty()) {
      batch* b = queue.pop();
      reg.central_bytes -= std::size_t{b->count} * class_bytes(cls);
      delete_list(b);
    }
    reg.central_has[cls].store(!queue.empty(), std::memory_order_relaxed);
  }
}

/// Gives the list `head` (`count` blocks of class `cls`) to the central list, or back to the
/// system past the budget when that was not needed recently (step 3). The caller holds the
/// registry lock.
void give_to_central(central_registry& reg, std::size_t cls, free_frame* head,
                     std::uint32_t count) noexcept {
  const std::size_t bytes = std::size_t{count} * class_bytes(cls);
  if (reg.central_bytes + bytes > reg.central_budget) {
    const std::int64_t needed = reg.excess_needed_ns.load(std::memory_order_relaxed);
    if (reg.decay_ns == 0 || needed == 0 || now_ns() - needed > reg.decay_ns) {
      delete_list(head);
      trim_to_budget(reg);
      return;
    }
  }
  auto* b = static_cast<batch*>(head);
  b->count = count;
  reg.central[cls].push(b);
  reg.central_has[cls].store(true, std::memory_order_relaxed);
  reg.central_bytes += bytes;
}

/// Owns the calling thread's cache; its destructor runs at thread exit (step 4).
struct cache_owner {
  thread_frame_cache cache{};
  bool created = false;
  bool dead = false;

  void create(bool recycle) noexcept {
    cache.recycle = recycle;
    for (std::uint32_t& count : cache.free_count) {
      // A full list never takes a block on the fast path: non-recycling threads always free
      // through the slow path.
      count = recycle ? 0 : frame_cache_limit;
    }
    try {
      const std::lock_guard lock(registry().lock);
      registry().caches.push_back(&cache);
    } catch (...) {
      // No memory to register the cache: this thread allocates every frame with operator new
      // and counts it in `retired_live` until a later slow path manages to register.
      return;
    }
    created = true;
    tl_frame_cache = &cache;
  }

  ~cache_owner() {
    dead = true;
    if (!created) {
      return;
    }
    tl_frame_cache = nullptr;
    central_registry& reg = registry();
    const std::lock_guard lock(reg.lock);
    for (std::size_t cls = 0; cls < frame_class_count; ++cls) {
      if (cache.free_list[cls] != nullptr) {
        give_to_central(reg, cls, cache.free_list[cls], cache.free_count[cls]);
      }
    }
    std::erase(reg.caches, &cache);
    reg.retired_live.fetch_add(cache.live.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
  }
};

thread_local cache_owner tl_owner;

/// The calling thread's cache, created on first use; null once the thread is exiting.
thread_frame_cache* thread_cache() noexcept {
  if (tl_frame_cache != nullptr) {
    return tl_frame_cache;
  }
  cache_owner& owner = tl_owner;
  if (owner.dead) {
    return nullptr;
  }
  if (!owner.created) {
    owner.create(true);
  }
  return owner.created ? &owner.cache : nullptr;
}

/// An allocation found its central list empty: frames past what the pool holds are needed. The
/// clock is read once per `batch_size` such allocations of this thread (a burst makes many).
void note_excess_needed(central_registry& reg) noexcept {
  thread_local std::uint32_t countdown = 0;
  if (countdown-- == 0) {
    countdown = batch_size - 1;
    reg.excess_needed_ns.store(now_ns(), std::memory_order_relaxed);
  }
}

void count_live(thread_frame_cache* cache, std::int64_t delta) noexcept {
  if (cache != nullptr) {
    cache->live.store(cache->live.load(std::memory_order_relaxed) + delta,
                      std::memory_order_relaxed);
  } else {
    registry().retired_live.fetch_add(delta, std::memory_order_relaxed);
  }
}

}  // namespace

void configure_thread_frame_cache(bool recycle) noexcept {
  cache_owner& owner = tl_owner;
  if (!owner.created && !owner.dead) {
    owner.create(recycle);
  }
}

void* frame_alloc_slow(std::size_t size) {
  thread_frame_cache* cache = thread_cache();
  const std::size_t cls = frame_class(size);
  if (cls >= frame_class_count) {
    void* block = ::operator new(size);
    count_live(cache, 1);
    return block;
  }
  central_registry& reg = registry();
  if (cache != nullptr && cache->recycle && reg.central_has[cls].load(std::memory_order_relaxed)) {
    batch* taken = nullptr;
    {
      const std::lock_guard lock(reg.lock);
      taken = reg.central[cls].pop();
      if (taken != nullptr) {
        reg.central_has[cls].store(!reg.central[cls].empty(), std::memory_order_relaxed);
        if (reg.central_bytes > reg.central_budget) {
          reg.excess_needed_ns.store(now_ns(), std::memory_order_relaxed);
        }
        reg.central_bytes -= std::size_t{taken->count} * class_bytes(cls);
      }
    }
    if (taken != nullptr) {
      cache->free_list[cls] = taken->next;
      cache->free_count[cls] = taken->count - 1;
      count_live(cache, 1);
      return taken;
    }
  }
  void* block = ::operator new(class_bytes(cls));
  count_live(cache, 1);
  if (cache != nullptr && cache->recycle) {
    note_excess_needed(reg);
  }
  return block;
}

void frame_free_slow(void* block, std::size_t size) noexcept {
  const std::size_t cls = frame_class(size);
  thread_frame_cache* cache = thread_cache();
  count_live(cache, -1);
  if (cls >= frame_class_count || cache == nullptr || !cache->recycle) {
    ::operator delete(block);
    return;
  }
  auto* node = static_cast<free_frame*>(block);
  node->next = cache->free_list[cls];
  cache->free_list[cls] = node;
  if (++cache->free_count[cls] <= frame_cache_limit) {
    return;  // the fast path only missed because this thread had no cache yet
  }
  // Over the limit: hand batches to the central list until the list is half full. The batches
  // are cut outside the lock.
  free_frame* heads[frame_cache_limit / batch_size];
  std::uint32_t batches = 0;
  free_frame* list = cache->free_list[cls];
  std::uint32_t count = cache->free_count[cls];
  while (count > frame_cache_limit / 2) {
    free_frame* tail = list;
    for (std::uint32_t i = 1; i < batch_size; ++i) {
      tail = tail->next;
    }
    heads[batches++] = list;
    list = tail->next;
    tail->next = nullptr;
    count -= batch_size;
  }
  cache->free_list[cls] = list;
  cache->free_count[cls] = count;
  central_registry& reg = registry();
  const std::lock_guard lock(reg.lock);
  for (std::uint32_t i = 0; i < batches; ++i) {
    give_to_central(reg, cls, heads[i], batch_size);
  }
}

void set_frame_pool_policy(std::size_t budget_bytes, std::chrono::milliseconds decay) noexcept {
  central_registry& reg = registry();
  const std::lock_guard lock(reg.lock);
  reg.central_budget = budget_bytes;
  const auto capped = std::clamp<std::chrono::milliseconds::rep>(
      decay.count(), 0, static_cast<std::chrono::milliseconds::rep>(policy_max));
  reg.decay_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::milliseconds(capped))
          .count();
}

std::size_t pooled_frame_bytes() noexcept {
  central_registry& reg = registry();
  const std::lock_guard lock(reg.lock);
  return reg.central_bytes;
}

std::int64_t live_frames() noexcept {
  central_registry& reg = registry();
  const std::lock_guard lock(reg.lock);
  std::int64_t total = reg.retired_live.load(std::memory_order_relaxed);
  for (const thread_frame_cache* cache : reg.caches) {
    total += cache->live.load(std::memory_order_relaxed);
  }
  return total;
}

}  // namespace corun::detail
