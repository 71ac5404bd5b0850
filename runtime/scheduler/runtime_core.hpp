/// \file
/// The compiled state behind `corun::runtime`: workers, injection queue, idle state, root scope.
#pragma once

#include "corun/runtime.hpp"

#include "scheduler/idle.hpp"
#include "scheduler/root_scope.hpp"
#include "scheduler/tsan.hpp"
#include "scheduler/worker.hpp"
#include "time/timer_queue.hpp"
#include "trace/task_tracker.hpp"

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace corun::detail {

/// Timers (runtime/time/timer_queue.hpp) need no thread of their own:
///  1. A worker that runs dry, and every worker at every 8th pick, fires the due timers.
///  2. A worker about to sleep with timers pending takes the timer service (one worker at a
///     time, `m_timer_service`) and sleeps only until the earliest deadline; then it leaves
///     `park` and fires them from its loop. The others sleep without a deadline.
///  3. Arming a deadline earlier than every other one (`timers_changed`) kicks the serving
///     worker, so it sleeps until the new deadline instead; if nobody serves, it wakes a sleeper
///     (unless a worker searches: that one will serve when it parks). The server takes the
///     service, then reads the earliest deadline; the armer publishes the deadline, then reads
///     the server (all seq_cst): one of them sees the other.
///  4. Virtual time never sleeps on a deadline: the last worker to fall asleep moves the clock
///     to the earliest deadline and fires it (worker::park). Two workers may both think they
///     are the last (both published parking before either looked), so jumps are serialised
///     by `m_jump_lock` and each rechecks the queues under it: the tasks the previous jump
///     woke are on a deque by then, and time does not move again until they ran.
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
    bool taken = false;
    {
      const tsan_ignored_accesses unchecked;  // the queue's fences (tsan.hpp)
      taken = m_inject.try_dequeue(node);
    }
    if (!taken) {
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
  [[nodiscard]] timer_queue& timers() noexcept { return m_timers; }
  /// Step 2: the deadline `worker` may sleep until (taking the service), or
  /// `clock_time::max()` if no timer is pending or another worker serves.
  [[nodiscard]] clock_time take_timer_service(std::size_t worker) noexcept;
  /// Step 2, after waking: gives the service up (if `worker` holds it).
  void drop_timer_service(std::size_t worker) noexcept;
  /// Step 3: call after `timer_queue::arm` returned true.
  void timers_changed() noexcept;
  /// Step 4, from a worker that published it is parking and found no work: if every worker
  /// is parked and no work is queued anywhere, moves virtual time to the earliest deadline
  /// and fires what came due. True if it did.
  [[nodiscard]] bool jump_virtual_time() noexcept;
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
  timer_queue m_timers;
  /// The worker sleeping until the earliest deadline, or `no_server`.
  static constexpr std::size_t no_server = ~std::size_t{0};
  std::atomic<std::size_t> m_timer_service{no_server};
  std::mutex m_jump_lock;
};

}  // namespace corun::detail
