/// \file
/// `corun::runtime`: the pool of worker threads that runs tasks.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"

#include "corun/detail/owned_call.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/timer_entry.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace corun {

/// A failure nobody observed, as handed to `runtime_options::on_unhandled_exception`.
struct task_failure {
  std::uint64_t task_id = 0;
  std::string task_name{};
  std::exception_ptr error{};
};

/// Called (on whatever thread noticed it) for the failure of a root task whose handle was
/// dropped without the failure being observed, or of a task whose parent had already completed.
/// Must not throw; an exception escaping it terminates the program.
using unhandled_exception_handler = std::function<void(const task_failure&)>;

/// A handler that reports the failure on stderr and then calls `std::terminate`.
[[nodiscard]] unhandled_exception_handler terminate_on_unhandled_exception();

/// Settings of a runtime. An aggregate: `runtime rt({.workers = 4})`.
struct runtime_options {
  /// Worker threads; 0 means one per hardware thread.
  std::size_t workers = 0;
  /// Worker threads are named `<name>-w<N>` (the OS keeps the first 15 characters).
  std::string name = "corun";
  /// Where unobserved failures go; empty means "print them on stderr with the task's name and
  /// id". See `unhandled_exception_handler`.
  unhandled_exception_handler on_unhandled_exception{};
  /// Recycle coroutine frames through per-thread caches on the workers. Switching it off makes
  /// every frame a plain `::operator new` (for measurement).
  bool recycle_frames = true;
  /// Keep a registry of live tasks for `runtime::dump_tasks`. Costs two short locks and a small
  /// allocation per task, so it is off by default; switch it on to debug hangs.
  bool track_tasks = false;
  /// Work-first spawns: while a worker has this many tasks or more queued, the free
  /// `corun::spawn` starts the new child at once on the spawning thread and runs it until it
  /// first suspends or completes, before `spawn` returns, instead of queuing it (as Cilk's
  /// spawn, or Python's eager tasks). The queued tasks are enough for idle workers to steal;
  /// the child run at once is usually done before its handle is awaited, which then costs no
  /// suspension, and a spawn storm keeps a bounded number of frames alive, reused while they
  /// are in cache. 0 switches it off. A worker that finds nothing to steal anywhere makes the
  /// others look at their queues again, so that their next spawns queue for it rather than run
  /// at once. `task_group::spawn` and `runtime::spawn` always queue. So a child must not block its
  /// thread until the spawner gets past the `spawn`: a spawner must not hold a lock the child may
  /// take (a `std::mutex` would deadlock; an `async_mutex` only makes the child wait), and a child
  /// that spins or blocks on a flag the spawner sets later never returns (a child that `co_await`s
  /// it is fine).
  std::size_t eager_spawn_threshold = 12;
  /// Run the runtime's clock in virtual time (for tests): it starts at the real time and moves
  /// only by `runtime::advance`, or by a jump: when every worker is idle (no task running or
  /// queued anywhere) and timers are pending, it jumps to the earliest deadline and fires what
  /// came due. So `sleep_for(1h)` returns at once with `now()` an hour later.
  ///
  /// When it jumps, precisely: when every *worker* is idle, whatever the suspended tasks wait
  /// for, not (as API.md section 4 puts it) when every task is blocked on the clock. A task
  /// waiting for something only another thread will deliver (an `async_event` that thread
  /// sets, a `channel` it feeds with `try_send`, an `async_semaphore` it releases) does not
  /// hold time back: the runtime cannot tell whether that thread will ever deliver, and
  /// waiting for it would stall every test whose foreign thread waits in turn for the clock.
  /// So a `timeout` around such a wait expires at once unless the other thread delivers first,
  /// and what arrives from outside while time jumps is not ordered with the jump.
  ///
  /// What is deterministic, for tasks that deal only with the clock and with each other (not
  /// with other threads), whose decisions do not depend on which of the tasks woken at the
  /// same instant runs first:
  ///  - Instants: every wake-up happens at the same virtual time in every run, and the instants
  ///    come in order: time moves only once every task woken at the current instant has
  ///    suspended again. Each instant thus wakes the same set of tasks every run.
  ///  - Ties: timers due at the same instant fire in arming order when one arming happened
  ///    before the other (one task armed both, or armed one before it spawned the task that
  ///    armed the other), so a `timeout`'s deadline beats a sleep inside it that ends at the same
  ///    instant. Timers armed concurrently on different workers fire in no fixed order.
  ///  - Order within an instant: with one worker, the whole sequence of wake-ups is the same
  ///    every run; with more, the tasks woken at one instant run in parallel, in no fixed order.
  bool virtual_time = false;
};

