/// \file
/// The model checks' side of the atomics shim (STYLE.md): `rl_atomic<T>` has the member functions
/// of `std::atomic<T>` that corun uses, implemented on Relacy's `rl::atomic<T>`, so a runtime
/// template such as `chase_lev_deque<T, Atomic>` runs unchanged under the model checker. Every
/// operation passes its caller's source location to Relacy, so the histories Relacy prints on a
/// failure name the lines of the runtime's code.
///
/// Include this after every standard or corun header: <relacy/relacy.hpp> replaces the global
/// `operator new`/`delete` (allocations during a simulation are tracked, leaks fail the run) and
/// defines macros (`new`, `delete`, `memory_order_relaxed`, ...) that would rewrite any header
/// included after it. They are undefined again below; the replaced operators stay.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

// clang-format off: Relacy after every other header, its macros undefined right after it.
#include <relacy/relacy.hpp>

#undef new
#undef delete
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef memory_order_relaxed
#undef memory_order_consume
#undef memory_order_acquire
#undef memory_order_release
#undef memory_order_acq_rel
#undef memory_order_seq_cst
// clang-format on

// Relacy replaces only the unsized `operator delete`s. C++14 sized deallocation makes `delete p`
// call the sized ones, whose libstdc++ versions may free Relacy's (offset) blocks with free():
// send them to Relacy's too. (Over-aligned new/delete are not replaced: they use the C heap on
// both sides.) Each model is a single translation unit, so these are defined once.
inline void operator delete(void* p, std::size_t /*size*/) noexcept { ::operator delete(p); }
inline void operator delete[](void* p, std::size_t /*size*/) noexcept { ::operator delete[](p); }

namespace corun::model {

/// Where an operation was called from, for Relacy's reports. (`std::source_location` is not
/// usable with clang 14 and libstdc++ 12; these builtins, as default arguments, give the caller's
/// position in both compilers.)
struct call_site {
  const char* function;
  const char* file;
  unsigned line;

  [[nodiscard]] static constexpr call_site current(const char* function = __builtin_FUNCTION(),
                                                   const char* file = __builtin_FILE(),
                                                   unsigned line = __builtin_LINE()) noexcept {
    return call_site{function, file, line};
  }
};

[[nodiscard]] constexpr rl::memory_order to_rl(std::memory_order mo) noexcept {
  switch (mo) {
    case std::memory_order_relaxed:
      return rl::mo_relaxed;
    case std::memory_order_consume:
      return rl::mo_consume;
    case std::memory_order_acquire:
      return rl::mo_acquire;
    case std::memory_order_release:
      return rl::mo_release;
    case std::memory_order_acq_rel:
      return rl::mo_acq_rel;
    case std::memory_order_seq_cst:
      break;
  }
  return rl::mo_seq_cst;
}

/// The failure order `std::atomic::compare_exchange_*` derives from a single order.
[[nodiscard]] constexpr std::memory_order cas_failure_order(std::memory_order mo) noexcept {
  if (mo == std::memory_order_acq_rel) {
    return std::memory_order_acquire;
  }
  if (mo == std::memory_order_release) {
    return std::memory_order_relaxed;
  }
  return mo;
}

[[nodiscard]] inline rl::debug_info info_at(const call_site& loc) noexcept {
  return rl::debug_info(loc.function, loc.file, loc.line);
}

/// `std::atomic<T>` for code under the model checker. Objects must be created and destroyed
/// inside a simulation (in a test suite, its `before()`, or a thread).
template <class T>
class rl_atomic {
 public:
  using location = call_site;

  /// Value-initialised, as `std::atomic<T>` is since C++20 (Relacy's default leaves the atomic
  /// uninitialised and fails any load of it).
  rl_atomic() noexcept : m_atomic(T{}) {}
  rl_atomic(T value) noexcept : m_atomic(value) {}  // NOLINT(google-explicit-constructor)
  rl_atomic(const rl_atomic&) = delete;
  rl_atomic& operator=(const rl_atomic&) = delete;

