/// \file
/// `spin_lock`: a test-and-test-and-set lock for short critical sections that never block (the
/// cancel registry's shards, the wait queues of the synchronisation objects, the timer queue).
#pragma once

#include <atomic>
#include <thread>

namespace corun::detail {

/// An uncontended `std::mutex` costs two RMWs (lock and unlock); this costs one, and fits in a
/// byte so that it can sit in every `async_mutex` or `channel`. Holders never suspend or block.
class spin_lock {
 public:
  void lock() noexcept {
    // Acquire: the critical section sees the previous holder's writes.
    while (m_held.exchange(true, std::memory_order_acquire)) {
      while (m_held.load(std::memory_order_relaxed)) {
        std::this_thread::yield();
      }
    }
  }
  [[nodiscard]] bool try_lock() noexcept {
    // Acquire: as in lock(); the relaxed peek avoids taking the line when it is held.
    return !m_held.load(std::memory_order_relaxed) &&
           !m_held.exchange(true, std::memory_order_acquire);
  }
  // Release: publishes the critical section to the next holder.
  void unlock() noexcept { m_held.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> m_held{false};
};

}  // namespace corun::detail
