/// \file
/// A worker thread: its deque, its queue of yielded tasks, its run loop and its parking word.
#pragma once

#include "corun/detail/config.hpp"
#include "corun/detail/task_node.hpp"

#include "scheduler/chase_lev_deque.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace corun::detail {

class runtime_core;

/// Per-worker counters. Written only by the owning worker (relaxed load + store, i.e. a plain
/// add) and summed by `runtime::stats()` on any thread.
struct worker_counters {
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> parks{0};

  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

class worker {
 public:
  worker(runtime_core& core, std::size_t index);
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void start();
  void join();

  /// Owner: makes `node` runnable on this worker (it resumes at `node.m_resume`). Never fails:
  /// if the deque cannot grow, the task goes on an intrusive overflow list instead.
  void push(task_node& node) noexcept;
  /// Owner: queues `node` behind the other runnable work of this worker.
  void push_yielded(task_node& node);
  /// Owner: takes `node` if it is the most recently pushed task (for running a joined child
  /// inline). False if it is not there or a thief took it meanwhile.
  [[nodiscard]] bool pop_if_bottom(task_node& node) { return m_deque.pop_if_bottom(&node); }
  /// Any thread: takes the oldest task of this worker's deque, or null.
  [[nodiscard]] task_node* steal() { return m_deque.steal(); }
  [[nodiscard]] bool maybe_has_work() const noexcept { return m_deque.maybe_nonempty(); }
  /// Any thread: ends this worker's sleep.
  void unpark() noexcept;

  [[nodiscard]] runtime_core& core() const noexcept { return m_core; }
  [[nodiscard]] std::size_t index() const noexcept { return m_index; }
  worker_counters counters;

 private:
  void run();
  [[nodiscard]] task_node* next_task();
  [[nodiscard]] task_node* pop_yielded() noexcept;
  [[nodiscard]] task_node* search();
  [[nodiscard]] task_node* steal_round();
  void stop_searching() noexcept;
  void park();
  void wait_for_unpark() noexcept;
  void execute(task_node& node) noexcept;

  runtime_core& m_core;
  const std::size_t m_index;
  chase_lev_deque<task_node*> m_deque;
  /// Runnable tasks the deque had no memory for (owner only, LIFO, not stealable).
  task_node* m_overflow = nullptr;
  /// Yielded tasks, FIFO (owner only).
  std::vector<task_node*> m_yielded;
  std::size_t m_yielded_head = 0;
  std::uint32_t m_tick = 0;
  std::uint64_t m_rng;
  bool m_searching = false;
  /// 1 once a waker has ended (or will end) this worker's sleep; futex word.
  alignas(cache_line) std::atomic<std::uint32_t> m_unparked{0};
  std::thread m_thread;
};

}  // namespace corun::detail
