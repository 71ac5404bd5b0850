/// \file
/// A worker thread: its deque, its queue of yielded tasks, its run loop and its parking word.
#pragma once

#include "corun/detail/config.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/timer_entry.hpp"

#include "scheduler/chase_lev_deque.hpp"
#include "scheduler/idle.hpp"
#include "scheduler/steal_backoff.hpp"

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

namespace corun::detail {

class runtime_core;
class task_tracker;

/// Per-worker counters. Written only by the owning worker (relaxed load + store, i.e. a plain
/// add) and summed by `runtime::stats()` on any thread.
struct worker_counters {
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> parks{0};

  CORUN_ALWAYS_INLINE static void bump(std::atomic<std::uint64_t>& counter) noexcept {
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
  /// if the deque cannot grow, the task goes on an intrusive overflow list instead. Inline: it
  /// is on every spawn, and out of line its call frame cost as much as the push itself.
  void push(task_node& node) noexcept {
    if (CORUN_UNLIKELY(!m_deque.try_push(&node))) {
      push_slow(node);
      return;
    }
    wake_one_if_needed();
  }
  /// Owner: makes a task just spawned as a child of the running task runnable, or runs it at
  /// once (see "Work-first spawns" in worker.cpp). Inline: every spawn takes it.
  void push_spawned(task_node& child) noexcept {
    if (CORUN_UNLIKELY(!m_deque.try_push_under_soft_limit(&child))) {
      push_spawned_slow(child);
      return;
    }
    wake_one_if_needed();
  }
  /// Owner: queues `node` behind the other runnable work of this worker.
  void push_yielded(task_node& node);
  /// Owner: takes `node` if it is the most recently pushed task (for running a joined child
  /// inline). False if it is not there or a thief took it meanwhile.
  [[nodiscard]] bool pop_if_bottom(task_node& node) {
    return m_deque.pop_if_bottom(&node, no_thieves{this});
  }
  /// Any thread: takes the oldest task of this worker's deque, or null.
  [[nodiscard]] task_node* steal() { return m_deque.steal(); }
  [[nodiscard]] std::int64_t size_hint() const noexcept { return m_deque.size_hint(); }
  /// Any thread: how many tasks this worker spawned so far. Relaxed: a hint for thieves
  /// (steal_backoff.hpp); a stale count only makes one sleep more or less likely.
  [[nodiscard]] std::uint64_t spawn_count() const noexcept {
    return counters.spawned.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool maybe_has_work() const noexcept { return m_deque.maybe_nonempty(); }
  /// Any thread (a thief that found no work): asks this worker to look at its deque's depth
  /// afresh at its next work-first spawn.
  void note_thief_hungry() noexcept {
    // Relaxed: a hint with no data behind it. Read first, so that thieves spinning on an empty
    // runtime do not keep taking the line from the owner.
    if (!m_thief_hungry.load(std::memory_order_relaxed)) {
      m_thief_hungry.store(true, std::memory_order_relaxed);
    }
  }
  /// Any thread: ends this worker's sleep.
  void unpark() noexcept;
  /// Any thread: wakes this worker if it sleeps, without taking it off the sleepers: it then
  /// leaves `park` by itself to look at the timers (an earlier deadline was armed).
  void kick() noexcept;

  /// Owner: `child`, a child of the task `parent`, completed on this worker and did not count
  /// itself off `parent` (see "Deferred completion counts" in worker.cpp). Returns the task to
  /// complete next, the previously deferred parent if switching flushed its last count, or null.
  [[nodiscard]] task_node* child_completed(task_node& parent) noexcept {
    if (CORUN_UNLIKELY(m_deferred_parent != &parent)) {
      return switch_deferred_parent(parent);
    }
    ++m_deferred_count;
    return nullptr;
  }
  /// Owner: the number of completions of children of `parent` deferred on this worker, which
  /// the caller now takes over (used by `finish_spawned` to fold them into its own RMW).
  [[nodiscard]] std::int64_t take_deferred(const task_node& parent) noexcept {
    if (m_deferred_parent != &parent) {
      return 0;
    }
    m_deferred_parent = nullptr;
    return std::exchange(m_deferred_count, 0);
  }

  /// Owner: before a symmetric transfer to `next`, counts the deferred completions off their
  /// parent unless `next` is a child of it (rule a of worker.cpp). Returns the parent if it must
  /// be completed now.
  [[nodiscard]] task_node* flush_before_running(const task_node& next) noexcept {
    if (!must_flush_before_running(next)) {
      return nullptr;
    }
    return take_deferred_completion();
  }
  [[nodiscard]] task_node* take_deferred_completion() noexcept;
  /// Owner: whether `flush_before_running(next)` would flush.
  [[nodiscard]] bool must_flush_before_running(const task_node& next) const noexcept {
    return m_deferred_parent != nullptr && next.m_parent != m_deferred_parent;
  }

  /// Owner: the child a work-first spawn is running (`push_spawned_slow`), whose `spawn` has not
  /// returned yet, so its handle is not out; or null.
  [[nodiscard]] const task_node* eager_child() const noexcept { return m_eager_child; }

  [[nodiscard]] runtime_core& core() const noexcept { return m_core; }
  /// The runtime's live-task registry, or null (a copy: one load less on the join path).
  [[nodiscard]] task_tracker* tracker() const noexcept { return m_tracker; }
  [[nodiscard]] std::size_t index() const noexcept { return m_index; }
  worker_counters counters;

 private:
  void run();
  /// `push` when the ring is full: grows it, or uses the overflow list.
  CORUN_NOINLINE void push_slow(task_node& node) noexcept;
  /// `push_spawned` when the deque looks deep or full: runs `child`, just spawned by the running
  /// task, on this stack until it first suspends or completes (a work-first spawn), or pushes it.
  CORUN_NOINLINE void push_spawned_slow(task_node& child) noexcept;
  /// After a push to the deque: wakes a parked worker if nobody is searching (idle.hpp).
  void wake_one_if_needed() noexcept {
    // With the light push, only the compiler must keep the idle-state load after the store; the
    // parking side supplies the hardware barrier (asymmetric_barrier.hpp).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (const std::uint64_t state = m_idle.state_for_push();
        CORUN_UNLIKELY(m_idle.may_need_wake(state))) {
      wake_one(state);
    }
  }
  /// The rest of `idle::worker_to_wake` for `state`, and the wake-up. Out of line, and last on
  /// the push path: the push itself then makes no call that returns to it, so a spawn saves no
  /// register for one (callgrind, one worker: about 5 instructions per spawn).
  CORUN_NOINLINE void wake_one(std::uint64_t state) noexcept;
  [[nodiscard]] task_node* switch_deferred_parent(task_node& parent) noexcept;
  [[nodiscard]] task_node* next_task();
  [[nodiscard]] task_node* pop_yielded() noexcept;
  [[nodiscard]] task_node* search();
  [[nodiscard]] task_node* steal_round();
  /// Before a search: judges the last steal trip (steal_backoff.hpp) and, if it did not pay,
  /// flushes the deferred completion count and sleeps. False if the flush completed a task: the
  /// loop must look at its own work again before searching.
  [[nodiscard]] bool back_off_if_last_trip_did_not_pay();
  void stop_searching() noexcept {
    if (CORUN_UNLIKELY(m_searching)) {
      end_search();
    }
  }
  void end_search() noexcept;
  /// Step 3 of the loop: sleeps until there may be work, and leaves ready to steal.
  void park();
  void park_until_woken();
  void wait_for_unpark() noexcept;
  enum class wake_reason : std::uint8_t { unparked, kicked, timed_out };
  /// Sleeps until unparked, kicked, or `deadline` on the runtime clock (`clock_time::max()`:
  /// no deadline).
  [[nodiscard]] wake_reason wait_until(clock_time deadline) noexcept;
  void execute(task_node& node) noexcept;
  void run_from(std::coroutine_handle<> h) noexcept;
  /// Counts the deferred completions off their parent; completes the parent if they were its
  /// last.
  void flush_deferred() noexcept;

  /// The `no_thieves` predicate of this worker's pops (chase_lev_deque.hpp, "Solo pops"): true
  /// when every other worker is asleep, if the asymmetric barrier works in this process.
  struct no_thieves {
    worker* self;
    // Inline: it is asked on every pop, including the join's `pop_if_bottom`.
    [[nodiscard]] bool operator()() const noexcept {
      return self->m_solo_pops && self->m_idle.alone();
    }
  };
  /// A worker leaving its park runs this before it may steal (the thieves' side of solo pops).
  void before_stealing_again() noexcept;

  runtime_core& m_core;
  /// The runtime's idle state (a copy of the reference: `push` is inline in this header).
  idle& m_idle;
  task_tracker* const m_tracker;
  const std::size_t m_index;
  /// Solo pops are allowed (the asymmetric barrier works here).
  const bool m_solo_pops;
  chase_lev_deque<task_node*> m_deque;
  /// Runnable tasks the deque had no memory for (owner only, LIFO, not stealable).
  task_node* m_overflow = nullptr;
  /// Yielded tasks, FIFO (owner only).
  std::vector<task_node*> m_yielded;
  std::size_t m_yielded_head = 0;
  /// Completions of children of `m_deferred_parent` not yet counted off its `m_pending`.
  task_node* m_deferred_parent = nullptr;
  std::int64_t m_deferred_count = 0;
  std::uint32_t m_tick = 0;
  /// Picks left until the injection queue and the yielded tasks go first (step 1 of worker.cpp).
  std::uint32_t m_fair_countdown;
  std::uint64_t m_rng;
  /// `counters.spawned` at this worker's last steal: unchanged at the next one means the tasks
  /// it ran in between spawned nothing (`steal_round`). None yet: no value the counter reaches.
  std::uint64_t m_spawned_at_steal = std::numeric_limits<std::uint64_t>::max();
  /// Whether to sleep before stealing again, and from whom the last trip stole.
  steal_backoff m_backoff;
  worker* m_last_victim = nullptr;
  bool m_searching = false;
  /// Spawns run their child at once while this many tasks or more are queued here (0: never).
  const std::int64_t m_eager_threshold;
  /// Children being run by a work-first spawn on this stack, one inside the other.
  std::uint32_t m_eager_depth = 0;
  task_node* m_eager_child = nullptr;
  /// Futex word: `unpark_mark` once a waker has ended (or will end) this worker's sleep,
  /// `kick_mark` when an earlier timer deadline was armed while it slept until a later one.
  static constexpr std::uint32_t unpark_mark = 1;
  static constexpr std::uint32_t kick_mark = 2;
  alignas(cache_line) std::atomic<std::uint32_t> m_unparked{0};
  /// Set by a thief that found nothing to steal anywhere for a whole round; the owner's next
  /// work-first spawn clears it and reads its deque's depth afresh (see "Work-first spawns"
  /// in worker.cpp). On its own line: thieves write it only when they go hungry, while the
  /// owner reads it on every work-first spawn.
  alignas(cache_line) std::atomic<bool> m_thief_hungry{false};
  std::thread m_thread;
};

}  // namespace corun::detail
