// Spawn, completion, join and references of a task. The protocols are described in
// include/corun/detail/task_node.hpp; the numbered steps below refer to `complete`.
//
// Completion of a task whose body and children are all done (`complete`):
//  1. Settle the outcome: classify the body's exception (`cancelled` or a failure) and fold in
//     the failures adopted from children nobody observed; close the task to late reports.
//  2. If it failed: with no handle left, report the failure to the parent now (the parent is
//     still open, since it waits for this task); otherwise keep a reference on the parent (and
//     the root) for a late report when the last handle goes.
//  3. Publish DONE and drop the body's reference in one RMW; pick up the registered joiner. The
//     task may be destroyed right after this step, so everything needed later was read before.
//  4. Tell the parent scope, unless the parent itself is the joiner (task_node.hpp). A task
//     parent whose last child this was is completed next, in the same loop (no recursion).
//  5. Of everybody to resume, the first is the target of the symmetric transfer; the others are
//     pushed on this worker's deque.
#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"

#include "corun/detail/task_node.hpp"

#include "scheduler/futex.hpp"
#include "scheduler/root_scope.hpp"
#include "scheduler/runtime_core.hpp"
#include "scheduler/task_extras.hpp"
#include "scheduler/worker.hpp"
#include "trace/task_tracker.hpp"

#include <cassert>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace corun::detail {

namespace {

worker& current_worker() noexcept { return *static_cast<worker*>(tl_thread.worker); }

/// A task's state word while a joiner runs it inline on its own stack with no cancel wake-up
/// registered: the body's and the joiner's references, WAITING and INLINE. Nobody else can
/// change the word in this state, so the completer publishes DONE with a plain store.
constexpr std::uint32_t inline_joined =
    2 * task_node::one_ref | task_node::waiting_bit | task_node::inline_bit;

/// Whom to resume after a completion: the first goes by symmetric transfer, the rest are queued.
class resume_list {
 public:
  void add(resumption r) {
    if (m_first.node == nullptr) {
      m_first = r;
      return;
    }
    r.node->m_resume = r.handle;
    current_worker().push(*r.node);
  }
  [[nodiscard]] task_node* target() const noexcept { return m_first.node; }
  [[nodiscard]] std::coroutine_handle<> transfer() const noexcept {
    if (m_first.node == nullptr) {
      return std::noop_coroutine();
    }
    return transfer_to(m_first.node, m_first.handle);
  }

