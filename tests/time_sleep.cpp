/// \file
/// The runtime clock, `sleep_for`/`sleep_until`, and virtual time.
///
/// Everything that depends on how long things take runs on virtual time, where the answer is
/// exact. The few real-time cases only assert lower bounds (a sleep never ends early) or that
/// something happens at all within a minute-long limit, so they cannot flake.
#include "corun/time.hpp"

#include "support.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <compare>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

// ---- A program whose wake-ups tie: the determinism tests of virtual time -------------------

/// One wake-up: when (virtual time since the start), which task (its depth in the tree and its
/// key, unique per depth) and which of its sleeps.
struct wakeup {
  std::chrono::nanoseconds at;
  int depth;
  std::uint64_t key;
  int step;
  friend auto operator<=>(const wakeup&, const wakeup&) = default;
};

constexpr int tree_roots = 24;
constexpr int tree_steps = 3;
constexpr int tree_depth = 2;

/// A fixed pseudo-random number per (key, step, depth) (splitmix64).
std::uint64_t tree_hash(std::uint64_t key, int step, int depth) {
  std::uint64_t x = key * 64 + static_cast<std::uint64_t>(step * 8 + depth) + 0x9E3779B97F4A7C15;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE5E4B9;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
  return x ^ (x >> 31);
}

/// Every sleep is 10, 20 or 30 ms, so most wake-ups share their instant with others.
std::chrono::milliseconds tree_nap(std::uint64_t key, int step, int depth) {
  return std::chrono::milliseconds(10 * static_cast<int>(1 + tree_hash(key, step, depth) % 3));
}

/// About half the wake-ups above the last depth spawn a child, which sleeps in turn.
bool tree_spawns(std::uint64_t key, int step, int depth) {
  return depth < tree_depth && (tree_hash(key, step, depth) >> 8) % 2 == 0;
}

std::uint64_t tree_child(std::uint64_t key, int step) {
  return key * tree_steps + static_cast<std::uint64_t>(step);
}

struct wakeup_trace {
  corun::time_point start;
  std::mutex lock;
  std::vector<wakeup> wakeups;  // in the order they were recorded; guarded by lock
};

task<void> sleeper_tree(wakeup_trace& trace, std::uint64_t key, int depth) {
  for (int step = 0; step < tree_steps; ++step) {
    co_await corun::sleep_for(tree_nap(key, step, depth));
    {
      const std::lock_guard guard(trace.lock);
      trace.wakeups.push_back(wakeup{corun::now() - trace.start, depth, key, step});
    }
    if (tree_spawns(key, step, depth)) {
      // The handle is dropped: the child stays in the tree, and its parent completes after it.
      static_cast<void>(corun::spawn(sleeper_tree(trace, tree_child(key, step), depth + 1)));
    }
  }
}

/// Runs the program once; returns its wake-ups in the order they were recorded.
std::vector<wakeup> run_sleeper_trees(std::size_t workers) {
  wakeup_trace trace;
  corun::runtime rt(with_virtual_time(workers));
  trace.start = rt.now();
  rt.block_on([&]() -> task<void> {
    for (int root = 0; root < tree_roots; ++root) {
      static_cast<void>(corun::spawn(sleeper_tree(trace, static_cast<std::uint64_t>(root), 0)));
    }
    co_return;
  }());
  return std::move(trace.wakeups);
}

/// The wake-ups the program must make, computed without a runtime, sorted.
std::vector<wakeup> expected_wakeups() {
  std::vector<wakeup> out;
  const auto walk = [&](const auto& self, std::uint64_t key, int depth,
                        std::chrono::nanoseconds at) -> void {
    for (int step = 0; step < tree_steps; ++step) {
      at += tree_nap(key, step, depth);
      out.push_back(wakeup{at, depth, key, step});
      if (tree_spawns(key, step, depth)) {
        self(self, tree_child(key, step), depth + 1, at);
      }
    }
  };
  for (int root = 0; root < tree_roots; ++root) {
    walk(walk, static_cast<std::uint64_t>(root), 0, std::chrono::nanoseconds::zero());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool instants_in_order(const std::vector<wakeup>& wakeups) {
  return std::is_sorted(wakeups.begin(), wakeups.end(),
                        [](const wakeup& a, const wakeup& b) { return a.at < b.at; });
}

// ---- Worker threads seen from the kernel: the kick test -------------------------------------

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// The threads of this process whose name starts with `prefix`.
std::vector<pid_t> threads_named(const std::string& prefix) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name.rfind(prefix, 0) == 0) {
      found.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
    }
  }
  return found;
}

