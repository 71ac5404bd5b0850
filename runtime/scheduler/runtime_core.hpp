/// \file
/// The compiled state behind `corun::runtime`: workers, injection queue, idle state, root scope.
#pragma once

#include "corun/runtime.hpp"

#include "scheduler/idle.hpp"
#include "scheduler/root_scope.hpp"
#include "scheduler/tsan.hpp"
#include "scheduler/worker.hpp"
#include "trace/task_tracker.hpp"

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace corun::detail {

class runtime_core {
 public:
  explicit runtime_core(runtime_options options);
  /// The shutdown protocol; see runtime.cpp.
  ~runtime_core();
  runtime_core(const runtime_core&) = delete;
  runtime_core& operator=(const runtime_core&) = delete;

  /// Makes `node` runnable (at `node.m_resume`) from any thread.
  void schedule(task_node& node);
  /// The same without allocating, for wake-ups that must not fail (cancel callbacks): from a
  /// foreign thread the task goes on an intrusive list that workers drain with the injection
  /// queue.
  void schedule_nothrow(task_node& node) noexcept;
  /// The worker of this runtime running on the calling thread, or null.
  [[nodiscard]] worker* local_worker() const noexcept {
    auto* w = static_cast<worker*>(tl_thread.worker);
    return w != nullptr && &w->core() == this ? w : nullptr;
  }
  /// After work became visible on a worker's deque: wake a sleeper if nobody searches.
  void notify_work_pushed() {
    if (const std::size_t sleeper = m_idle.worker_to_wake();
        CORUN_UNLIKELY(sleeper != idle::nobody)) {
      wake(sleeper);
    }
  }
  /// Out of line: keeps the futex call (and the registers it needs) off the push path.
  CORUN_NOINLINE void wake(std::size_t sleeper) noexcept;
  [[nodiscard]] task_node* pop_injected() {
    task_node* node = nullptr;
    if (!m_inject.try_dequeue(node)) {
      // Relaxed peek: the exchange below acquires what it takes.
      if (CORUN_LIKELY(m_woken.load(std::memory_order_relaxed) == nullptr)) {
        return nullptr;
      }
      return take_woken();
    }
    tsan_acquire(node);  // pairs with the release in schedule()
    return node;
  }
  /// Recheck before sleeping (idle.hpp step 4).
  [[nodiscard]] bool any_visible_work() const noexcept;
  [[nodiscard]] bool stopping() const noexcept {
    return m_stopping.load(std::memory_order_seq_cst);
  }

  [[nodiscard]] idle& idle_state() noexcept { return m_idle; }
  /// The live-task registry, or null unless `runtime_options::track_tasks`.
  [[nodiscard]] task_tracker* tracker() const noexcept { return m_tracker.get(); }
  [[nodiscard]] root_scope& root() const noexcept { return *m_root; }
  [[nodiscard]] const runtime_options& options() const noexcept { return m_options; }
  [[nodiscard]] std::vector<std::unique_ptr<worker>>& workers() noexcept { return m_workers; }
  [[nodiscard]] runtime_stats stats() const;

 private:
  friend class worker;

  /// Worker only: takes the whole `m_woken` list, keeps its first task and pushes the others.
  [[nodiscard]] task_node* take_woken() noexcept;

  runtime_options m_options;
  root_scope* m_root;
  idle m_idle;
  std::unique_ptr<task_tracker> m_tracker;
  moodycamel::ConcurrentQueue<task_node*> m_inject;
  std::atomic<std::uint64_t> m_injected{0};
  std::atomic<bool> m_stopping{false};
  /// Tasks made runnable by `schedule_nothrow` from foreign threads (a Treiber stack through
  /// `task_node::m_next`, taken whole, so there is no ABA).
  std::atomic<task_node*> m_woken{nullptr};
  std::vector<std::unique_ptr<worker>> m_workers;
};

}  // namespace corun::detail
