/// \file
/// `corun::merge`: one generator interleaving the values of several, each driven concurrently.
#pragma once

#include "corun/async_generator.hpp"
#include "corun/cancelled.hpp"
#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"

#include "corun/detail/merge_queue.hpp"
#include "corun/detail/task_node.hpp"

#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace corun {

namespace detail {

/// What the consumer of a merge sees when the child driving a source was cancelled before the
/// source ended: `task_cancelled` for that child (or `std::bad_alloc` without memory for it).
[[nodiscard]] inline std::exception_ptr merge_source_cancelled(const cancelled& reason) noexcept {
  try {
    const task_node& self = *this_thread_state().current;
    throw task_cancelled(self.id(), self.name(), reason.describe());
  } catch (...) {
    return std::current_exception();
  }
}

/// The child that drives one source of a merge: hands each of its values to the queue until the
/// source ends, fails, or the merge ends. Never fails itself: a failure of the source, or the
/// child's own cancellation (the merge ends, or its consumer's task was cancelled), is reported
/// to the queue instead. The source is destroyed before the child reports itself finished.
template <class T>
task<void> merge_pump(std::shared_ptr<merge_queue<T>> queue, async_generator<T> source) {
  std::exception_ptr error;
  bool interrupted = false;
  {
    async_generator<T> owned = std::move(source);
    try {
      while (std::optional<T> item = co_await owned.next()) {
        if (!co_await queue->put(*item)) {
          break;  // the merge ended
        }
      }
    } catch (const cancelled& reason) {
      error = merge_source_cancelled(reason);
      interrupted = true;
    } catch (...) {
      error = std::current_exception();
    }
  }
  queue->finish(std::move(error), interrupted);
}

/// The children of a merge, driving its sources, and their queue. `stop()` ends them: it
/// cancels the children (those inside their source see `cancelled`) and closes the queue (those
/// waiting to hand over a value stop). The destructor stops too: it runs when the merged
/// generator is destroyed early.
template <class T>
class merge_pumps {
  struct pump {
    join_handle<void> handle;
    /// The child's node, to cancel it without allocating (`request_cancel_nothrow`).
    task_node* node;
  };

 public:
  explicit merge_pumps(std::shared_ptr<merge_queue<T>> queue) noexcept
      : m_queue(std::move(queue)) {}
  merge_pumps(const merge_pumps&) = delete;
  merge_pumps& operator=(const merge_pumps&) = delete;
  ~merge_pumps() { stop(); }

  /// Makes room for `count` children, so that `spawn` cannot fail after spawning.
  void reserve(std::size_t count) { m_pumps.reserve(count); }

  /// Spawns a child driving `source`, as a child of the current task. After `reserve`.
  void spawn(async_generator<T> source) {
    task_node& parent = current_task_for("corun::merge");
    auto frame = merge_pump(m_queue, std::move(source)).release();
    spawn_child(frame.promise(), frame, parent);
    m_pumps.push_back(pump{join_handle<void>{&frame.promise()}, &frame.promise()});
  }

  /// Ends every child (see the class comment). Idempotent.
  void stop() noexcept {
    if (m_stopped) {
      return;
    }
    m_stopped = true;
    for (pump& p : m_pumps) {
      if (!p.handle.done()) {
        p.node->request_cancel_nothrow("corun::merge ended");
      }
    }
    m_queue->close();
  }

  /// Waits until every child completed, even if the awaiting task is cancelled: no child
  /// outlives the merge. After `stop()` (or once every source ended).
  [[nodiscard]] task<void> join() {
    for (pump& p : m_pumps) {
      co_await p.handle.wait_uncancellable();  // never throws: the children never fail
    }
  }

 private:
  std::shared_ptr<merge_queue<T>> m_queue;
  std::vector<pump> m_pumps;
  bool m_stopped = false;
};

}  // namespace detail

/// Interleaves the values of `sources` as they become available: each source is driven
/// concurrently by a child task of its own, and the merged generator yields the values in the
/// order they were handed over. Every value of every source comes out exactly once, and the
/// values of one source keep their order. The merged generator ends when every source has ended
/// (an empty vector gives an empty generator).
///
/// Sources run ahead of the consumer by at most one value each: a child hands its value over
/// directly and waits until the consumer takes it before asking its source for the next one.
///
/// Structure. The children start at the first `next()` and are children of the task calling it
/// (its `spawn`s): they run concurrently with it, are cancelled with it, and that task does not
/// complete before they have. When the merge ends — every source ended, a source failed, or
/// `cancelled` reached the merged body — the remaining children are cancelled and awaited
/// before `next()` returns or throws. When the merged generator is destroyed early (suspended
/// at a value), the children are cancelled at once and each destroys its source as it ends;
/// a destructor cannot wait, so they finish concurrently, and the consuming task awaits them
/// when it completes (do not let the sources refer to objects that die before that task ends).
///
/// Failures. The first exception thrown by a source ends the merge: the other sources are
/// cancelled and awaited, then `next()` rethrows it (later failures of other sources are
/// dropped). A child cancelled before its source ended ends the merge too, since the source did
/// not end: the consumer sees its own `cancelled` if it is cancelled as well (the usual case:
/// the children are its own), else `task_cancelled` (the generator was handed to a task that
/// is not cancelled, while the task that started it was).
///
/// Cancellation: `next()` is a suspension point of the consuming task (see `async_generator`),
/// and so is the merged body's wait for a value: a consumer cancelled while it waits sees
/// `cancelled` from `next()`, after the sources were cancelled and awaited. A value handed over
/// as the cancel arrives is still returned (completion beats cancellation). A consumer cancelled
/// between two `next()`s gets `cancelled` from the next one at once, without resuming the merged
/// body; its children were cancelled with it and end as described above for early destruction.
///
/// `T`: as for `async_generator`; values are moved from the sources to the consumer.
template <class T>
async_generator<T> merge(std::vector<async_generator<T>> sources) {
  auto queue = std::make_shared<detail::merge_queue<T>>(sources.size());
  detail::merge_pumps<T> pumps(queue);
  std::exception_ptr error;
  try {
    pumps.reserve(sources.size());
    for (async_generator<T>& source : sources) {
      pumps.spawn(std::move(source));
    }
    while (std::optional<T> item = co_await queue->take()) {
      co_yield std::move(*item);
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    pumps.stop();  // else every source ended: the children are completing
  }
  co_await pumps.join();
  if (error) {
    std::rethrow_exception(std::move(error));
  }
}

/// `merge` of generators given one by one: `merge(std::move(a), std::move(b), make_c())`.
template <class T, class... Rest>
  requires(std::same_as<Rest, async_generator<T>> && ...)
async_generator<T> merge(async_generator<T> first, Rest... rest) {
  std::vector<async_generator<T>> sources;
  sources.reserve(1 + sizeof...(Rest));
  sources.push_back(std::move(first));
  (sources.push_back(std::move(rest)), ...);
  return merge(std::move(sources));
}

}  // namespace corun