/// Waits (for at most a minute) until `count` threads are named with `prefix` (a worker names
/// itself when it starts running) and returns them, or fewer if they never were.
std::vector<pid_t> wait_for_threads_named(const std::string& prefix, std::size_t count) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  std::vector<pid_t> found = threads_named(prefix);
  while (found.size() < count && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
    found = threads_named(prefix);
  }
  return found;
}

/// True if thread `tid` of this process is blocked in the kernel (state S: the futex wait of
/// a parked worker; a runnable or running thread is R).
bool blocked_in_kernel(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return false;
  }
  // "tid (comm) S ...": the name may hold spaces or parentheses, the state follows the last ')'.
  const std::size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'S';
}

/// Waits (for at most `limit`) until every thread in `tids` is blocked in the kernel.
bool wait_until_blocked(const std::vector<pid_t>& tids,
                        std::chrono::seconds limit = std::chrono::minutes(1)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (std::all_of(tids.begin(), tids.end(), blocked_in_kernel)) {
      return true;
    }
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST_SUITE("time_sleep") {
  TEST_CASE("virtual time: sleep_for(3600s) returns at once with now() an hour later") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      const auto slept = rt.block_on([]() -> task<std::chrono::nanoseconds> {
        const corun::time_point before = corun::now();
        co_await corun::sleep_for(3600s);
        co_return corun::now() - before;
      }());
      CHECK(slept == 3600s);
      CHECK(rt.now() - start == 3600s);
    }
  }

  TEST_CASE("virtual time: sleepers wake in deadline order, ties in the order they slept") {
    std::mutex lock;
    std::vector<int> order;
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([&]() -> task<void> {
      std::vector<corun::join_handle<void>> sleepers;
      // Durations out of order, with two ties (ids 2/5 at 30 ms, 3/6 at 10 ms).
      const std::chrono::milliseconds delays[] = {50ms, 20ms, 30ms, 10ms, 40ms, 30ms, 10ms};
      for (int id = 0; id < 7; ++id) {
        sleepers.push_back(corun::spawn([&, id, d = delays[id]]() -> task<void> {
          co_await corun::sleep_for(d);
          const std::lock_guard guard(lock);
          order.push_back(id);
        }));
      }
      for (auto& s : sleepers) {
        co_await s;
      }
    }());
    CHECK(order == std::vector<int>{3, 6, 1, 2, 5, 4, 0});
  }

  TEST_CASE("virtual time: every sleeper wakes exactly at its deadline, on any worker count") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> early{0};
      std::atomic<int> late{0};
      std::atomic<int> woke{0};
      corun::runtime rt(with_virtual_time(workers));
      const int sleepers = static_cast<int>(scaled(2000, 200));
      rt.block_on([&]() -> task<void> {
        std::mt19937 rng(static_cast<unsigned>(workers));
        std::vector<corun::join_handle<void>> handles;
        for (int i = 0; i < sleepers; ++i) {
          const auto delay = std::chrono::microseconds(rng() % 1'000'000);
          handles.push_back(corun::spawn([&, delay]() -> task<void> {
            const corun::time_point deadline = corun::now() + delay;
            co_await corun::sleep_until(deadline);
            // Time only moves while every worker is idle, straight to the earliest deadline.
            const corun::time_point woke_at = corun::now();
            if (woke_at < deadline) {
              early.fetch_add(1);
            } else if (woke_at > deadline) {
              late.fetch_add(1);
            }
            woke.fetch_add(1);
          }));
        }
        for (auto& h : handles) {
          co_await h;
        }
      }());
      CHECK(woke.load() == sleepers);
      CHECK(early.load() == 0);
      CHECK(late.load() == 0);
    }
  }

  TEST_CASE("virtual time: the same program wakes its tasks in the same order every run") {
    auto run_once = [](std::size_t workers) {
      std::mutex lock;
      std::vector<std::pair<std::chrono::nanoseconds, int>> wakeups;
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      rt.block_on([&]() -> task<void> {
        std::vector<corun::join_handle<void>> handles;
        for (int id = 0; id < 40; ++id) {
          handles.push_back(corun::spawn([&, id]() -> task<void> {
            // Each task sleeps a few times, with distinct deadlines across all tasks.
            for (int step = 1; step <= 3; ++step) {
              co_await corun::sleep_for(std::chrono::milliseconds(step * 1000 + id * 7));
              const std::lock_guard guard(lock);
              wakeups.emplace_back(corun::now() - start, id);
            }
          }));
        }
        for (auto& h : handles) {
          co_await h;
        }
      }());
      return wakeups;
    };
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      const auto first = run_once(workers);
      const auto second = run_once(workers);
      CHECK(first.size() == 120);
      CHECK(first == second);
      CHECK(std::is_sorted(first.begin(), first.end()));
    }
  }

  // With ties, runtime_options::virtual_time promises the instants and which tasks wake at
  // each, not the order within an instant on several workers (the woken tasks run in parallel,
  // and the timers they arm concurrently tie in no fixed order): exactly what is checked here.
  TEST_CASE("virtual time: with tied deadlines each instant wakes the same tasks every run") {
    const std::vector<wakeup> expected = expected_wakeups();
    REQUIRE(expected.size() > 100);
    REQUIRE(std::adjacent_find(expected.begin(), expected.end(),
                               [](const wakeup& a, const wakeup& b) { return a.at == b.at; }) !=
            expected.end());  // the program really has ties
    for (const std::size_t workers : {std::size_t{2}, std::size_t{4}, std::size_t{8}}) {
      CAPTURE(workers);
      for (int run = 0; run < 3; ++run) {
        CAPTURE(run);
        std::vector<wakeup> wakeups = run_sleeper_trees(workers);
        CHECK(instants_in_order(wakeups));
        std::sort(wakeups.begin(), wakeups.end());
        CHECK(wakeups == expected);
      }
    }
  }

  TEST_CASE(
      "virtual time: with tied deadlines one worker wakes tasks in the same order every run") {
    const std::vector<wakeup> first = run_sleeper_trees(1);
    CHECK(instants_in_order(first));
    std::vector<wakeup> sorted = first;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == expected_wakeups());
    for (int run = 1; run < 3; ++run) {
      CAPTURE(run);
      CHECK(run_sleeper_trees(1) == first);
    }
  }

  // runtime_options::virtual_time: time jumps when every worker is idle, not when every task
  // waits for the clock; a task waiting for another thread does not hold time back.
  TEST_CASE("virtual time: the clock jumps while a task waits for an event a thread will set") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_event event;
      std::atomic<bool> waiting{false};
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      auto waiter = rt.spawn([&]() -> task<corun::time_point> {
        waiting.store(true);
        co_await event.wait();
        co_return corun::now();
      });
      REQUIRE(wait_until_set(waiting));
      // Nobody advances the clock and the waiter is not waiting for it: only a jump taken while
      // the waiter still waits can end this hour-long sleep.
      auto sleeper = rt.spawn([]() -> task<void> { co_await corun::sleep_for(1h); });
      CHECK(wait_until_done(sleeper));
      sleeper.get();
      CHECK(rt.now() - start == 1h);
      CHECK_FALSE(waiter.done());
      event.set();  // from this thread, outside the runtime
      CHECK(waiter.get() - start == 1h);
    }
  }

  TEST_CASE("virtual time: advance moves the clock by hand and fires what came due") {
    std::atomic<bool> woke{false};
    corun::runtime rt(with_virtual_time(2));
    const corun::time_point start = rt.now();
    rt.advance(5s);
    CHECK(rt.now() - start == 5s);
    rt.advance(-1s);  // time never goes back
    CHECK(rt.now() - start == 5s);
    // A task that sleeps while another keeps the pool busy: time does not jump on its own,
    // so only `advance` can wake the sleeper.
    std::atomic<bool> stop_spinning{false};
    std::atomic<bool> asleep{false};
    auto spinner = rt.spawn(yield_until(stop_spinning));
    auto sleeper = rt.spawn([&]() -> task<void> {
      asleep.store(true);
      co_await corun::sleep_until(start + 10s);
      woke.store(true);
    });
    REQUIRE(wait_until_set(asleep));
    rt.advance(4s);
    CHECK_FALSE(woke.load());
    rt.advance(6s);
    CHECK(wait_until_set(woke));
    stop_spinning.store(true);
    spinner.get();
    sleeper.get();
    CHECK(rt.now() - start == 15s);
  }

  TEST_CASE("virtual time: advance saturates instead of wrapping around") {
    corun::runtime rt(with_virtual_time(1));
    const corun::time_point start = rt.now();
    rt.advance(std::chrono::nanoseconds::max());
    const corun::time_point far = rt.now();
    CHECK(far > start);
    rt.advance(std::chrono::nanoseconds::max());
    CHECK(rt.now() == far);  // already at the end of the clock
  }

  TEST_CASE("advance on a real-time runtime is a logic_error") {
    corun::runtime rt(with_workers(1));
    CHECK_THROWS_AS(rt.advance(1s), std::logic_error);
  }

  TEST_CASE("sleep_for and now outside a task are logic_errors") {
    CHECK_THROWS_AS(static_cast<void>(corun::now()), std::logic_error);
    CHECK_THROWS_AS(static_cast<void>(corun::sleep_for(1s)), std::logic_error);
  }

  // On one worker a task queued behind the sleeper can run only if the sleeper suspends: the
  // worker takes other work only when its current task gives the thread back.
  TEST_CASE("a sleep whose deadline passed returns without suspending") {
    corun::runtime rt(with_workers(1));
    const int ran_before_join = rt.block_on([]() -> task<int> {
      int ran = 0;
      auto sibling = corun::spawn([&ran]() -> task<void> {
        ++ran;
        co_return;
      });
      co_await corun::sleep_for(0s);
      co_await corun::sleep_for(-5s);
      co_await corun::sleep_until(corun::now() - 1h);
      co_await corun::sleep_for(std::chrono::hours::max() - std::chrono::hours::max());
      const int before = ran;
      co_await sibling;
      CHECK(ran == 1);  // the sibling was runnable all along
      co_return before;
    }());
    CHECK(ran_before_join == 0);
  }

  TEST_CASE("virtual time: a sleep cancelled in the middle wakes at once") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      const corun::time_point start = rt.now();
      std::atomic<bool> asleep{false};
      const auto woke_after = rt.block_on([&]() -> task<std::chrono::nanoseconds> {
        std::optional<corun::time_point> woke_at;
        auto sleeper = corun::spawn([&]() -> task<void> {
          asleep.store(true);
          try {
            co_await corun::sleep_for(1h);
          } catch (const corun::cancelled& c) {
            CHECK(c.message() == "at ten seconds");
            woke_at = corun::now();
            throw;
          }
        });
        co_await corun::sleep_for(10s);
        // Time jumps only when every worker is idle: the sleeper had started its hour.
        CHECK(asleep.load());
        CHECK(corun::now() - start == 10s);
        sleeper.cancel("at ten seconds");
        try {
          co_await sleeper;
          FAIL("the sleeper was not cancelled");
        } catch (const corun::task_cancelled&) {
        }
        // The cancel wake-up made the sleeper runnable: time could not jump on to its hour.
        REQUIRE(woke_at.has_value());
        co_return *woke_at - start;
      }());
      CHECK(woke_after == 10s);
      CHECK(rt.now() - start == 10s);
    }
  }

  TEST_CASE("real time: a sleep never ends before its deadline") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const auto slept = rt.block_on([]() -> task<std::chrono::nanoseconds> {
        const corun::time_point before = corun::now();
        co_await corun::sleep_for(20ms);
        co_return corun::now() - before;
      }());
      CHECK(slept >= 20ms);
    }
  }

  TEST_CASE("real time: many concurrent sleepers all wake, none early") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> early{0};
      std::atomic<int> woke{0};
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        std::vector<corun::join_handle<void>> handles;
        for (int i = 0; i < 200; ++i) {
          handles.push_back(corun::spawn([&, i]() -> task<void> {
            const corun::time_point deadline = corun::now() + std::chrono::milliseconds(i % 25);
            co_await corun::sleep_until(deadline);
            if (corun::now() < deadline) {
              early.fetch_add(1);
            }
            woke.fetch_add(1);
          }));
        }
        for (auto& h : handles) {
          co_await h;
        }
      }());
      CHECK(woke.load() == 200);
      CHECK(early.load() == 0);
    }
  }

  // The kick path of runtime_core::timers_changed: a deadline armed earlier than the one the
  // timer-serving worker sleeps until must wake that worker. Set up so that the kick is the
  // only way: one worker is held by a task that spins without suspending (so it serves no
  // timers), every other worker is asleep in the kernel with the far deadline queued (so one
  // of them sleeps until it, serving the timers), then the spinner arms the near deadline and
  // suspends, and its worker parks without serving (the service is taken). No timing is
  // asserted: a missing kick leaves the near sleep unfinished for the hour, which the
  // minute-long waits report.
  TEST_CASE("real time: an earlier deadline wakes the worker sleeping until a later one") {
    for (const std::size_t workers : {std::size_t{2}, std::size_t{4}, std::size_t{8}}) {
      CAPTURE(workers);
      corun::runtime_options options = with_workers(workers);
      options.name = "kick";
      corun::runtime rt(std::move(options));
      std::atomic<pid_t> spinner_tid{0};
      std::atomic<bool> far_running{false};
      std::atomic<bool> go{false};
      auto spinner = rt.spawn([&]() -> task<void> {
        spinner_tid.store(current_tid());
        while (!go.load()) {
          std::this_thread::yield();  // holds its worker: no suspension, so no timer service
        }
        co_await corun::sleep_for(10ms);  // armed from a worker while the server sleeps
      });
      while (spinner_tid.load() == 0) {
        std::this_thread::yield();
      }
      // The far deadline, armed on another worker (the spinner's is held); that worker parks
      // after arming it and, with the far deadline queued, one parked worker serves it.
      auto far = rt.spawn([&]() -> task<void> {
        far_running.store(true);
        co_await corun::sleep_for(1h);
      });
      REQUIRE(wait_until_set(far_running));
      std::vector<pid_t> others = wait_for_threads_named("kick-w", workers);
      REQUIRE(others.size() == workers);
      others.erase(std::remove(others.begin(), others.end(), spinner_tid.load()), others.end());
      REQUIRE(others.size() == workers - 1);
      // Every other worker asleep in the kernel: the one that ran `far` parked after arming
      // it. A bound on waiting, not an assertion on timing: on a loaded machine this only
      // takes longer.
      CHECK(wait_until_blocked(others));
      go.store(true);
      CHECK(wait_until_done(spinner));
      spinner.get();
      far.cancel("done");
      CHECK(wait_until_done(far));
      CHECK_THROWS_AS(far.get(), corun::task_cancelled);
    }
  }

  TEST_CASE("a cancelled sleep wakes at once and throws cancelled with the reason") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> asleep{false};
      std::atomic<bool> saw_cancel{false};
      corun::runtime rt(with_workers(workers));
      auto sleeper = rt.spawn([&]() -> task<void> {
        try {
          asleep.store(true);
          co_await corun::sleep_for(24h);
        } catch (const corun::cancelled& c) {
          saw_cancel.store(c.message() == "wake up");
          throw;
        }
      });
      REQUIRE(wait_until_set(asleep));
      sleeper.cancel("wake up");
      // A day-long sleep: only the cancel wake-up can end it within the minute.
      CHECK(wait_until_done(sleeper));
      CHECK_THROWS_AS(sleeper.get(), corun::task_cancelled);
      CHECK(saw_cancel.load());
    }
  }

  TEST_CASE("a task cancelled before it sleeps throws at the sleep without waiting") {
    corun::runtime rt(with_virtual_time(1));
    const corun::time_point start = rt.now();
    auto sleeper = rt.spawn([]() -> task<void> {
      // Busy until the cancel arrived (the clock cannot jump while a worker runs), ignoring
      // it, so that the sleep below is reached while cancelled.
      while (!corun::this_task::cancellation().has_value()) {
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          // ignored on purpose
        }
      }
      co_await corun::sleep_for(1h);
    });
    sleeper.cancel("early");
    CHECK_THROWS_AS(sleeper.get(), corun::task_cancelled);
    CHECK(rt.now() == start);  // the hour never passed
  }

  TEST_CASE("destroying a runtime with sleeping tasks cancels them and leaks nothing") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<int> started{0};
      {
        corun::runtime rt(with_workers(workers));
        for (int i = 0; i < 100; ++i) {
          static_cast<void>(rt.spawn([&]() -> task<void> {
            const alive_guard guard(alive);
            started.fetch_add(1);
            co_await corun::sleep_for(24h);
          }));
        }
        while (started.load() < 100) {
          std::this_thread::yield();
        }
        CHECK(alive.load() == 100);
      }
      CHECK(alive.load() == 0);  // every sleeper unwound; the frame count is checked after
    }
  }
}
