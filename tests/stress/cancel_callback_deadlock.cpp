/// \file
/// The deregistration deadlock of cppcoro issue #221, as a stress test. Two tasks each wait on
/// their own `async_event`, holding a `cancel_callback` whose function sets the OTHER task's
/// event. Both tokens are cancelled at the same moment from two threads, so each callback wakes
/// the other task while it is still running, and each woken task then destroys its own callback,
/// which must wait for that callback to return. In cppcoro the event resumed the other task
/// inline, inside the callback: each thread then waited in a deregistration for the other
/// thread's callback, for ever. corun's callbacks only schedule, so both deregistrations end.
/// The tokens are `cancel_source`s or the tasks' own; the cancels come from two foreign threads
/// or from two tasks (then the callbacks run on the workers that also run the woken tasks).
///
/// Checked on every round: nothing hangs (the watchdog aborts with the round instead); each
/// callback runs at most once and never after its deregistration returned; and the callback
/// writes into a buffer its task frees right after the deregistration, so a deregistration that
/// did not wait for a running callback is a use after free for ASan and a race for TSan.
#include "support.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// What a callback writes: enough that the write takes a while, on the heap so that ASan sees
/// a write after the free.
using payload = std::array<std::uint64_t, 16>;

/// Violations, counted by the callbacks (which must not throw) and checked after each round.
struct violations {
  std::atomic<std::uint64_t> after_deregistration{0};
  std::atomic<std::uint64_t> ran_twice{0};
};

/// How often the race this file is about was really run.
struct statistics {
  std::uint64_t both_ran = 0;  // rounds in which each callback woke the other task
  std::uint64_t overlaps = 0;  // deregistrations that began while their callback still ran
};

/// One task's half of the pair.
struct side {
  corun::async_event event;
  std::atomic<int> runs{0};
  std::atomic<bool> deregistering{false};
  std::atomic<bool> deregistered{false};
  std::atomic<bool> overlapped{false};
};

/// Set when the task's callback is about to be destroyed (declared after it, so destroyed
/// first, on every path out of the scope).
class deregistration_mark {
 public:
  explicit deregistration_mark(std::atomic<bool>& flag) noexcept : m_flag(flag) {}
  deregistration_mark(const deregistration_mark&) = delete;
  deregistration_mark& operator=(const deregistration_mark&) = delete;
  ~deregistration_mark() { m_flag.store(true); }

 private:
  std::atomic<bool>& m_flag;
};

/// How the tokens are made and cancelled.
enum class tokens {
  sources,     // a `cancel_source` per task, cancelled with `request_cancel`
  own_handles  // the task's own token, cancelled through its handle: the wait is woken too
};

/// Who cancels them.
enum class cancellers {
  threads,      // two foreign threads: the callbacks run outside the runtime
  worker_tasks  // two tasks: the callbacks run on workers, beside the tasks they wake
};

/// Registers a callback on `token` that wakes `other` and then writes into a buffer; waits for
/// its own event (or its own cancellation); destroys the callback, then the buffer. If its
/// callback never ran (deregistered first), it wakes `other` itself, or `other` would wait for
/// ever: the pair's liveness must not depend on the order of the two cancels.
task<void> wait_then_deregister(corun::cancel_token token, side& self, side& other,
                                std::atomic<int>& registered, violations& seen) {
  auto buffer = std::make_unique<payload>();
  payload* target = buffer.get();
  try {
    const corun::cancel_callback callback(
        std::move(token), [&self, &other, target, &seen]() noexcept {
          if (self.deregistered.load(std::memory_order_acquire)) {
            seen.after_deregistration.fetch_add(1);
          }
          if (self.runs.fetch_add(1) != 0) {
            seen.ran_twice.fetch_add(1);
          }
          // Work before the wake-up, so that the other canceller is inside its callback too
          // by the time either wakes a task (both callbacks running at once: cppcoro's shape),
          // and after it, while the woken task deregisters.
          const auto work = [target](std::size_t from, std::size_t to) {
            for (std::size_t i = from; i < to; ++i) {
              ++(*target)[i];
              std::this_thread::yield();
            }
          };
          work(0, target->size() / 2);
          other.event.set();  // the other task may now be deregistering its own running callback
          work(target->size() / 2, target->size());
          if (self.deregistering.load()) {
            self.overlapped.store(true);  // our task waits in the deregistration right now
          }
        });
    const deregistration_mark mark(self.deregistering);
    registered.fetch_add(1);
    co_await self.event.wait();
  } catch (const corun::cancelled&) {
    // own_handles: the task's cancellation woke the wait; the callback is already deregistered.
  }
  self.deregistered.store(true, std::memory_order_release);
  buffer.reset();  // the callback's target: freed while a callback that was not waited for writes
  if (self.runs.load() == 0) {
    other.event.set();
  }
}