  [[nodiscard]] T load(std::memory_order mo = std::memory_order_seq_cst,
                       const location& loc = location::current()) const {
    return m_atomic.load(to_rl(mo), info_at(loc));
  }
  void store(T value, std::memory_order mo = std::memory_order_seq_cst,
             const location& loc = location::current()) {
    m_atomic.store(value, to_rl(mo), info_at(loc));
  }
  T exchange(T value, std::memory_order mo = std::memory_order_seq_cst,
             const location& loc = location::current()) {
    return m_atomic.exchange(value, to_rl(mo), info_at(loc));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure,
                               const location& loc = location::current()) {
    const rl::debug_info info = info_at(loc);
    return m_atomic.compare_exchange_strong(expected, desired, to_rl(success), info, to_rl(failure),
                                            info);
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order mo = std::memory_order_seq_cst,
                               const location& loc = location::current()) {
    return compare_exchange_strong(expected, desired, mo, cas_failure_order(mo), loc);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure, const location& loc = location::current()) {
    const rl::debug_info info = info_at(loc);
    return m_atomic.compare_exchange_weak(expected, desired, to_rl(success), info, to_rl(failure),
                                          info);
  }
  bool compare_exchange_weak(T& expected, T desired,
                             std::memory_order mo = std::memory_order_seq_cst,
                             const location& loc = location::current()) {
    return compare_exchange_weak(expected, desired, mo, cas_failure_order(mo), loc);
  }
  template <class U>
  T fetch_add(U delta, std::memory_order mo = std::memory_order_seq_cst,
              const location& loc = location::current()) {
    return m_atomic.fetch_add(delta, to_rl(mo), info_at(loc));
  }
  template <class U>
  T fetch_sub(U delta, std::memory_order mo = std::memory_order_seq_cst,
              const location& loc = location::current()) {
    return m_atomic.fetch_sub(delta, to_rl(mo), info_at(loc));
  }
  T fetch_or(T bits, std::memory_order mo = std::memory_order_seq_cst,
             const location& loc = location::current()) {
    return m_atomic.fetch_or(bits, to_rl(mo), info_at(loc));
  }
  T fetch_and(T bits, std::memory_order mo = std::memory_order_seq_cst,
              const location& loc = location::current()) {
    return m_atomic.fetch_and(bits, to_rl(mo), info_at(loc));
  }

 private:
  rl::atomic<T> m_atomic;
};

/// `std::atomic_thread_fence`.
inline void thread_fence(std::memory_order mo, const call_site& loc = call_site::current()) {
  rl::atomic_thread_fence(to_rl(mo), info_at(loc));
}

/// A lock guard for `rl::mutex` (whose lock/unlock take debug info).
class rl_lock_guard {
 public:
  explicit rl_lock_guard(rl::mutex& mutex, const call_site& loc = call_site::current())
      : m_mutex(mutex), m_loc(loc) {
    m_mutex.lock(info_at(m_loc));
  }
  rl_lock_guard(const rl_lock_guard&) = delete;
  rl_lock_guard& operator=(const rl_lock_guard&) = delete;
  ~rl_lock_guard() { m_mutex.unlock(info_at(m_loc)); }

 private:
  rl::mutex& m_mutex;
  call_site m_loc;
};

/// runtime/scheduler/futex.hpp for one futex word: `wait` blocks only while the word still holds
/// `expected` (checked under the lock `wake` takes, so no wake-up is lost between the check and
/// the sleep) and may return spuriously. A thread blocked forever makes Relacy report a
/// DEADLOCK once every thread is blocked or finished.
class rl_futex {
 public:
  void wait(const rl_atomic<std::uint32_t>& word, std::uint32_t expected,
            const call_site& loc = call_site::current()) {
    const rl_lock_guard guard(m_lock, loc);
    if (word.load(std::memory_order_relaxed, loc) == expected) {
      m_cv.wait(m_lock, info_at(loc));
    }
  }
  void wake(const call_site& loc = call_site::current()) {
    const rl_lock_guard guard(m_lock, loc);
    m_cv.notify_all(info_at(loc));
  }

