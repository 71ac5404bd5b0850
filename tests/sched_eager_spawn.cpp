/// \file
/// Work-first spawns (`runtime_options::eager_spawn_threshold`): while its worker holds that many
/// queued tasks, the free `spawn` runs the new child at once, on the spawner's stack, until it
/// first suspends or completes. One worker makes the queue depth exact, so most cases use one.
#include "support.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

corun::runtime_options eager_options(std::size_t workers, std::size_t threshold) {
  corun::runtime_options options = with_workers(workers);
  options.eager_spawn_threshold = threshold;
  return options;
}

task<int> mark_and_return(std::vector<char>& ran, std::size_t i) {
  ran[i] = 1;
  co_return static_cast<int>(i);
}

/// Spawns `count` children and records, for each, whether it had already run when `spawn`
/// returned; then joins them all and checks their values.
task<std::vector<char>> ran_before_spawn_returned(std::size_t count) {
  std::vector<char> ran(count, 0);
  std::vector<char> early(count, 0);
  std::vector<corun::join_handle<int>> handles;
  handles.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    handles.push_back(corun::spawn(mark_and_return(ran, i)));
    early[i] = ran[i];
  }
  for (std::size_t i = 0; i < count; ++i) {
    CHECK(co_await handles[i] == static_cast<int>(i));
  }
  co_return early;
}

task<int> wait_then_return(corun::async_event& go, int value) {
  co_await go.wait();
  co_return value;
}

task<int> throw_at_once(int id) {
  throw test_error(id);
  co_return 0;  // never reached: makes this a coroutine
}

task<void> nothing() { co_return; }

/// A chain of `depth` tasks, each spawned (handle dropped) by the one before, behind one queued
/// sibling so that every spawn in it finds a non-empty queue.
task<void> spawn_chain(int depth, std::atomic<int>& reached) {
  reached.fetch_add(1, std::memory_order_relaxed);
  if (depth == 0) {
    co_return;
  }
  static_cast<void>(corun::spawn(nothing()));
  static_cast<void>(corun::spawn(spawn_chain(depth - 1, reached)));
}

/// Level `level` of a chain that ends at `last`: each level spawns the next and awaits it.
/// `started[k]` is set when level k starts; `early[k]` records whether level k had started when
/// the `spawn` of it returned, that is whether it ran nested in that spawn.
task<void> nested_chain(int level, int last, std::vector<char>& started, std::vector<char>& early) {
  const auto at = static_cast<std::size_t>(level);
  started[at] = 1;
  if (level == last) {
    co_return;
  }
  auto next = corun::spawn(nested_chain(level + 1, last, started, early));
  early[at + 1] = started[at + 1];
  co_await next;
}

task<std::int64_t> sum_of_ready_awaits(int count) {
  std::int64_t sum = 0;
  for (int i = 0; i < count; ++i) {
    sum += co_await value_of(i % 3);
  }
  co_return sum;
}

task<void> bump(std::atomic<std::uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

/// Spawns `count` children with their handles dropped and returns the most frames it saw alive
/// (above `baseline`) between spawns.
task<std::int64_t> detached_storm(std::uint64_t count, std::atomic<std::uint64_t>& counter,
                                  std::int64_t baseline) {
  std::int64_t most = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    static_cast<void>(corun::spawn(bump(counter)));
    if (i % 64 == 0) {
      const std::int64_t alive = live_frames() - baseline;
      most = alive > most ? alive : most;
    }
  }
  co_return most;
}

task<std::uint64_t> own_id() { co_return corun::this_task::id(); }

task<int> set_and_read(corun::task_local<int>& local, int value) {
  local.set(value);
  co_return local.get();
}

/// Spawns a child waiting for `go` and drops its handle: this task's end waits for it.
task<void> parent_of_waiter(corun::async_event& go, std::atomic<int>& done) {
  static_cast<void>(
      corun::spawn([](corun::async_event& event, std::atomic<int>& flag) -> task<void> {
        co_await event.wait();
        flag.store(1, std::memory_order_relaxed);
      }(go, done)));
  co_return;
}

task<void> parent_of_sleeper(std::atomic<int>& cancelled_children) {
  auto child = corun::spawn([](std::atomic<int>& count) -> task<void> {
    try {
      co_await corun::this_task::sleep_forever();
    } catch (const corun::cancelled&) {
      count.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
  }(cancelled_children));
  co_await child;
}

}  // namespace

