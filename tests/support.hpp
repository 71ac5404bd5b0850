/// \file
/// Shared helpers of the corun tests: worker-count sweeps, sanitizer-aware sizes, a recorder for
/// `on_unhandled_exception`, small task building blocks, a stderr capture and a hang watchdog.
///
/// Every test case is also checked by the `live_frames` listener of tests/test_main.cpp: the
/// number of live coroutine frames must be back to its starting value when the case ends.
#pragma once

#include "corun/corun.hpp"

#include "corun/detail/frame_alloc.hpp"

#include <doctest/doctest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Sanitizers slow the runtime down 5-20x; the stress tests shrink their sizes under them.
#if defined(__SANITIZE_THREAD__)
#define CORUN_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORUN_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CORUN_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORUN_TEST_ASAN 1
#endif
#endif

namespace corun_test {

/// Worker counts every scheduling test sweeps: 4 and 8 oversubscribe the 2-core CI machines,
/// which is the point (preemption inside the protocols finds races).
inline constexpr std::size_t worker_counts[] = {1, 2, 4, 8};

/// Options for a runtime with `workers` threads, the other options at their defaults.
inline corun::runtime_options with_workers(std::size_t workers) {
  corun::runtime_options options;
  options.workers = workers;
  return options;
}

/// Options for a runtime with `workers` threads on virtual time (time tests: exact, instant).
inline corun::runtime_options with_virtual_time(std::size_t workers) {
  corun::runtime_options options = with_workers(workers);
  options.virtual_time = true;
  return options;
}

/// True when built with ThreadSanitizer.
inline constexpr bool under_tsan =
#ifdef CORUN_TEST_TSAN
    true;
#else
    false;
#endif

/// True when built with AddressSanitizer.
inline constexpr bool under_asan =
#ifdef CORUN_TEST_ASAN
    true;
#else
    false;
#endif

/// True when built without optimisation (`-O0`).
inline constexpr bool unoptimized =
#ifdef __OPTIMIZE__
    false;
#else
    true;
#endif

/// Factor applied to stress sizes: 1 in optimised builds, smaller under sanitizers or at -O0.
/// The environment variable `CORUN_STRESS_SCALE` (a positive number) overrides it.
inline double stress_scale() {
  if (const char* env = std::getenv("CORUN_STRESS_SCALE"); env != nullptr) {
    const double value = std::strtod(env, nullptr);
    if (value > 0) {
      return value;
    }
  }
  if (under_tsan) {
    return 0.1;
  }
  if (under_asan) {
    return unoptimized ? 0.05 : 0.1;
  }
  return unoptimized ? 0.25 : 1.0;
}

/// `full` scaled by `stress_scale()`, at least `minimum`.
inline std::uint64_t scaled(std::uint64_t full, std::uint64_t minimum = 1) {
  const auto value = static_cast<std::uint64_t>(static_cast<double>(full) * stress_scale());
  return value < minimum ? minimum : value;
}

/// Coroutine frames alive in the process.
inline std::int64_t live_frames() noexcept { return corun::detail::live_frames(); }

/// Lets `object` escape as far as the optimiser knows. clang at -O2 and above may elide the heap
/// frame of a task that is created and destroyed in one function without escaping (its
/// coroutine allocation elision): nothing is allocated then, so a test that counts the frame
/// of such a task makes it escape first.
inline void escape(const void* object) noexcept { asm volatile("" : : "r"(object) : "memory"); }

/// An error thrown by test tasks, carrying a number to tell failures apart.
class test_error : public std::runtime_error {
 public:
  explicit test_error(int id) : std::runtime_error("test_error " + std::to_string(id)), m_id(id) {}
  [[nodiscard]] int id() const noexcept { return m_id; }

 private:
  int m_id;
};

/// The id of a `test_error` held by `error`, or -1 for anything else.
inline int test_error_id(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const test_error& e) {
    return e.id();
  } catch (...) {
    return -1;
  }
}

/// The `test_error` ids of a group's direct members (-1 for other exceptions).
inline std::multiset<int> member_ids(const corun::exception_group& group) {
  std::multiset<int> ids;
  for (const std::exception_ptr& member : group.exceptions()) {
    ids.insert(test_error_id(member));
  }
  return ids;
}

