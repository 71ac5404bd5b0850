// Model check of the join-state protocol of a spawned task under Relacy: the `m_state` word of
// include/corun/detail/task_node.hpp (bit 0 DONE, bit 1 WAITING, bit 2 CANCELLABLE, bit 3
// CANCEL_SEEN, bit 4 INLINE, bits 5.. REFS) as used by
// runtime/scheduler/task_lifecycle.cpp: `complete` (step 3 and the pick-up of the joiner, with
// the "exclusive" plain-store path), `join_suspend` (regular and inline paths), `join_blocking`,
// `release_ref` (with its load fast path) and `retain_for_report` (`add_ref`).
//
// The functions below are line-by-line replicas with the runtime's memory orders (the runtime's
// are not templates over the atomic type). The task's frame is a heap object: `dispose` writes
// its `alive` marker and deletes it, so Relacy reports any later access (ACCESS TO FREED MEMORY),
// a second dispose (DOUBLE FREE), a missing one (MEMORY LEAK), and any access to the frame that
// does not happen-before the dispose (DATA RACE on `alive`). Every access to the frame first
// reads `alive`.
//
// Checked in every execution:
//  - the joiner's continuation runs exactly once: it resumes itself (DONE seen when registering,
//    or `await_ready`), or the completer resumes it (symmetric transfer, on the completer's
//    thread), never both, never neither;
//  - when it runs, DONE is visible and so is the result written before DONE;
//  - the frame is disposed exactly once, after every access to it.
//
// Scenarios (thread 0 is always the completer: the body's end running `complete`):
//  1. a task joins: 2 references (body, the joiner's handle); the exclusive path is taken when
//     the joiner registers first;
//  2. the same with a third thread holding its own handle (`task_handle` copy) that looks at the
//     task and releases concurrently: 3 references at the start;
//  3. a non-worker thread blocks in `join_handle::get()` (join_blocking, futex word);
//  4. the inline join of `join_suspend` (the task at the bottom of the joiner's deque: relaxed
//     load == 2 refs, the task's body runs inline on the joiner's thread) while a child of that
//     task completes failed on another worker and takes a report reference on it
//     (`retain_for_report`), released later. The runtime publishes WAITING with a plain store
//     only when the task has no unabsorbed children (`m_spawned == 0`); here it has one, so it
//     uses fetch_or. The plain-store variant is kept as a check that the model catches why the
//     guard is needed (it found that bug in the runtime). See the note at `inline_join`;
//  5. a task joins and a third thread cancels the joiner (runtime/cancel/cancel_registry.cpp and
//     `join_wake::fire`): the joiner registers its wake-up under the shard lock and checks the
//     request; the canceller publishes the request, then fires the registration under the lock,
//     racing the completer for the joiner on the state word (clearing WAITING, or leaving
//     CANCEL_SEEN if the joiner has not published WAITING yet). Exactly one of the three resumes
//     the joiner; a joiner resumed by the cancel never takes the result.
#include <cstdint>

// After every other header (see rl_shim.hpp).
#include "rl_shim.hpp"