 private:
  rl::mutex m_lock;
  rl::condition_variable m_cv;
};

/// Reads/writes an `rl::var` (a plain variable whose accesses Relacy checks for data races and
/// use after free) at the caller's location.
template <class T>
[[nodiscard]] T read(const rl::var<T>& var, const call_site& loc = call_site::current()) {
  return var(info_at(loc)).load();
}
template <class T>
void write(rl::var<T>& var, T value, const call_site& loc = call_site::current()) {
  var(info_at(loc)).store(value);
}

/// Search settings for one model.
struct run_options {
  rl::scheduler_type_e scheduler = rl::sched_random;
  rl::iteration_t iterations = 100000;
  unsigned context_bound = 1;  // for rl::sched_bound
};

inline rl::test_params make_params(const run_options& options, std::ostream& out) {
  rl::test_params params;
  params.search_type = options.scheduler;
  params.iteration_count = options.iterations;
  params.context_bound = options.context_bound;
  params.output_stream = &out;
  params.progress_stream = &out;
  params.progress_output_period = 1000000;  // seconds: no progress lines
  return params;
}

/// Collects what Relacy writes (its report of a failing execution) into a buffer allocated up
/// front. Relacy writes while a simulation context is current, when `operator new`/`delete` are
/// Relacy's: a growing std::stringbuf would hand a C-heap block to Relacy's `delete`. Text past
/// the capacity (4 MiB) is dropped.
class capture_buf : public std::streambuf {
 public:
  capture_buf() : m_text(std::size_t{4} << 20) {}

  [[nodiscard]] std::string str() const { return std::string(m_text.data(), m_size); }

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof() && m_size < m_text.size()) {
      m_text[m_size++] = traits_type::to_char_type(c);
    }
    return traits_type::not_eof(c);
  }

 private:
  std::vector<char> m_text;
  std::size_t m_size = 0;
};

/// The outcome of one search, as `expect_holds` and `expect_caught` report it.
struct search_result {
  bool held;
  rl::test_result_e result;
  rl::iteration_t executions;
  double seconds;
  std::string report;  // Relacy's report of the failing execution, if any
};

template <class Test>
search_result search(const run_options& options) {
  capture_buf buffer;
  std::ostream log(&buffer);
  rl::test_params params = make_params(options, log);
  const auto start = std::chrono::steady_clock::now();
  const bool held = rl::simulate<Test>(params);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return search_result{held, params.test_result, params.stop_iteration, elapsed.count(),
                       held ? std::string() : buffer.str()};
}

inline std::string describe(const run_options& options) {
  if (options.scheduler == rl::sched_full) {
    return "full search";
  }
  if (options.scheduler == rl::sched_bound) {
    return "context bound " + std::to_string(options.context_bound);
  }
  return "random, " + std::to_string(options.iterations) + " executions";
}

/// Runs a model that must hold; on failure prints Relacy's report (the failing interleaving,
/// every operation with its source line).
template <class Test>
bool expect_holds(const char* name, const run_options& options) {
  std::cout << "[model] " << name << " (" << describe(options) << "): " << std::flush;
  const search_result r = search<Test>(options);
  if (r.held) {
    std::cout << "ok, " << r.executions << " executions in " << r.seconds << " s" << std::endl;
    return true;
  }
  std::cout << "FAILED at execution " << r.executions << ": " << rl::test_result_str(r.result)
            << "\n"
            << r.report << std::endl;
  return false;
}

/// Runs a deliberately broken model: passes only if Relacy finds an execution failing with
/// `expected` (with any failure if `expected` is success). Prints the headline of Relacy's
/// report, or all of it with CORUN_MODEL_VERBOSE set in the environment.
template <class Test>
bool expect_caught(const char* name, const run_options& options,
                   rl::test_result_e expected = rl::test_result_success) {
  std::cout << "[model] " << name << " (" << describe(options) << "): " << std::flush;
  const search_result r = search<Test>(options);
  if (r.held) {
    std::cout << "NOT CAUGHT: no failing execution in " << r.executions << " executions"
              << std::endl;
    return false;
  }
  if (expected != rl::test_result_success && r.result != expected) {
    std::cout << "WRONG FAILURE " << rl::test_result_str(r.result) << ", expected "
              << rl::test_result_str(expected) << "\n"
              << r.report << std::endl;
    return false;
  }
  std::cout << "caught as expected at execution " << r.executions << ": "
            << rl::test_result_str(r.result) << std::endl;
  if (std::getenv("CORUN_MODEL_VERBOSE") != nullptr) {
    std::cout << r.report << std::endl;
  }
  return true;
}

/// `argv[1]`, if given, scales every iteration count (e.g. 10 for a long soak, 0.1 for a smoke
/// run).
inline double iteration_scale(int argc, char** argv) {
  if (argc < 2) {
    return 1.0;
  }
  const double scale = std::strtod(argv[1], nullptr);
  return scale > 0 ? scale : 1.0;
}

inline rl::iteration_t scaled(rl::iteration_t iterations, double scale) {
  const auto n = static_cast<rl::iteration_t>(static_cast<double>(iterations) * scale);
  return n > 0 ? n : 1;
}

}  // namespace corun::model