/// The `test_error` ids of a group's leaves, nested groups flattened (-1 for others).
inline std::multiset<int> leaf_ids(const corun::exception_group& group) {
  std::multiset<int> ids;
  for (const std::exception_ptr& leaf : group.leaves()) {
    ids.insert(test_error_id(leaf));
  }
  return ids;
}

/// Every `on_unhandled_exception` report, recorded under a lock. Must outlive the runtime.
class failure_recorder {
 public:
  [[nodiscard]] corun::unhandled_exception_handler handler() {
    return [this](const corun::task_failure& failure) {
      const std::lock_guard<std::mutex> lock(m_lock);
      m_failures.push_back(failure);
    };
  }
  [[nodiscard]] std::vector<corun::task_failure> failures() const {
    const std::lock_guard<std::mutex> lock(m_lock);
    return m_failures;
  }
  [[nodiscard]] std::size_t count() const {
    const std::lock_guard<std::mutex> lock(m_lock);
    return m_failures.size();
  }

 private:
  mutable std::mutex m_lock;
  std::vector<corun::task_failure> m_failures;
};

/// Counts live instances: constructed in a task body, destroyed when the body unwinds.
class alive_guard {
 public:
  explicit alive_guard(std::atomic<int>& counter) noexcept : m_counter(counter) {
    m_counter.fetch_add(1, std::memory_order_relaxed);
  }
  alive_guard(const alive_guard&) = delete;
  alive_guard& operator=(const alive_guard&) = delete;
  ~alive_guard() { m_counter.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<int>& m_counter;
};

// ---- Building blocks ---------------------------------------------------------------------------

/// `prefix` followed by `n` ("c" and 2 give "c2"). Built by appending: g++ 12 -O3 sometimes
/// warns (-Wrestrict, a false positive) on `"c" + std::to_string(n)` inside coroutines.
inline std::string numbered_name(const char* prefix, long n) {
  std::string name = prefix;
  name += std::to_string(n);
  return name;
}

inline corun::task<int> value_of(int value) { co_return value; }

inline corun::task<void> yield_times(int times) {
  for (int i = 0; i < times; ++i) {
    co_await corun::this_task::yield();
  }
}

/// Yields until cancelled; the only way out is `corun::cancelled`.
inline corun::task<void> yield_forever() {
  for (;;) {
    co_await corun::this_task::yield();
  }
}

inline corun::task<int> fail_after(int yields, int id) {
  co_await yield_times(yields);
  throw test_error(id);
}

/// Spin until `flag` is set, yielding (never blocking the worker) between looks.
/// Yields, ignoring every cancellation, until `flag` is set; then returns `value`. Joining it
/// early is possible only through a cancel wake-up.
inline corun::task<int> stubborn_until(const std::atomic<bool>& flag, int value) {
  while (!flag.load(std::memory_order_acquire)) {
    try {
      co_await corun::this_task::yield();
    } catch (const corun::cancelled&) {
      // ignored on purpose
    }
  }
  co_return value;
}

inline corun::task<void> yield_until(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire)) {
    co_await corun::this_task::yield();
  }
}

/// Which of the two cancellation exceptions `error` holds: 1 for `cancelled` (the task itself
/// was cancelled), 2 for `task_cancelled` (the task it awaited was), 0 for anything else. For
/// tests that record what a join raised: `catch (...) { seen = cancellation_kind(
/// std::current_exception()); throw; }`.
inline int cancellation_kind(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const corun::cancelled&) {
    return 1;
  } catch (const corun::task_cancelled&) {
    return 2;
  } catch (...) {
    return 0;
  }
}

/// Busy-waits (on a foreign thread) until `flag` is set.
inline void wait_for_flag(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
}

/// Waits (on a foreign thread) until `flag` is set, for at most `limit`; returns whether it is.
/// For waits whose absence must fail a test instead of hanging it.
inline bool wait_until_set(const std::atomic<bool>& flag,
                           std::chrono::seconds limit = std::chrono::minutes(1)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!flag.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  return flag.load(std::memory_order_acquire);
}

