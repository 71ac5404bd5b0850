/// \file
/// `std::bad_alloc` injected at every allocation site in turn (DESIGN.md section 6): it must
/// surface as an exception at the spawning call or the awaiter, never as a lost or half-registered
/// task, a `std::terminate`, a hang or a leaked frame; and the runtime must stay usable.
///
/// This file replaces the global `operator new`, so it is built into its own executable
/// (`corun_alloc_tests`). Each injection point runs in a forked child process, so that a
/// terminate or a crash is reported as a failed check naming the allocation number instead of
/// ending the test run. To see where allocation N comes from, run the test with
/// CORUN_ALLOC_TRACE=N: the child prints a backtrace of the failing allocation on stderr;
/// CORUN_ALLOC_ONLY=N tries that allocation alone.
#include "support.hpp"

#include <execinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <tuple>
#include <utility>

using corun::task;
using namespace corun_test;

namespace {

/// Allocations left before the injected failure; negative while disarmed.
std::atomic<std::int64_t> g_allocations_left{-1};
/// Set once the injected failure was thrown.
std::atomic<bool> g_injected{false};
/// Allocation number whose backtrace to print (CORUN_ALLOC_TRACE), or -1.
std::int64_t g_trace_at = -1;
std::int64_t g_armed_at = 0;

void* allocate(std::size_t size, std::size_t alignment) {
  if (g_allocations_left.load(std::memory_order_relaxed) >= 0) {
    if (g_allocations_left.fetch_sub(1, std::memory_order_relaxed) == 0) {
      g_injected.store(true, std::memory_order_relaxed);
      if (g_trace_at == g_armed_at) {
        void* frames[64];
        const int depth = ::backtrace(frames, 64);
        ::backtrace_symbols_fd(frames, depth, 2);
      }
      throw std::bad_alloc();
    }
  }
  if (size == 0) {
    size = 1;
  }
  void* block = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    block = std::malloc(size);
  } else if (::posix_memalign(&block, alignment, size) != 0) {
    block = nullptr;
  }
  if (block == nullptr) {
    throw std::bad_alloc();
  }
  return block;
}

}  // namespace