namespace {

using corun::model::read;
using corun::model::rl_atomic;
using corun::model::rl_futex;
using corun::model::rl_lock_guard;
using corun::model::run_options;
using corun::model::write;

// task_node's m_state bits.
constexpr std::uint32_t done_bit = 1;
constexpr std::uint32_t waiting_bit = 2;
constexpr std::uint32_t cancellable_bit = 4;
constexpr std::uint32_t cancel_seen_bit = 8;
constexpr std::uint32_t inline_bit = 16;
constexpr std::uint32_t flag_bits = 63;  // as in task_node.hpp (bit 5, DONE_WAITERS, unused here)
constexpr std::uint32_t one_ref = 64;
// task_node::pending_bias (2^48 in the runtime; any value larger than the children count).
constexpr std::int64_t pending_bias = 1000;

// m_waiter
constexpr int waiter_task = 1;    // a suspended task (resumed by symmetric transfer)
constexpr int waiter_thread = 2;  // a thread blocked in join_blocking (woken through its word)

/// The coroutine frame of the spawned task (the task_node fields the protocol touches).
struct frame {
  explicit frame(std::uint32_t refs) : state(refs) {
    write(alive, 1);
    write(result, 0);
  }
  rl_atomic<std::uint32_t> state;                 // m_state
  rl_atomic<std::int64_t> pending{pending_bias};  // m_pending
  rl::var<int> alive;                             // 1 until dispose
  rl::var<int> result;  // m_outcome and the result: final before DONE is published
  rl::var<int> waiter;  // m_waiter: written by the joiner before it sets WAITING
};

enum class scenario {
  join,                  // 1
  join_extra_handle,     // 2
  join_blocking,         // 3
  inline_join,           // 4, a relaxed store of 2 refs | WAITING despite the live child (wrong)
  inline_join_fetch_or,  // 4, as the runtime does it with a live child: fetch_or(WAITING)
  join_cancel,           // 5
  join_cancel_only,      // 5 before the task completes: the cancel alone must wake the joiner
  join_cancel_no_seen,   // the same with a joiner that ignores CANCEL_SEEN (wrong: lost wake-up)
};

constexpr bool cancels(scenario s) {
  return s == scenario::join_cancel || s == scenario::join_cancel_only ||
         s == scenario::join_cancel_no_seen;
}

constexpr int thread_count(scenario s) {
  return s == scenario::join_extra_handle || s == scenario::join_cancel ? 3 : 2;
}

/// How the inline join publishes WAITING.
enum class inline_publish { relaxed_store, fetch_or };

template <scenario S>
struct join_test : rl::test_suite<join_test<S>, thread_count(S)> {
  frame* f = nullptr;
  int resumed = 0;  // runs of the joiner's continuation
  int disposed = 0;
  // The blocked thread's futex word (on its stack in the runtime).
  rl_atomic<std::uint32_t> word{0};
  rl_futex futex;
  // Scenario 5: the registry shard (its lock, and whether the joiner's wake-up is in it), the
  // cancel request (the joiner's scope's m_cancel) and the shard head the canceller peeks at.
  rl::mutex shard;
  rl::var<int> in_registry;
  rl_atomic<int> request{0};
  rl_atomic<int> shard_head{0};
  // The joiner's awaiter: `join_wake::registered` (the completion resumed it).
  rl::var<int> completion_resumed;

  void before() {
    const std::uint32_t refs = S == scenario::join_extra_handle ? 3 : 2;
    f = new frame(refs * one_ref);
    write(in_registry, 0);
    write(completion_resumed, 0);
  }

  void after() {
    if constexpr (S == scenario::join_cancel_only || S == scenario::join_cancel_no_seen) {
      // The joined task has not completed: the cancel alone must have woken the joiner. Then
      // the task's body ends (its completion must not resume the joiner a second time).
      RL_ASSERT(resumed == 1);
      complete();
    }
    RL_ASSERT(resumed == 1);
    RL_ASSERT(disposed == 1);
  }

  /// Any access to the frame: it must still exist.
  void touch() { RL_ASSERT(read(f->alive) == 1); }

  void dispose() {
    touch();
    write(f->alive, 0);
    ++disposed;
    delete f;
  }

  // ---- task_lifecycle.cpp ----

  /// `complete`, step 3 onwards (the outcome, written first, stands for steps 1 and 2).
  void complete() {
    touch();
    write(f->result, 42);
    constexpr std::uint32_t exclusive = 2 * one_ref | waiting_bit | inline_bit;
    std::uint32_t prev = f->state.load(std::memory_order_acquire);
    if (prev == exclusive) {
      f->state.store(exclusive - one_ref + done_bit, std::memory_order_release);
    } else {
      prev = f->state.fetch_add(done_bit - one_ref, std::memory_order_acq_rel);
    }
    bool resume_joiner = false;
    if ((prev & waiting_bit) != 0) {
      touch();
      const int w = read(f->waiter);
      if (w == waiter_task) {
        resume_joiner = true;
      } else {
        RL_ASSERT(w == waiter_thread);
        wake_blocked_thread();
      }
    }
    if ((prev & ~flag_bits) == one_ref) {
      dispose();
    }
    if (resume_joiner) {
      if constexpr (cancels(S)) {
        cancellable_continuation();
      } else {
        joiner_continuation();  // step 5: the symmetric transfer
      }
    }
  }