/// The same for a task to be done.
inline bool wait_until_done(const corun::task_handle& handle,
                            std::chrono::seconds limit = std::chrono::minutes(1)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!handle.done() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  return handle.done();
}

/// Waits until the runtime counted `count` completed tasks (its stats are sums of relaxed
/// per-worker counters, so they may lag behind a completion the caller already saw). Used before
/// destroying a runtime whose tasks must fail rather than be cancelled by the shutdown.
inline void wait_for_completed(const corun::runtime& rt, std::uint64_t count) {
  while (rt.stats().completed < count) {
    std::this_thread::yield();
  }
}

/// Runs `body` in a forked child process and reports how it ended: "ok" if it returned true,
/// "false" if it returned false, "terminate" if it called `std::terminate`, else "signal N" or
/// "exit N". For code that may end the process (an exception escaping a `noexcept` function, a
/// handler that terminates). Call it while no runtime is alive: only the calling thread is forked.
template <class F>
inline std::string in_child_process(F body) {
  std::fflush(nullptr);  // or the child may write the parent's buffered output a second time
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Quietly: no doctest crash report from the child, a terminate is exit status 4.
    std::set_terminate([] { ::_exit(4); });
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(ok ? 0 : 2);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    return code == 0   ? "ok"
           : code == 2 ? "false"
           : code == 4 ? "terminate"
                       : "exit " + std::to_string(code);
  }
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status));
  }
  return "unknown";
}

// ---- Output capture -----------------------------------------------------------------------------

/// Redirects file descriptor 2 to a temporary file while alive: for tests of what the runtime
/// prints on stderr (unhandled failures, debug logs). Not thread-safe against other users of fd 2.
class stderr_capture {
 public:
  stderr_capture() : m_file(std::tmpfile()) {
    REQUIRE(m_file != nullptr);
    std::fflush(stderr);
    m_saved = ::dup(2);
    REQUIRE(m_saved >= 0);
    REQUIRE(::dup2(::fileno(m_file), 2) >= 0);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;
  ~stderr_capture() {
    restore();
    std::fclose(m_file);
  }
  /// Restores stderr and returns what was written to it meanwhile.
  std::string finish() {
    restore();
    std::string text;
    std::rewind(m_file);
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, m_file)) > 0) {
      text.append(buffer, n);
    }
    return text;
  }

 private:
  void restore() {
    if (m_saved >= 0) {
      std::fflush(stderr);
      ::dup2(m_saved, 2);
      ::close(m_saved);
      m_saved = -1;
    }
  }

  std::FILE* m_file;
  int m_saved = -1;
};

// ---- Watchdog ----------------------------------------------------------------------------------

/// Aborts the process with a message if no progress is reported for `limit`. Used by the stress
/// tests to turn a hang (a lost wake-up) into a diagnosable failure; never a timing assertion.
class watchdog {
 public:
  explicit watchdog(std::string what, std::chrono::seconds limit = std::chrono::seconds(30))
      : m_what(std::move(what)), m_limit(limit), m_thread([this] { run(); }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      const std::lock_guard<std::mutex> lock(m_lock);
      m_stop = true;
    }
    m_wake.notify_all();
    m_thread.join();
  }

  /// Reports progress: the next step has `limit` to finish.
  void progress(std::string step) {
    {
      const std::lock_guard<std::mutex> lock(m_lock);
      m_step = std::move(step);
      ++m_generation;
    }
    m_wake.notify_all();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(m_lock);
    while (!m_stop) {
      const std::uint64_t seen = m_generation;
      const bool moved =
          m_wake.wait_for(lock, m_limit, [&] { return m_stop || m_generation != seen; });
      if (!moved) {
        std::fprintf(stderr, "corun watchdog: '%s' made no progress for %lld s at step '%s'\n",
                     m_what.c_str(), static_cast<long long>(m_limit.count()), m_step.c_str());
        std::fflush(stderr);
        std::abort();
      }
    }
  }

  std::string m_what;
  std::chrono::seconds m_limit;
  std::mutex m_lock;
  std::condition_variable m_wake;
  std::string m_step = "start";
  std::uint64_t m_generation = 0;
  bool m_stop = false;
  std::thread m_thread;
};

}  // namespace corun_test