TEST_SUITE("sched_eager_spawn") {
  TEST_CASE("a child run at spawn is a task of its own: its id, task-locals and children") {
    corun::runtime rt(eager_options(1, 1));
    rt.block_on([]() -> task<void> {
      auto queued = corun::spawn(nothing());  // the queue now holds the threshold
      auto eager = corun::spawn(own_id());
      CHECK(eager.done());
      const std::uint64_t handle_id = eager.id();
      const std::uint64_t seen_id = co_await eager;
      CHECK(seen_id == handle_id);
      CHECK(seen_id != corun::this_task::id());
      co_await queued;
    }());

    corun::task_local<int> local{0};
    const int mine = rt.block_on([](corun::task_local<int>& var) -> task<int> {
      var.set(1);
      auto queued = corun::spawn(nothing());
      auto eager = corun::spawn(set_and_read(var, 2));
      CHECK(co_await eager == 2);
      co_await queued;
      co_return var.get();
    }(local));
    CHECK(mine == 1);

    std::atomic<int> done{0};
    rt.block_on([](std::atomic<int>& flag) -> task<void> {
      corun::async_event go;
      auto queued = corun::spawn(nothing());
      auto eager = corun::spawn(parent_of_waiter(go, flag));
      // Its body ended inside spawn; the child it spawned (and dropped) still waits.
      CHECK_FALSE(eager.done());
      go.set();
      co_await eager;
      CHECK(flag.load() == 1);
      co_await queued;
    }(done));
  }

  TEST_CASE("cancelling a child run at spawn cancels the child it spawned") {
    corun::runtime rt(eager_options(1, 1));
    std::atomic<int> cancelled_children{0};
    const bool cancelled = rt.block_on([](std::atomic<int>& count) -> task<bool> {
      auto queued = corun::spawn(nothing());
      auto eager = corun::spawn(parent_of_sleeper(count));
      CHECK_FALSE(eager.done());
      eager.cancel("stop");
      bool saw = false;
      try {
        co_await eager;
      } catch (const corun::task_cancelled&) {
        saw = true;
      }
      co_await queued;
      co_return saw;
    }(cancelled_children));
    CHECK(cancelled);
    CHECK(cancelled_children.load() == 1);
  }

  TEST_CASE("a spawn runs its child at once while the worker holds the threshold's tasks") {
    constexpr std::size_t threshold = 16;
    corun::runtime rt(eager_options(1, threshold));
    const std::vector<char> early = rt.block_on(ran_before_spawn_returned(100));
    for (std::size_t i = 0; i < early.size(); ++i) {
      CAPTURE(i);
      // Before spawn i, the single worker's queue holds the i children spawned so far.
      CHECK((early[i] != 0) == (i >= threshold));
    }
  }

  TEST_CASE("the default threshold queues the first 12 spawns, 0 queues every spawn") {
    {
      corun::runtime rt(with_workers(1));
      CHECK(corun::runtime_options{}.eager_spawn_threshold == 12);
      const std::vector<char> early = rt.block_on(ran_before_spawn_returned(1100));
      std::size_t first_early = early.size();
      for (std::size_t i = 0; i < early.size() && first_early == early.size(); ++i) {
        first_early = early[i] != 0 ? i : first_early;
      }
      CHECK(first_early == 12);
    }
    {
      corun::runtime rt(eager_options(1, 0));
      const std::vector<char> early = rt.block_on(ran_before_spawn_returned(5000));
      std::size_t count = 0;
      for (const char e : early) {
        count += e != 0 ? 1 : 0;
      }
      CHECK(count == 0);
    }
  }

  TEST_CASE("a child run at spawn that suspends hands control back to its spawner") {
    corun::runtime rt(eager_options(1, 1));
    const int result = rt.block_on([]() -> task<int> {
      corun::async_event go;
      auto queued = corun::spawn(wait_then_return(go, 1));  // queued: the queue was empty
      auto eager = corun::spawn(wait_then_return(go, 2));   // run at once, suspends on `go`
      CHECK_FALSE(queued.done());
      CHECK_FALSE(eager.done());
      go.set();
      co_return co_await queued + co_await eager;
    }());
    CHECK(result == 3);
  }

  TEST_CASE("a failure of a child run at spawn reaches its handle or, dropped, its spawner") {
    corun::runtime rt(eager_options(1, 1));
    const int caught = rt.block_on([]() -> task<int> {
      auto queued = corun::spawn(nothing());
      auto failing = corun::spawn(throw_at_once(7));
      CHECK(failing.done());  // it ran to its end inside spawn
      int id = -1;
      try {
        co_await failing;
      } catch (const test_error& e) {
        id = e.id();
      }
      co_await queued;
      co_return id;
    }());
    CHECK(caught == 7);

    bool failed_with_it = false;
    try {
      rt.block_on([]() -> task<void> {
        static_cast<void>(corun::spawn(nothing()));
        static_cast<void>(corun::spawn(throw_at_once(8)));  // fails us once we end
        co_return;
      }());
    } catch (const test_error& e) {
      failed_with_it = e.id() == 8;
    }
    CHECK(failed_with_it);
  }

  TEST_CASE("work-first spawns nest boundedly: a long chain of them does not grow the stack") {
    // Every task of the chain spawns its successor with a non-empty queue, so with no bound each
    // would run inside the previous one's spawn, 20,000 deep (far past the stack at -O0 under
    // ASan); the bound queues the spawns past a few levels instead.
    constexpr int depth = 20'000;
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(eager_options(workers, 1));
      std::atomic<int> reached{0};
      rt.block_on(spawn_chain(depth, reached));
      CHECK(reached.load() == depth + 1);
    }
  }

  TEST_CASE("work-first spawns nest up to 32 deep, and deeper spawns queue") {
    // One queued sibling keeps the threshold of 1 met for every spawn of the chain. Level 0 runs
    // nested in the root's spawn (nesting depth 1), level k at depth k + 1: levels 1 to 31 run
    // nested in their parents' spawns, and from level 32 on, past the bound (worker.cpp,
    // `max_eager_depth`), each is queued and then joined inline by its parent. A bound of 8, as
    // before, queued every level from 8 on, so joins in trees deeper than 8 suspended whenever a
    // parent had two children queued (nqueens(12) is 13 deep).
    constexpr int last = 40;
    corun::runtime rt(eager_options(1, 1));
    std::vector<char> started(last + 1, 0);
    std::vector<char> early(last + 1, 0);
    rt.block_on([](std::vector<char>& s, std::vector<char>& e) -> task<void> {
      auto queued = corun::spawn(nothing());
      auto chain = corun::spawn(nested_chain(0, last, s, e));
      co_await chain;
      co_await queued;
    }(started, early));
    for (int level = 0; level <= last; ++level) {
      CAPTURE(level);
      CHECK(started[static_cast<std::size_t>(level)] == 1);
      if (level >= 1) {
        CHECK(early[static_cast<std::size_t>(level)] == (level < 32 ? 1 : 0));
      }
    }
  }

  TEST_CASE("a child run at spawn that runs a million ready awaits does not overflow the stack") {
    // Its transfers bounce (the g++ -O0 and sanitizer case) while the spawner holds the worker
    // loop: the bounced child must be queued, not lost.
    corun::runtime rt(eager_options(1, 1));
    const std::int64_t sum = rt.block_on([]() -> task<std::int64_t> {
      auto queued = corun::spawn(sum_of_ready_awaits(10));
      auto eager = corun::spawn(sum_of_ready_awaits(1'000'000));
      co_return co_await queued + co_await eager;
    }());
    // i % 3 over 0..n-1: 10 gives 9; a million gives 333,333 * 3 + 0 = 999,999.
    CHECK(sum == 9 + 999'999);
  }

  TEST_CASE("a spawn storm keeps at most about the threshold's frames alive") {
    constexpr std::size_t threshold = 256;
    const std::uint64_t count = scaled(200'000, 20'000);
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(eager_options(workers, threshold));
      std::atomic<std::uint64_t> counter{0};
      const std::int64_t baseline = live_frames();
      const std::int64_t most = rt.block_on(detached_storm(count, counter, baseline));
      CHECK(counter.load() == count);
      // The storm's own frame, the queued children (the threshold, plus what a thief holds),
      // and the child being spawned. Without work-first spawns this is `count`.
      CHECK(most <= static_cast<std::int64_t>(2 * threshold + 64));
    }
  }

  TEST_CASE("group and runtime spawns always queue") {
    corun::runtime rt(eager_options(1, 1));
    const std::size_t early = rt.block_on([]() -> task<std::size_t> {
      std::vector<char> ran(50, 0);
      std::size_t early_count = 0;
      corun::task_group group;
      for (std::size_t i = 0; i < ran.size(); ++i) {
        static_cast<void>(group.spawn(mark_and_return(ran, i)));
        early_count += ran[i] != 0 ? 1 : 0;
      }
      co_await group.join();
      co_return early_count;
    }());
    CHECK(early == 0);
  }
}