  void wake_blocked_thread() {
    word.store(1, std::memory_order_release);
    futex.wake();
  }

  /// `join_suspend`, the regular path without a cancel registration. True if the joiner
  /// continues at once (DONE was set).
  bool join_suspend() {
    touch();
    write(f->waiter, waiter_task);
    return (f->state.fetch_or(waiting_bit, std::memory_order_acq_rel) & done_bit) != 0;
  }

  void release_ref() {
    touch();
    constexpr std::uint32_t last_and_done = one_ref | done_bit;
    constexpr std::uint32_t ignored = flag_bits & ~done_bit;
    if ((f->state.load(std::memory_order_acquire) & ~ignored) == last_and_done) {
      dispose();
      return;
    }
    const std::uint32_t prev = f->state.fetch_sub(one_ref, std::memory_order_acq_rel);
    if ((prev & ~ignored) == last_and_done) {
      dispose();
    }
  }

  // ---- scenario 5: cancel_registry.cpp and the join's wake-up ----

  /// `join_suspend` with its cancel registration (the runtime's regular path).
  void cancellable_joiner() {
    touch();
    if ((f->state.load(std::memory_order_acquire) & done_bit) != 0) {  // await_ready
      cancellable_continuation();
      return;
    }
    write(f->waiter, waiter_task);
    write(completion_resumed, 1);  // `wake.registered = true` before publishing
    bool already_cancelled = false;
    {
      rl_lock_guard lock(shard);  // register_cancel
      write(in_registry, 1);
      shard_head.store(1, std::memory_order_seq_cst);
      if (request.load(std::memory_order_seq_cst) != 0) {  // already cancelled: back out
        write(in_registry, 0);
        already_cancelled = true;
      }
    }
    if (already_cancelled) {
      write(completion_resumed, 0);
      cancellable_continuation_unlocked_registry();  // not registered: nothing to remove
      return;
    }
    std::uint32_t state = f->state.load(std::memory_order_relaxed);
    for (;;) {
      constexpr std::uint32_t stop_bits =
          S == scenario::join_cancel_no_seen ? done_bit : done_bit | cancel_seen_bit;
      if ((state & stop_bits) != 0) {
        write(completion_resumed, 0);
        cancellable_continuation();
        return;
      }
      if (f->state.compare_exchange_weak(state, state | waiting_bit | cancellable_bit,
                                         std::memory_order_acq_rel, std::memory_order_acquire)) {
        return;  // suspended
      }
    }
  }

  /// The canceller: `request_cancel` then `fire_cancel_registrations`.
  void canceller() {
    request.store(1, std::memory_order_seq_cst);  // the seq_cst CAS on m_cancel
    if (shard_head.load(std::memory_order_seq_cst) == 0) {
      return;  // nothing registered that we must see (step 2 of cancel_registry.cpp)
    }
    bool resume = false;
    {
      rl_lock_guard lock(shard);
      if (read(in_registry) == 1) {
        write(in_registry, 0);
        resume = fire();
      }
    }
    if (resume) {
      // The queue hand-off: the joiner runs after the push (here after the lock, which its
      // deregistration would wait for anyway).
      cancellable_continuation();
    }
  }