 private:
  resumption m_first;
};

std::string describe_task(task_node& node) { return "corun: " + task_label(node); }

/// Step 1 when the body threw or a child left extras (adopted failures, deferred reports).
CORUN_NOINLINE void settle_outcome_slow(task_node& node, task_extras* extras) {
  if (node.m_threw_cancelled) {
    node.m_outcome = task_outcome::cancelled;
  } else if (node.m_error) {
    try {
      std::rethrow_exception(node.m_error);
    } catch (const cancelled&) {
      node.m_outcome = task_outcome::cancelled;
    } catch (...) {
      node.m_outcome = task_outcome::error;
    }
  } else {
    node.m_outcome = task_outcome::value;
  }
  if (extras == nullptr) {
    return;  // no child adopted a failure into us or holds a deferred report on us
  }
  std::vector<std::exception_ptr> adopted;
  {
    const std::lock_guard lock(extras->lock);
    extras->closed = true;
    adopted.swap(extras->adopted);
  }
  if (adopted.empty()) {
    return;
  }
  // A cancellation caused by a child's failure is not itself a failure: only our own error, if
  // any, joins the children's.
  if (node.m_outcome == task_outcome::error) {
    try {
      adopted.insert(adopted.begin(), node.m_error);
    } catch (...) {
      // No memory to group them: keep our own error, report the children's as unhandled.
      for (const std::exception_ptr& error : adopted) {
        report_unhandled(node, error);
      }
      return;
    }
  }
  node.m_outcome = task_outcome::error;
  if (adopted.size() == 1) {
    node.m_error = adopted.front();
    return;
  }
  try {
    const std::size_t count = adopted.size();
    node.m_error = std::make_exception_ptr(exception_group(
        describe_task(node) + " failed with " + std::to_string(count) + " errors", adopted));
  } catch (...) {
    // No memory for the group: fail with the first error, report the others as unhandled.
    node.m_error = adopted.front();
    for (std::size_t i = 1; i < adopted.size(); ++i) {
      report_unhandled(node, adopted[i]);
    }
  }
}

/// Step 1.
void settle_outcome(task_node& node) {
  // Acquire: pairs with the release CAS of `ensure_extras` (children that adopted a failure
  // into us or hold a deferred report on us created them before their completion).
  task_extras* extras = node.m_extras.load(std::memory_order_acquire);
  if (CORUN_LIKELY(!node.m_error && extras == nullptr)) {
    node.m_outcome = task_outcome::value;
    return;
  }
  settle_outcome_slow(node, extras);
}

/// Reports a failure nobody observed and drops the references a failed task held.
CORUN_NOINLINE void release_held_scopes(task_node& node) noexcept {
  if (node.m_outcome == task_outcome::error && !node.m_observed.load(std::memory_order_relaxed)) {
    if (node.m_holds_parent_ref) {
      node.m_parent->adopt_failure(node.m_error, node);
    } else {
      report_unhandled(node, node.m_error);
    }
  }
  if (node.m_holds_parent_ref) {
    node.m_parent->release();
  }
  node.m_held_root->release();
}

void dispose(task_node& node) noexcept {
  if (CORUN_UNLIKELY(node.m_holds_root)) {
    release_held_scopes(node);
  }
  frame_of(node).destroy();
}

void wake_blocked_thread(std::atomic<std::uint32_t>* word) noexcept {
  // Release: the waiting thread then sees the outcome. The futex call may run after the waiter
  // returned; its word is on a live thread's stack, so the worst case is a spurious wake-up.
  word->store(1, std::memory_order_release);
  futex_wake(word, 1);
}

std::coroutine_handle<> complete(task_node* node) noexcept {
  resume_list to_resume;
  worker& self = current_worker();
  while (node != nullptr) {
    settle_outcome(*node);  // step 1
    scope_node* const parent = node->m_parent;
    const bool failed = node->m_outcome == task_outcome::error;
    if (failed && parent->kind() == scope_kind::group) {
      // Fail-fast: the siblings learn who failed and why (the group's own request, made when
      // it is told below, then finds this one already published).
      try {
        parent->request_cancel(describe_exception(node->m_error), cancel_origin::sibling_failed,
                               task_label(*node));
      } catch (...) {
        parent->request_cancel_nothrow("a sibling task failed", cancel_origin::sibling_failed);
      }
    }
    if (failed) {  // step 2
      // Acquire: a handle released by another thread is really gone.
      if (node->m_state.load(std::memory_order_acquire) == task_node::one_ref) {
        node->m_observed.store(true, std::memory_order_relaxed);
        parent->adopt_failure(node->m_error, *node);
      } else {
        root_scope& root = node->m_rt->root();
        root.retain_for_report();  // a counter: cannot fail
        node->m_held_root = &root;
        node->m_holds_root = true;
        try {
          parent->retain_for_report();
          node->m_holds_parent_ref = true;
        } catch (...) {
          // No memory to keep the parent ready for a late report: if nobody observes the
          // failure, it goes to the runtime's unhandled-failure handler instead (dispose).
        }
      }
    }
    worker_counters::bump(self.counters.completed);
    if (task_tracker* tracker = self.tracker(); CORUN_UNLIKELY(tracker != nullptr)) {
      tracker->untrack(*node);  // before DONE: a dump may still be reading this task
    }
    // Step 3. Only the body's reference and no flags (every handle was dropped): nobody else
    // holds the task, so nobody can read or change the word (a new reference needs an existing
    // one); it is disposed of below, without an RMW. The acquire pairs with the release of the
    // last handle, so its holder's uses happen before the disposal.
    // Two references, WAITING and INLINE: the body's and the one of a joiner that runs us on
    // its own stack and registered no cancel wake-up, so nobody else can change the word until
    // we publish DONE: a plain store.
    // Otherwise acq_rel: release publishes the outcome and result to joiners and handle holders;
    // acquire makes a joiner's registration (m_waiter) visible.
    std::uint32_t prev = node->m_state.load(std::memory_order_acquire);
    if (prev == task_node::one_ref) {
      // Alone: nothing to publish.
    } else if (prev == 2 * task_node::one_ref && node == self.eager_child()) {
      // The body's reference and the handle of a work-first spawn that has not returned: as in
      // `complete_childless`, nobody else can change the word.
      node->m_state.store(task_node::one_ref | task_node::done_bit, std::memory_order_release);
    } else if (prev == inline_joined) {
      node->m_state.store(inline_joined - task_node::one_ref + task_node::done_bit,
                          std::memory_order_release);
    } else {
      prev = node->m_state.fetch_add(task_node::done_bit - task_node::one_ref,
                                     std::memory_order_acq_rel);
    }
    bool parent_joins = false;
    if ((prev & task_node::waiting_bit) != 0) {
      const join_waiter waiter = node->m_waiter;
      if (waiter.node != nullptr) {
        parent_joins = waiter.node == parent;
        to_resume.add(resumption{waiter.node, waiter.handle});
      } else {
        wake_blocked_thread(waiter.wake_word);
      }
    }
    if ((prev & ~task_node::flag_bits) == task_node::one_ref) {
      dispose(*node);
    } else if (CORUN_UNLIKELY((prev & task_node::done_waiters_bit) != 0)) {
      // The reference that came with the bit kept the task alive until here; the drain drops
      // it, so `node` is not touched afterwards.
      drain_done_waiters(*node);
    }
    // Step 4 (skipped when the parent is the joiner: see joined_while_waiting). A task parent
    // is told through this worker's deferred count (worker.cpp).
    node = nullptr;
    if (!parent_joins) {
      if (parent->kind() == scope_kind::task) {
        node = self.child_completed(*static_cast<task_node*>(parent));
      } else if (const resumption next = parent->child_completed(failed); next.node != nullptr) {
        if (next.handle) {
          to_resume.add(next);
        } else {
          node = next.node;
        }
      }
    }
    if (node == nullptr && to_resume.target() != nullptr) {
      node = self.flush_before_running(*to_resume.target());
    }
  }
  return to_resume.transfer();  // step 5
}

}  // namespace

