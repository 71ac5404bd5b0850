/// \file
/// `bench::bare_task<T>`: the cheapest coroutine a task-per-node version can be built from, for
/// the `<workload>/bare_coroutine` rows. Lazy, awaited by symmetric transfer, its value in the
/// promise, frames from a free list of this thread, and nothing else: no runtime, no scheduling,
/// no cancellation, no exceptions (one ends the process), no handles. Awaiting one per node
/// costs what the coroutines themselves cost before any runtime adds its part: the README's
/// notes weigh DESIGN.md's targets against it. (By instruction count it is the cheapest; in
/// wall-clock time the code around it can still move a row by a few percent, as on nqueens.)
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <new>
#include <utility>

namespace bench {

namespace detail {

/// Frames are recycled per 16-byte size class, up to `bare_classes * 16` bytes; larger ones
/// come from `malloc`. A frame is freed on the thread that made it (everything runs on the
/// benchmark thread), so the lists need no synchronisation. What is left on them at thread exit
/// is kept for the process's lifetime: a benchmark binary's whole life is a few runs.
inline constexpr std::size_t bare_classes = 64;

struct bare_block {
  bare_block* next;
};

inline thread_local bare_block* t_bare_free[bare_classes] = {};

[[nodiscard]] inline void* bare_alloc(std::size_t size) {
  const std::size_t size_class = (size + 15) / 16;
  if (size_class < bare_classes && t_bare_free[size_class] != nullptr) {
    bare_block* block = t_bare_free[size_class];
    t_bare_free[size_class] = block->next;
    return block;
  }
  void* block = std::malloc(size_class * 16);
  if (block == nullptr) {
    throw std::bad_alloc();
  }
  return block;
}

inline void bare_free(void* frame, std::size_t size) noexcept {
  const std::size_t size_class = (size + 15) / 16;
  if (size_class < bare_classes) {
    auto* block = static_cast<bare_block*>(frame);
    block->next = t_bare_free[size_class];
    t_bare_free[size_class] = block;
    return;
  }
  std::free(frame);
}

}  // namespace detail

/// A lazy coroutine that yields a `T` (default-constructible and copyable) to whoever awaits it.
template <class T>
class bare_task {
 public:
  struct promise_type {
    T value{};
    std::coroutine_handle<> continuation;

    static void* operator new(std::size_t size) { return detail::bare_alloc(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
      detail::bare_free(frame, size);
    }
    bare_task get_return_object() noexcept {
      return bare_task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      [[nodiscard]] bool await_ready() const noexcept { return false; }
      [[nodiscard]] std::coroutine_handle<> await_suspend(
          std::coroutine_handle<promise_type> self) const noexcept {
        return self.promise().continuation;
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_value(T result) noexcept { value = std::move(result); }
    // A benchmark's tree throws nothing; should it, there is nobody to hand the exception to.
    void unhandled_exception() noexcept { std::terminate(); }
  };

  bare_task(bare_task&& other) noexcept : m_frame(std::exchange(other.m_frame, {})) {}
  bare_task(const bare_task&) = delete;
  bare_task& operator=(const bare_task&) = delete;
  bare_task& operator=(bare_task&&) = delete;
  ~bare_task() {
    if (m_frame) {
      m_frame.destroy();
    }
  }

  // Awaiting runs the task inline and resumes the awaiter when it returns.
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  [[nodiscard]] std::coroutine_handle<> await_suspend(
      std::coroutine_handle<> awaiting) const noexcept {
    m_frame.promise().continuation = awaiting;
    return m_frame;
  }
  [[nodiscard]] T await_resume() const noexcept { return m_frame.promise().value; }

  /// Runs the task on this thread to its end (it never suspends on anything but its children,
  /// which run inline) and returns its value.
  [[nodiscard]] T run() && {
    m_frame.promise().continuation = std::noop_coroutine();
    m_frame.resume();
    return m_frame.promise().value;
  }

 private:
  explicit bare_task(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}

  std::coroutine_handle<promise_type> m_frame;
};

}  // namespace bench