// The replaceable global allocation functions ([new.delete]); the nothrow forms return null.
void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t align) {
  return allocate(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return allocate(size, static_cast<std::size_t>(align));
}
void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  try {
    return allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  try {
    return allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* block) noexcept { std::free(block); }
void operator delete[](void* block) noexcept { std::free(block); }
void operator delete(void* block, std::size_t /*size*/) noexcept { std::free(block); }
void operator delete[](void* block, std::size_t /*size*/) noexcept { std::free(block); }
void operator delete(void* block, std::align_val_t /*align*/) noexcept { std::free(block); }
void operator delete[](void* block, std::align_val_t /*align*/) noexcept { std::free(block); }
void operator delete(void* block, std::size_t /*size*/, std::align_val_t /*align*/) noexcept {
  std::free(block);
}
void operator delete[](void* block, std::size_t /*size*/, std::align_val_t /*align*/) noexcept {
  std::free(block);
}

namespace {

constexpr int scenario_value = 28;

/// Uses every mechanism once: named spawns, spawn of a callable, a dropped child, joins,
/// when_all (values and failures), a caught child failure, a cancelled child.
task<int> scenario() {
  auto a = corun::spawn(value_of(1), {.name = "a"});
  auto b = corun::spawn(
      [](int x) -> task<int> {
        co_await corun::this_task::yield();
        co_return x;
      },
      2);
  (void)corun::spawn(yield_times(2));
  int sum = co_await a;
  sum += co_await b;
  auto [c, d] = co_await corun::when_all(value_of(3), value_of(4));
  sum += c + d;
  try {
    (void)co_await corun::spawn(fail_after(1, 9));
  } catch (const test_error&) {
    sum += 5;
  }
  try {
    (void)co_await corun::when_all(fail_after(0, 1), value_of(1));
  } catch (const corun::exception_group&) {
    sum += 6;
  }
  // The child waits until the cancel was attempted (it could otherwise finish first), then
  // suspends once more: there it sees the cancellation, unless `cancel` itself failed with
  // bad_alloc, in which case that exception leaves the scenario.
  std::atomic<bool> cancel_attempted{false};
  auto doomed = corun::spawn(
      [](const std::atomic<bool>& attempted) -> task<void> {
        co_await yield_until(attempted);
        co_await corun::this_task::yield();
      },
      std::cref(cancel_attempted));
  try {
    doomed.cancel("alloc test");
  } catch (...) {
    cancel_attempted.store(true, std::memory_order_release);
    throw;
  }
  cancel_attempted.store(true, std::memory_order_release);
  try {
    co_await doomed;
  } catch (const corun::task_cancelled&) {
    sum += 7;
  }
  co_return sum;
}

/// True if `error` is a `bad_alloc`, or a group holding at least one.
bool holds_bad_alloc(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::bad_alloc&) {
    return true;
  } catch (const corun::exception_group& group) {
    for (const auto& leaf : group.leaves()) {
      if (holds_bad_alloc(leaf)) {
        return true;
      }
    }
  } catch (...) {
  }
  return false;
}

/// Child exit codes (in_child_process maps 0 to "ok" and 2 to "false").
constexpr int not_reached = 5;

/// In the child: fail allocation number `n` of the scenario and check what happened.
bool run_with_failure_at(std::size_t workers, bool recycle, std::int64_t n) {
  g_armed_at = n;  // before any worker thread exists
  corun::runtime_options options = with_workers(workers);
  // Without recycling every coroutine frame is a fresh `operator new`, so frame allocations are
  // among the sites; with it, the warm-up leaves frames to reuse.
  options.recycle_frames = recycle;
  corun::runtime rt(std::move(options));
  (void)rt.block_on(scenario());  // warm-up: thread caches, queue blocks
  const std::int64_t baseline = live_frames();
  std::string problem;
  g_allocations_left.store(n, std::memory_order_relaxed);
  try {
    const int value = rt.block_on(scenario());
    // The failure may have hit an allocation whose failure the runtime or the scenario absorbs
    // (a catch clause); the result must still be right.
    if (value != scenario_value) {
      problem = "the scenario returned " + std::to_string(value);
    }
  } catch (...) {
    if (!holds_bad_alloc(std::current_exception())) {
      problem = "the scenario threw " + corun::describe_exception(std::current_exception());
    }
  }
  g_allocations_left.store(-1, std::memory_order_relaxed);
  const bool fired = g_injected.load();
  if (const std::int64_t leaked = live_frames() - baseline; problem.empty() && leaked != 0) {
    problem = std::to_string(leaked) + " coroutine frames leaked";
  }
  // Still usable afterwards.
  if (const int again = rt.block_on(scenario()); problem.empty() && again != scenario_value) {
    problem = "the runtime returned " + std::to_string(again) + " afterwards";
  }
  const bool ok = problem.empty();
  if (!ok) {
    std::fprintf(stderr, "allocation %lld (workers=%zu, recycle_frames=%d): %s\n",
                 static_cast<long long>(n), workers, recycle ? 1 : 0, problem.c_str());
  }
  if (ok && !fired) {
    ::_exit(not_reached);
  }
  return ok;
}

}  // namespace

TEST_SUITE("sched_alloc_failure") {
  TEST_CASE("bad_alloc at any allocation surfaces as an exception and loses nothing") {
    if (const char* trace = std::getenv("CORUN_ALLOC_TRACE"); trace != nullptr) {
      g_trace_at = std::strtoll(trace, nullptr, 10);
    }
    for (const bool recycle : {true, false}) {
      for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
        CAPTURE(recycle);
        CAPTURE(workers);
        int failures = 0;
        std::int64_t n = 0;
        std::int64_t last = 20'000;
        if (const char* only = std::getenv("CORUN_ALLOC_ONLY"); only != nullptr) {
          n = std::strtoll(only, nullptr, 10);
          last = n + 1;
        }
        for (; n < last && failures < 10; ++n) {
          const std::string ending = in_child_process([workers, recycle, n] {
            ::alarm(10);  // a hang ends the child with SIGALRM (14) instead of the whole run
            return run_with_failure_at(workers, recycle, n);
          });
          if (ending == "exit " + std::to_string(not_reached)) {
            break;  // the scenario makes fewer than n + 1 allocations: every site was tried
          }
          if (ending != "ok") {
            ++failures;
            FAIL_CHECK("allocation " << n << " (workers=" << workers
                                     << ", recycle_frames=" << recycle << ") failed: " << ending
                                     << "; backtrace of that allocation: CORUN_ALLOC_TRACE=" << n);
          }
        }
        MESSAGE("workers=" << workers << " recycle_frames=" << recycle
                           << ": injected a failure at each of " << n << " allocations");
        CHECK(n > 10);
        CHECK(failures == 0);
      }
    }
  }
}