std::coroutine_handle<> complete_task(task_node& node) noexcept { return complete(&node); }

namespace {

/// The rare steps of preparing a spawned task, after its fields are set: tracking it, and
/// sharing the task-local values of `spawner` (null: none).
void note_spawned(task_node& child, runtime_core& rt, const task_node* spawner) noexcept {
  if (task_tracker* tracker = rt.tracker(); CORUN_UNLIKELY(tracker != nullptr)) {
    tracker->track(child);
  }
  if (CORUN_UNLIKELY(spawner != nullptr && spawner->m_locals != nullptr)) {
    child.m_locals = share_task_locals(spawner->m_locals);
  }
}

}  // namespace

void init_spawned(task_node& child, std::coroutine_handle<> frame, scope_node& parent,
                  runtime_core& rt, std::uint64_t epoch_seen) noexcept {
  assert(frame_of(child).address() == frame.address());  // frame_of's layout assumption
  child.begin_spawned(frame, parent, parent.kind() == scope_kind::task, rt, epoch_seen);
  note_spawned(child, rt, tl_thread.current);
}

void name_task(task_node& child, std::string name) { ensure_extras(child).name = std::move(name); }

namespace {

/// The rest of `spawn_child`, once the child's fields are set: counts it and queues it (or runs
/// it at once).
void queue_child(task_node& child, task_node& parent) noexcept {
  ++parent.m_spawned;
  worker& self = current_worker();
  worker_counters::bump(self.counters.spawned);
  self.push_spawned(child);
}

/// `spawn_child` when the runtime tracks tasks or the parent has task-local values.
CORUN_NOINLINE void queue_noted_child(task_node& child, task_node& parent) noexcept {
  note_spawned(child, *parent.m_rt, &parent);
  queue_child(child, parent);
}

}  // namespace