/// Runs `rounds` rounds of the pair on `rt`, the two cancels made at once as `how` and `by`
/// say.
statistics run_pairs(corun::runtime& rt, tokens how, cancellers by, std::uint64_t rounds,
                     watchdog& dog, const std::string& label) {
  statistics stats;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    dog.progress(label + ", round " + std::to_string(round));
    side a;
    side b;
    violations seen;
    std::atomic<int> registered{0};
    corun::cancel_source source_a;
    corun::cancel_source source_b;
    corun::join_handle<void> task_a;
    corun::join_handle<void> task_b;
    if (how == tokens::sources) {
      task_a = rt.spawn(wait_then_deregister(source_a.token(), a, b, registered, seen));
      task_b = rt.spawn(wait_then_deregister(source_b.token(), b, a, registered, seen));
    } else {
      // The token is the task's own, read once the task runs.
      task_a = rt.spawn([&]() -> task<void> {
        co_await wait_then_deregister(corun::this_task::token(), a, b, registered, seen);
      });
      task_b = rt.spawn([&]() -> task<void> {
        co_await wait_then_deregister(corun::this_task::token(), b, a, registered, seen);
      });
    }
    while (registered.load() != 2) {
      std::this_thread::yield();  // the watchdog bounds this wait too
    }
    const auto cancel = [&](bool first) {
      if (how == tokens::sources) {
        (first ? source_a : source_b).request_cancel("now");
      } else {
        (first ? task_a : task_b).cancel("now");
      }
    };
    std::atomic<bool> go{false};
    if (by == cancellers::threads) {
      std::atomic<int> ready{0};
      const auto canceller = [&](bool first) {
        ready.fetch_add(1);
        wait_for_flag(go);
        cancel(first);
      };
      std::thread first(canceller, true);
      std::thread second(canceller, false);
      while (ready.load() != 2) {
        std::this_thread::yield();  // both spin on `go`: the two cancels start together
      }
      go.store(true, std::memory_order_release);
      first.join();
      second.join();
    } else {
      auto first = rt.spawn([&]() -> task<void> {
        co_await yield_until(go);
        cancel(true);
      });
      auto second = rt.spawn([&]() -> task<void> {
        co_await yield_until(go);
        cancel(false);
      });
      go.store(true, std::memory_order_release);
      first.get();
      second.get();
    }
    task_a.get();  // own_handles: the task swallowed its cancellation and returned
    task_b.get();
    CHECK(seen.after_deregistration.load() == 0);
    CHECK(seen.ran_twice.load() == 0);
    if (a.runs.load() == 1 && b.runs.load() == 1) {
      ++stats.both_ran;
    }
    stats.overlaps += (a.overlapped.load() ? 1 : 0) + (b.overlapped.load() ? 1 : 0);
  }
  return stats;
}

}  // namespace

TEST_SUITE("stress_cancel_callback_deadlock") {
  TEST_CASE(
      "cancel callbacks that wake each other's task are deregistered by the woken tasks "
      "without a deadlock") {
    const std::uint64_t rounds = scaled(2000, 100);
    watchdog dog("cppcoro #221 deregistration deadlock");
    statistics from_threads;
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
      corun::runtime rt(with_workers(workers));
      for (const cancellers by : {cancellers::threads, cancellers::worker_tasks}) {
        for (const tokens how : {tokens::sources, tokens::own_handles}) {
          const std::string label = std::string(how == tokens::sources ? "sources" : "own tokens") +
                                    " cancelled by " +
                                    (by == cancellers::threads ? "threads" : "tasks") + " at " +
                                    std::to_string(workers) + " workers";
          CAPTURE(label);
          const statistics stats = run_pairs(rt, how, by, rounds, dog, label);
          MESSAGE(label << ": both callbacks ran in " << stats.both_ran << " of " << rounds
                        << " rounds; " << stats.overlaps
                        << " deregistrations began while their callback ran");
          if (by == cancellers::threads) {
            from_threads.both_ran += stats.both_ran;
            from_threads.overlaps += stats.overlaps;
          }
        }
      }
    }
    // Two spinning threads cancel together: in many rounds both callbacks run and a woken task
    // reaches its deregistration while its own callback still runs. The race was really run,
    // not avoided. (Cancelling tasks on one worker may let the first woken task deregister
    // before the second cancel every time, so only the threads' rounds are counted.)
    CHECK(from_threads.both_ran > 0);
    CHECK(from_threads.overlaps > 0);
  }
}