  /// `join_wake::fire`. True if it claimed the joiner.
  bool fire() {
    touch();  // the joiner's handle keeps the task alive until it deregisters
    std::uint32_t state = f->state.load(std::memory_order_relaxed);
    for (;;) {
      if ((state & done_bit) != 0) {
        return false;
      }
      if ((state & waiting_bit) != 0) {
        if (f->state.compare_exchange_weak(state, state & ~(waiting_bit | cancellable_bit),
                                           std::memory_order_acq_rel, std::memory_order_relaxed)) {
          write(completion_resumed, 0);
          return true;
        }
        continue;
      }
      if (f->state.compare_exchange_weak(state, state | cancel_seen_bit, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
        return false;
      }
    }
  }

  /// The joiner's await_resume: deregistration (waits for a fire in flight), CANCEL_SEEN
  /// cleared, then the result if the completion resumed it, else `cancelled` (when not done).
  void cancellable_continuation() {
    {
      rl_lock_guard lock(shard);
      write(in_registry, 0);
    }
    cancellable_continuation_unlocked_registry();
  }

  void cancellable_continuation_unlocked_registry() {
    ++resumed;
    touch();
    if ((f->state.load(std::memory_order_relaxed) & cancel_seen_bit) != 0) {
      f->state.fetch_and(~cancel_seen_bit, std::memory_order_relaxed);
    }
    const bool done = (f->state.load(std::memory_order_acquire) & done_bit) != 0;
    if (read(completion_resumed) == 1) {
      RL_ASSERT(done);  // resumed by the completion: the result is there
    }
    if (done) {
      RL_ASSERT(read(f->result) == 42);
    }
    release_ref();
  }

  /// `join_handle::awaiter::await_resume` and the handle's destruction.
  void joiner_continuation() {
    ++resumed;
    touch();
    RL_ASSERT((f->state.load(std::memory_order_acquire) & done_bit) != 0);
    RL_ASSERT(read(f->result) == 42);
    release_ref();
  }

  // ---- the threads ----

  /// `co_await handle` from a task.
  void joiner() {
    touch();
    if ((f->state.load(std::memory_order_acquire) & done_bit) != 0) {  // await_ready
      joiner_continuation();
      return;
    }
    if (join_suspend()) {
      joiner_continuation();
    }
    // Otherwise suspended: the completer resumes us.
  }

  /// `handle.get()` from a thread that is not a worker.
  void blocked_joiner() {
    touch();
    if ((f->state.load(std::memory_order_acquire) & done_bit) == 0) {
      // join_blocking
      write(f->waiter, waiter_thread);
      if ((f->state.fetch_or(waiting_bit, std::memory_order_acq_rel) & done_bit) == 0) {
        while (word.load(std::memory_order_acquire) == 0) {
          futex.wait(word, 0);
        }
      }
    }
    ++resumed;
    touch();
    RL_ASSERT(read(f->result) == 42);
    release_ref();
  }

  /// Another `task_handle` to the task: looks at it (failed()/exception() read the outcome once
  /// done) and goes away.
  void other_holder() {
    touch();
    if ((f->state.load(std::memory_order_acquire) & done_bit) != 0) {
      RL_ASSERT(read(f->result) == 42);
    }
    release_ref();
  }

  /// Scenario 4, the joiner's thread. The task (call it N) spawned a child C, then suspended and
  /// was requeued at the bottom of the joiner's deque (a completion on this worker resumed it as
  /// a second resumption, e.g. as a group's joiner). The joiner takes the inline path when it
  /// reads exactly two references; N's body then runs on this thread and finishes.
  ///
  /// A plain store is wrong here: "exactly two references, nobody else can make another" does
  /// not hold while N has live children, since a failing child adds a report
  /// reference with an RMW at any time. Relacy finds (a) the store overwriting that add_ref
  /// (load reads 2 refs, child's add_ref, our store of 2 refs | WAITING): the child's later
  /// release then leaves one reference for two holders, `complete` disposes N while the joiner
  /// still holds its handle, and the joiner's await_resume reads the freed frame; and (b) without
  /// any lost count, the store breaks the release sequence of a child's release_ref, so the
  /// final dispose does not happen-after the child's last use (DATA RACE). An RMW
  /// (`fetch_or(WAITING)`) fixes both: N cannot be DONE while it sits in our deque.
  void inline_join(inline_publish publish) {
    touch();
    // (await_ready: N is in our deque, so it is not done.)
    if (f->state.load(std::memory_order_relaxed) == 2 * one_ref /* && pop_if_bottom(N) */) {
      write(f->waiter, waiter_task);
      if (publish == inline_publish::relaxed_store) {
        f->state.store(2 * one_ref | waiting_bit | inline_bit, std::memory_order_relaxed);
      } else {
        f->state.fetch_or(waiting_bit | inline_bit, std::memory_order_relaxed);
      }
    } else {
      // The regular path; N runs from our deque right after we suspend.
      RL_ASSERT(!join_suspend());
    }
    // N's body ends: finish_spawned with one child spawned.
    constexpr std::int64_t delta = 1 - pending_bias;
    if (f->pending.fetch_add(delta, std::memory_order_acq_rel) + delta == 0) {
      complete();
    }
  }

  /// Scenario 4, the child C completing failed on another worker while a handle to C exists:
  /// `retain_for_report` on N, then `child_completed` on N; C's last reference goes later and
  /// releases the report reference (`dispose(C)` -> `N.release()`).
  void failing_child() {
    touch();
    f->state.fetch_add(one_ref, std::memory_order_relaxed);  // add_ref
    if (f->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      complete();
    }
    release_ref();
  }

  void thread(unsigned index) {
    if constexpr (S == scenario::join_cancel) {
      if (index == 0) {
        complete();
      } else if (index == 1) {
        cancellable_joiner();
      } else {
        canceller();
      }
    } else if constexpr (S == scenario::join_cancel_only || S == scenario::join_cancel_no_seen) {
      if (index == 0) {
        canceller();
      } else {
        cancellable_joiner();
      }
    } else if constexpr (S == scenario::inline_join || S == scenario::inline_join_fetch_or) {
      if (index == 0) {
        failing_child();
      } else {
        inline_join(S == scenario::inline_join ? inline_publish::relaxed_store
                                               : inline_publish::fetch_or);
      }
    } else if (index == 0) {
      complete();
    } else if (index == 1) {
      if constexpr (S == scenario::join_blocking) {
        blocked_joiner();
      } else {
        joiner();
      }
    } else {
      other_holder();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  using corun::model::expect_caught;
  using corun::model::expect_holds;
  using corun::model::scaled;
  const double scale = corun::model::iteration_scale(argc, argv);
  const run_options full{rl::sched_full, 0};
  const run_options random{rl::sched_random, scaled(1000000, scale)};
  bool ok = true;
  // Full search (every interleaving; loads may also return the previous value) and a random
  // search (loads may return any value still allowed) of each scenario.
  ok &= expect_holds<join_test<scenario::join>>("join: completer vs joiner", full);
  ok &= expect_holds<join_test<scenario::join>>("join: completer vs joiner", random);
  ok &= expect_holds<join_test<scenario::join_blocking>>(
      "join_blocking: completer vs blocked thread", full);
  ok &= expect_holds<join_test<scenario::join_blocking>>(
      "join_blocking: completer vs blocked thread", random);
  ok &= expect_holds<join_test<scenario::join_extra_handle>>(
      "join, a third handle released concurrently (3 refs)", full);
  ok &= expect_holds<join_test<scenario::join_extra_handle>>(
      "join, a third handle released concurrently (3 refs)", random);
  ok &= expect_holds<join_test<scenario::inline_join_fetch_or>>(
      "inline join publishing WAITING with fetch_or vs a child's report reference", full);
  ok &= expect_holds<join_test<scenario::inline_join_fetch_or>>(
      "inline join publishing WAITING with fetch_or vs a child's report reference", random);
  // Three threads with a lock: the full search takes minutes, so a long random search instead.
  const run_options long_random{rl::sched_random, scaled(3000000, scale)};
  ok &= expect_holds<join_test<scenario::join_cancel>>(
      "join: completer vs joiner vs a cancel of the joiner", long_random);
  ok &= expect_holds<join_test<scenario::join_cancel_only>>(
      "join woken by a cancel alone (the task completes later)", full);
  ok &= expect_holds<join_test<scenario::join_cancel_only>>(
      "join woken by a cancel alone (the task completes later)", random);
  // Why the joiner must not suspend after its callback fired early (CANCEL_SEEN).
  ok &= expect_caught<join_test<scenario::join_cancel_no_seen>>(
      "join cancelled with the joiner ignoring CANCEL_SEEN (must be caught)", full);
  // Why join_suspend's inline path guards its plain store with `m_spawned == 0`: without the
  // guard (the runtime's code before this model found it), a relaxed load-then-store of m_state
  // loses a reference that a failing child adds concurrently (retain_for_report), and the task's
  // frame is then disposed while still referenced. The model must keep catching that.
  ok &= expect_caught<join_test<scenario::inline_join>>(
      "inline join with a plain store despite a live child (must be caught)", full);
  std::cout << (ok ? "join_state model: all checks passed" : "join_state model: FAILED")
            << std::endl;
  return ok ? 0 : 1;
}