// `init_spawned`'s steps, with the rare ones (tracking, task locals) out of line and last: the
// common path then makes no call that returns to it, so it saves no register.
void spawn_child(task_node& child, std::coroutine_handle<> frame, task_node& parent) noexcept {
  assert(frame_of(child).address() == frame.address());  // frame_of's layout assumption
  runtime_core& rt = *parent.m_rt;
  // A task's own spawns: its parent is the running task.
  child.begin_spawned(frame, parent, true, rt, parent.m_epoch_seen.load(std::memory_order_relaxed));
  if (CORUN_UNLIKELY(rt.tracker() != nullptr || parent.m_locals != nullptr)) {
    queue_noted_child(child, parent);
    return;
  }
  queue_child(child, parent);
}

namespace {

/// `complete_childless` for a task whose parent runs it inline in a join and waits (state:
/// two references, WAITING and INLINE): the parent is resumed by symmetric transfer, so step 4
/// is skipped. When the joiner is not the parent, or a deferred count must be flushed before
/// running the parent (worker.cpp, rule a), the general `complete` runs instead. The parent's
/// owner count is this thread's (its body waits in the join, on this stack): the task is taken
/// off it here, and the parent's `await_resume`, told by `straight_to_result`, skips the checks
/// of a join that suspended, none of which applies (no cancel wake-up was registered, nothing
/// was noted for dumps without a tracker).
CORUN_NOINLINE std::coroutine_handle<> complete_inline_joined(task_node& node, task_node& parent,
                                                              worker& self) noexcept {
  const join_waiter waiter = node.m_waiter;
  if (waiter.node != &parent || self.must_flush_before_running(parent)) {
    return complete(&node);
  }
  node.m_outcome = task_outcome::value;  // step 1
  --parent.m_spawned;                    // joined_while_waiting
  waiter.wake->straight_to_result = true;
  // Nobody else can change the word until DONE is published: a plain store, as in `complete`.
  node.m_state.store(inline_joined - task_node::one_ref + task_node::done_bit,
                     std::memory_order_release);
  worker_counters::bump(self.counters.completed);
  return transfer_to(&parent, waiter.handle);  // step 5
}

/// `finish_spawned`'s simple cases that call out: the task alone (every handle dropped), or
/// held by one handle and nobody waiting, when the parent is then told through this worker's
/// deferred count (worker.cpp). Anything else goes to the general `complete`.
CORUN_NOINLINE std::coroutine_handle<> complete_simple_told(task_node& node, task_node& parent,
                                                            worker& self,
                                                            std::uint32_t state) noexcept {
  if (state == task_node::one_ref) {
    worker_counters::bump(self.counters.completed);
    dispose(node);
  } else if (state == 2 * task_node::one_ref &&
             node.m_state.compare_exchange_strong(state, task_node::one_ref | task_node::done_bit,
                                                  std::memory_order_acq_rel,
                                                  std::memory_order_relaxed)) {
    // A failed CAS (a joiner registered meanwhile) changed nothing.
    worker_counters::bump(self.counters.completed);
  } else {
    return complete(&node);
  }
  // Step 4: the parent, if this was its last child, is completed by the general path.
  task_node* next = self.child_completed(parent);
  return next == nullptr ? std::noop_coroutine() : complete(next);
}

/// The completion of a childless task takes a short path when the body returned, with no extras,
/// a task for parent and no task tracking, and either nobody waits for the task yet, or nobody
/// holds it any more, or its parent runs it inline in a join. The steps are those of `complete`
/// with every branch that cannot apply left out, each case checked before the state word
/// changes. The two commonest cases (fib's inline joins, the work-first runs of skynet and
/// nqueens) end here or in a tail call, and everything that calls out is in the functions
/// above: this function then saves no register (callgrind, one worker: about 6 instructions
/// less per task than with every case in one body).
std::coroutine_handle<> complete_childless(task_node& node) noexcept {
  worker& self = current_worker();
  // Acquire: as in settle_outcome (a childless task has no adopted failures, but a name given
  // at spawn time lives in the extras).
  if (node.m_error || node.m_extras.load(std::memory_order_acquire) != nullptr ||
      !node.m_parent_is_task || self.tracker() != nullptr) {
    return complete(&node);
  }
  auto& parent = *static_cast<task_node*>(node.m_parent);
  // Step 3, with the orderings `complete` gives each case.
  const std::uint32_t state = node.m_state.load(std::memory_order_acquire);
  if (state == inline_joined) {
    return complete_inline_joined(node, parent, self);
  }
  node.m_outcome = task_outcome::value;  // step 1 (unpublished until the state word changes)
  if (state == 2 * task_node::one_ref && &node == self.eager_child()) {
    // Run by a work-first spawn that has not returned: its handle is not out yet, so the body
    // and that handle hold the only references, and nobody else can change the word (a change
    // needs a reference, or a registered joiner, which needs the handle). Release: as in
    // `complete_simple_told`, for a handle later moved to another thread.
    node.m_state.store(task_node::one_ref | task_node::done_bit, std::memory_order_release);
    worker_counters::bump(self.counters.completed);
    // Step 4: the parent is the spawner, whose body waits in that `spawn` on this thread, so
    // it cannot be done; as for a child it joined inline (`joined_while_waiting`), it forgets
    // the child on its owner count, which only this thread touches now. No deferred count: a
    // parent whose children all ran at once ends by the simple path, without an RMW or a flush.
    --parent.m_spawned;
    return std::noop_coroutine();
  }
  return complete_simple_told(node, parent, self, state);
}

/// `finish_spawned` for a task that has children left to count.
CORUN_NOINLINE std::coroutine_handle<> finish_with_children(task_node& node) noexcept {
  // Completions of our children deferred on this worker are folded in (worker.cpp, rule d).
  const std::int64_t deferred = current_worker().take_deferred(node);
  if (deferred == node.m_spawned) {
    // Every child completed on this thread and was counted here, none on `m_pending`, and
    // none is left to: nobody else touches it, so no RMW (our own children's writes are ours).
    return complete(&node);
  }
  leave_stack(node);  // our joiner may wait long for our children now
  if (CORUN_UNLIKELY(node.m_rt->tracker() != nullptr)) {
    // Relaxed: read racily by dumps. Before the RMW: afterwards a child may complete us.
    node.m_wait.store(static_cast<std::uint8_t>(wait_kind::children), std::memory_order_relaxed);
  }
  const std::int64_t delta = node.m_spawned - task_node::pending_bias - deferred;
  // acq_rel: release publishes the body's writes to whichever child completes last (it then
  // runs `complete`); acquire makes the children's writes visible if we are last.
  if (node.m_pending.fetch_add(delta, std::memory_order_acq_rel) + delta != 0) {
    return std::noop_coroutine();
  }
  return complete(&node);
}

}  // namespace