/// Counters of a runtime since it started; each is a sum of per-worker relaxed counters, so a
/// snapshot taken while tasks run is approximate.
struct runtime_stats {
  std::size_t workers = 0;
  /// Tasks made runnable for the first time (spawns and roots).
  std::uint64_t spawned = 0;
  /// Tasks that completed.
  std::uint64_t completed = 0;
  /// Tasks taken from another worker's queue.
  std::uint64_t steals = 0;
  /// Times a worker went to sleep for lack of work.
  std::uint64_t parks = 0;
  /// Tasks handed in from threads that are not workers of this runtime.
  std::uint64_t injected = 0;
  /// Coroutine frames alive in the whole process (all runtimes, all threads).
  std::int64_t live_frames = 0;
};

namespace detail {
void spawn_root(runtime_core& core, task_node& node, std::coroutine_handle<> frame);
}  // namespace detail

/// A pool of worker threads running corun tasks with work stealing.
///
/// Thread-safety: `spawn`, `block_on`, `workers` and `stats` may be called from any thread
/// (`block_on` only from threads that are not corun workers).
///
/// Destruction: requests cancellation of every task, waits until all of them (and all their
/// children) completed, then joins the workers. Frames of completed tasks stay alive while a
/// handle refers to them. Destroying a runtime from one of its own tasks is an error.
class runtime {
 public:
  explicit runtime(runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Starts `t` as a root task owned by the runtime. Callable from any thread.
  template <class T>
  join_handle<T> spawn(task<T> t, spawn_options options = {}) {
    if (!t.valid()) {
      throw std::logic_error("corun: runtime::spawn of an empty or moved-from corun::task");
    }
    auto frame = t.release();
    detail::frame_guard guard(frame);
    if (!options.name.empty()) {
      detail::name_task(frame.promise(), std::move(options.name));
    }
    detail::spawn_root(*m_core, frame.promise(), frame);  // throws only before publishing
    guard.dismiss();
    return join_handle<T>{&frame.promise()};
  }

  /// Starts `fn(args...)` as a root task; the callable and arguments live as long as the task.
  template <class F, class... Args>
    requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(F&& fn, Args&&... args) {
    return spawn(detail::call_owned(std::forward<F>(fn), std::forward<Args>(args)...));
  }

  /// Runs `t` as a root task and blocks the calling thread until it completes; returns its value
  /// or rethrows its exception (`task_cancelled` if it ended cancelled). Throws
  /// `std::logic_error` when called on a corun worker thread.
  template <class T>
  T block_on(task<T> t) {
    if (detail::this_thread_state().worker != nullptr) {
      throw std::logic_error(
          "corun: block_on called on a corun worker thread; co_await the task instead");
    }
    return spawn(std::move(t)).get();
  }

  /// Number of worker threads.
  [[nodiscard]] std::size_t workers() const noexcept;
  /// The `name` option.
  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] runtime_stats stats() const;
  /// Prints the live task tree: each task with its id, name, what it waits for (and which task
  /// it awaits, or starts in `task_group::start`), indented under its parent. A task joining a
  /// group (`task_group::join`, `when_all`, `when_any`, `with_task_group`) shows
  /// `joining a task group`. The members of a group (`task_group`, `when_all`,
  /// `when_any`) are listed under a `group #G` line below the group's owner, each marked
  /// `(in group #G)`. Needs `runtime_options::track_tasks`; otherwise it says so. The tree is
  /// copied one registry shard at a time, so it is a racy snapshot (a task spawned meanwhile
  /// may be missing or shown without its parent), and a worker that spawns or completes a task
  /// meanwhile waits at most for the copy of one shard.
  void dump_tasks(std::ostream& out) const;
  /// The same as JSON, for tools: `{"untracked":N,"tasks":[{"id","name","parent","group",
  /// "in_group","state","awaiting"}],"groups":[{"id","owner","members":[ids]}]}` (`parent`,
  /// `group`, `owner` and `awaiting` null when none). Group ids are the ones the text shows.
  void dump_tasks_json(std::ostream& out) const;

  /// The runtime's clock (include/corun/time.hpp). Callable from any thread.
  [[nodiscard]] detail::clock_time now() const noexcept;
  /// Virtual time only: moves the clock forward by `d` and fires every timer that came due,
  /// from the calling thread. `std::logic_error` on a runtime with real time. Callable from any
  /// thread, also from a task.
  void advance(std::chrono::nanoseconds d);

 private:
  std::unique_ptr<detail::runtime_core> m_core;
};

}  // namespace corun