std::coroutine_handle<> finish_spawned(task_node& node) noexcept {
  if (node.m_spawned == 0) {
    // No child is left to count: none was spawned, or each ran at once or was joined inline and
    // was taken off the count, without touching m_pending. So nobody else touches it: skip the
    // RMW. (Only a task's own body spawns its children; spawns into it from elsewhere go through
    // group scopes.)
    return complete_childless(node);
  }
  return finish_with_children(node);
}

namespace {

// Exactly two references and no flags: only the body and our handle exist. If the task is also
// at the bottom of our deque, nobody else can run it: run it now, inline (as a oneTBB wait runs
// local tasks). References are added only by holders of one (handle copies) or by the task's
// own live children (a failing child's `retain_for_report`). With no unabsorbed children
// (`m_spawned == 0`, the common case: a task that never ran) nobody can touch the word while we
// hold the task, so a plain store publishes WAITING; otherwise an RMW, so a concurrent add_ref
// is not overwritten (found by the Relacy model, tests/model/join_state_model.cpp). Our relaxed
// load sees every earlier reference: the task was pushed on our deque by this thread. No cancel
// wake-up is registered while the task runs on our stack (INLINE, see leave_stack).
bool try_join_inline(worker& self, task_node& node, task_node* waiter, std::coroutine_handle<> h,
                     join_wake& wake) noexcept {
  if (node.m_state.load(std::memory_order_relaxed) != 2 * task_node::one_ref ||
      !self.pop_if_bottom(node)) {
    return false;
  }
  wake.registered = true;
  node.m_waiter = join_waiter::task(waiter, h, &wake);
  constexpr std::uint32_t inline_flags = task_node::waiting_bit | task_node::inline_bit;
  if (node.m_spawned == 0) {
    node.m_state.store(inline_joined, std::memory_order_relaxed);
  } else {
    // Relaxed: the task is not running and cannot be DONE; its completion reads m_waiter on
    // this thread or after a queue hand-off, which orders it.
    node.m_state.fetch_or(inline_flags, std::memory_order_relaxed);
  }
  return true;
}

/// `join_suspend` when the task does not run inline at once (or the runtime tracks tasks): out
/// of line, so the inline join, fib's every call, does not pay for this frame.
CORUN_NOINLINE std::coroutine_handle<> join_suspend_slow(worker& self, task_node& node,
                                                         task_node* waiter,
                                                         std::coroutine_handle<> h,
                                                         join_wake& wake) noexcept {
  if (self.tracker() != nullptr) {
    task_tracker::note_wait(*waiter, wait_kind::join, &node);
    if (try_join_inline(self, node, waiter, h, wake)) {
      return transfer_to(&node, node.m_resume);
    }
  }
  leave_stack(*waiter);
  wake.registered = true;
  node.m_waiter = join_waiter::task(waiter, h, &wake);
  // A cancel request must wake us (cancel_registry.cpp), even when `node` is our own child that
  // will be cancelled with us: it may ignore the request for a while, and we should not have to
  // wait for it to see our own cancellation (asyncio's `await task` behaves the same).
  std::uint32_t flags = task_node::waiting_bit;
  if (wake.wake_on_cancel) {
    wake.arm(&node, waiter);
    if (!register_cancel(wake)) {
      wake.registered = false;
      return h;  // already cancelled: await_resume throws `cancelled` unless `node` is done
    }
    flags |= task_node::cancellable_bit;
  }
  // Relaxed: the CAS below re-reads it.
  std::uint32_t state = node.m_state.load(std::memory_order_relaxed);
  for (;;) {
    if ((state & (task_node::done_bit | task_node::cancel_seen_bit)) != 0) {
      // Completed meanwhile (continue with the result) or our cancel callback fired before we
      // were waiting (continue and see `cancelled`); await_resume removes the registration.
      wake.registered = false;
      return h;
    }
    // acq_rel: release publishes m_waiter to the completer (and to the cancel callback);
    // acquire (also on failure) makes the result visible if the task completed meanwhile.
    if (node.m_state.compare_exchange_weak(state, state | flags, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
      return std::noop_coroutine();
    }
  }
}

}  // namespace

std::coroutine_handle<> join_suspend(task_node& node, task_node* waiter, std::coroutine_handle<> h,
                                     join_wake& wake) noexcept {
  worker& self = current_worker();
  if (CORUN_LIKELY(self.tracker() == nullptr) && try_join_inline(self, node, waiter, h, wake)) {
    return transfer_to(&node, node.m_resume);
  }
  return join_suspend_slow(self, node, waiter, h, wake);
}

void leave_stack(task_node& self) noexcept {
  // Relaxed: INLINE was set on this thread (or before a queue hand-off) by our joiner.
  if (CORUN_LIKELY((self.m_state.load(std::memory_order_relaxed) & task_node::inline_bit) == 0)) {
    return;
  }
  // Up the chain: every task here waits (INLINE) for the one below it, so none can run or
  // complete until a wake-up is registered for it; link the wake-ups top to bottom.
  join_wake* top = nullptr;
  for (task_node* node = &self;
       (node->m_state.load(std::memory_order_relaxed) & task_node::inline_bit) != 0;) {
    join_wake& wake = *node->m_waiter.wake;
    wake.arm(node, node->m_waiter.node);
    wake.set_below(top);
    top = &wake;
    node = node->m_waiter.node;
  }
  // Down the chain: once a joiner's wake-up is registered it may be woken and run, so nothing
  // above a registered level is touched again.
  while (top != nullptr) {
    join_wake& wake = *top;
    top = wake.below();  // before registering: register_cancel reuses the word
    task_node& joinee = wake.joinee();
    if (!wake.wake_on_cancel) {
      // A shielded join: no wake-up, but no plain-store completion either from now on.
      // Relaxed: as below.
      joinee.m_state.fetch_and(~task_node::inline_bit, std::memory_order_relaxed);
      continue;
    }
    if (register_cancel(wake)) {
      // Relaxed: only the flags change (INLINE known set, CANCELLABLE known clear); the joinee
      // cannot complete before it leaves this stack, so nobody stores to the word meanwhile.
      joinee.m_state.fetch_add(task_node::cancellable_bit - task_node::inline_bit,
                               std::memory_order_relaxed);
      continue;
    }
    // The joiner is cancelled already: wake it now, as its callback would have.
    // Relaxed: as above; the queue hand-off below publishes what the joiner reads.
    joinee.m_state.fetch_and(~(task_node::waiting_bit | task_node::inline_bit),
                             std::memory_order_relaxed);
    wake.registered = false;
    task_node& joiner = *joinee.m_waiter.node;
    joiner.m_resume = joinee.m_waiter.handle;
    current_worker().push(joiner);
  }
}

void join_wake::fire(cancel_registration& r) noexcept {
  auto& self = static_cast<join_wake&>(r);
  task_node& node = self.joinee();  // alive: the joiner's handle holds a reference until it
                                    // deregisters, which waits for us (we run under its lock)
  std::uint32_t state = node.m_state.load(std::memory_order_relaxed);
  for (;;) {
    if ((state & task_node::done_bit) != 0) {
      return;  // completion beats cancellation: the completer resumes the joiner
    }
    if ((state & task_node::waiting_bit) != 0) {
      // acq_rel: acquire the joiner's registration; release our claim to the completer, which
      // then finds WAITING clear and leaves the joiner to us.
      if (node.m_state.compare_exchange_weak(
              state, state & ~(task_node::waiting_bit | task_node::cancellable_bit),
              std::memory_order_acq_rel, std::memory_order_relaxed)) {
        self.registered = false;
        // Our claim leaves the joiner to us: nobody else reads or writes m_waiter meanwhile.
        task_node& joiner = *node.m_waiter.node;
        joiner.m_resume = node.m_waiter.handle;
        joiner.m_rt->schedule_nothrow(joiner);
        return;
      }
      continue;
    }
    // The joiner has not published WAITING yet: tell it not to suspend. Relaxed: its CAS reads
    // this word; the request itself was published (seq_cst) before we were fired.
    if (node.m_state.compare_exchange_weak(state, state | task_node::cancel_seen_bit,
                                           std::memory_order_relaxed, std::memory_order_relaxed)) {
      return;
    }
  }
}

void task_wake::fire(cancel_registration& r) noexcept {
  auto& self = static_cast<task_wake&>(r);
  task_node& task = *self.task;
  task.m_resume = self.handle;
  task.m_rt->schedule_nothrow(task);
}

bool suspend_until_cancelled(task_wake& wake, std::coroutine_handle<> h) noexcept {
  task_node& self = *tl_thread.current;
  leave_stack(self);
  if (task_tracker* tracker = self.m_rt->tracker(); CORUN_UNLIKELY(tracker != nullptr)) {
    // Relaxed: read racily by dumps; shown as waiting for nothing but cancellation.
    self.m_wait.store(static_cast<std::uint8_t>(wait_kind::cancel), std::memory_order_relaxed);
  }
  wake.scope = &self;
  wake.task = &self;
  wake.handle = h;
  return register_cancel(wake);
}

void join_resumed(task_node& node, join_wake& wake) noexcept {
  deregister_cancel(wake);
  // Relaxed: only our own callback sets the bit, and it has finished (deregistration above).
  if ((node.m_state.load(std::memory_order_relaxed) & task_node::cancel_seen_bit) != 0) {
    node.m_state.fetch_and(~task_node::cancel_seen_bit, std::memory_order_relaxed);
  }
}

void join_blocking(task_node& node) {
  std::atomic<std::uint32_t> word{0};
  node.m_waiter = join_waiter::thread(&word);
  // acq_rel: as in join_suspend.
  if ((node.m_state.fetch_or(task_node::waiting_bit, std::memory_order_acq_rel) &
       task_node::done_bit) != 0) {
    return;
  }
  // Acquire: pairs with wake_blocked_thread.
  while (word.load(std::memory_order_acquire) == 0) {
    futex_wait(&word, 0);
  }
}

void release_ref(task_node& node) noexcept {
  constexpr std::uint32_t last_and_done = task_node::one_ref | task_node::done_bit;
  // Acquire: if ours is the only reference left and the task is done, nobody else can touch it
  // (a new reference needs an existing one): skip the RMW. Pairs with the completer's release.
  if ((node.m_state.load(std::memory_order_acquire) &
       ~(task_node::flag_bits & ~task_node::done_bit)) == last_and_done) {
    dispose(node);
    return;
  }
  // acq_rel: our uses of the task happen before its disposal; if we are last we see everything.
  const std::uint32_t prev = node.m_state.fetch_sub(task_node::one_ref, std::memory_order_acq_rel);
  if ((prev & ~(task_node::flag_bits & ~task_node::done_bit)) == last_and_done) {
    dispose(node);
  }
}

void yield_current(std::coroutine_handle<> h) {
  task_node& self = *tl_thread.current;
  leave_stack(self);
  if (CORUN_UNLIKELY(self.m_rt->tracker() != nullptr)) {
    // Relaxed: read racily by dumps; cleared by the yield's await_resume.
    self.m_wait.store(static_cast<std::uint8_t>(wait_kind::yield), std::memory_order_relaxed);
  }
  self.m_resume = h;
  current_worker().push_yielded(self);
}

std::string task_label(const task_node& node) {
  std::string text = "task #" + std::to_string(node.id());
  if (const std::string name = node.name(); !name.empty()) {
    text += " '" + name + "'";
  }
  return text;
}

void report_unhandled(task_node& child, const std::exception_ptr& error) noexcept {
  try {
    const task_failure failure{child.id(), child.name(), error};
    if (child.m_holds_root) {
      child.m_held_root->report(failure);
    } else {
      report_on_stderr(failure);
    }
  } catch (...) {
    std::fputs("corun: unhandled task failure (no memory to describe it)\n", stderr);
  }
}

// ---- task_node ------------------------------------------------------------------------------

std::uint64_t task_node::id() const noexcept {
  std::uint64_t id = m_id.load(std::memory_order_relaxed);
  if (id != 0) {
    return id;
  }
  static std::atomic<std::uint64_t> next_id{1};
  // Relaxed: ids only need to be unique; the CAS makes every reader agree on one.
  const std::uint64_t fresh = next_id.fetch_add(1, std::memory_order_relaxed);
  if (m_id.compare_exchange_strong(id, fresh, std::memory_order_relaxed)) {
    return fresh;
  }
  return id;
}

std::string task_node::name() const {
  const task_extras* extras = m_extras.load(std::memory_order_acquire);
  return extras != nullptr ? extras->name : std::string();
}

void task_node::adopt_failure(const std::exception_ptr& error, task_node& child) noexcept {
  bool adopted = false;
  try {
    task_extras& extras = ensure_extras(*this);
    const std::lock_guard lock(extras.lock);
    if (!extras.closed) {
      extras.adopted.push_back(error);
      adopted = true;
    }
  } catch (...) {
    // No memory to keep it: it cannot fail us, so it is unhandled (below), never lost.
  }
  if (!adopted) {
    // We completed before the failure was reported (the child's handle outlived us), or there
    // was no memory to keep it: nobody can fail with it any more, so it is unhandled.
    report_unhandled(child, error);
  }
  try {
    request_cancel(describe_exception(error), cancel_origin::child_failed, task_label(child));
  } catch (...) {
    request_cancel_nothrow("a child task failed", cancel_origin::child_failed);
  }
}

resumption task_node::child_completed(bool /*child_failed*/) noexcept {
  // acq_rel: release our completion to whoever completes the parent; acquire theirs if we are
  // the last.
  if (m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    return resumption{this, {}};
  }
  return {};
}

void task_node::retain_for_report() {
  // The extras must exist before our completion (see settle_outcome), so create them now.
  ensure_extras(*this);
  add_ref();
}

void task_node::release() noexcept { release_ref(*this); }

void task_node::destroy_extras(task_extras* extras) noexcept { delete extras; }

task_extras& ensure_extras(task_node& node) {
  task_extras* extras = node.m_extras.load(std::memory_order_acquire);
  if (extras != nullptr) {
    return *extras;
  }
  auto* fresh = new task_extras;
  // acq_rel: release publishes the new extras; acquire sees a concurrent winner's.
  if (node.m_extras.compare_exchange_strong(extras, fresh, std::memory_order_acq_rel)) {
    return *fresh;
  }
  delete fresh;
  return *extras;
}

}  // namespace corun::detail
