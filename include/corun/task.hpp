/// \file
/// `corun::task<T>`: the lazy, move-only coroutine type of corun.
#pragma once

#include "corun/detail/misuse.hpp"
#include "corun/detail/promise.hpp"

#include <coroutine>
#include <type_traits>
#include <utility>

namespace corun {

template <class T>
class join_handle;

namespace detail {
template <class>
inline constexpr bool dependent_false = false;
}  // namespace detail

/// A coroutine that produces a `T` (or throws).
///
/// Lazy: the body starts when the task is awaited (`co_await std::move(t)`, which runs it inline
/// in the awaiting task and yields its value or rethrows its exception) or spawned (`spawn(t)`,
/// which runs it concurrently as a child task). Awaiting uses symmetric transfer, so a chain of
/// awaits uses no stack per level.
///
/// Lifetime: the task owns its coroutine frame until it is awaited to completion or handed to
/// `spawn`; destroying a task that never started destroys the frame without running the body.
/// A task is not thread-safe; it is used by one task at a time.
template <class T = void>
class [[nodiscard("a corun::task does nothing until it is awaited or spawned")]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  /// An empty task; awaiting or spawning it throws `std::logic_error`.
  task() noexcept = default;
  task(task&& other) noexcept : m_frame(std::exchange(other.m_frame, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      reset();
      m_frame = std::exchange(other.m_frame, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  /// False for an empty or moved-from task.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_frame); }

  class awaiter {
   public:
    explicit awaiter(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}
    [[nodiscard]] bool await_ready() const {
      if (CORUN_UNLIKELY(!m_frame)) {
        detail::throw_logic_error("corun: co_await on an empty or moved-from corun::task");
      }
      return false;
    }
    [[nodiscard]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<> awaiting) const noexcept {
      m_frame.promise().m_continuation = awaiting;
      return detail::transfer_to(detail::this_thread_state().current, m_frame);
    }
    T await_resume() const { return m_frame.promise().take_result(); }

   private:
    std::coroutine_handle<promise_type> m_frame;
  };

  /// Runs the task inline in the awaiting task: `T v = co_await std::move(t);`.
  awaiter operator co_await() && noexcept { return awaiter{m_frame}; }

  template <class Self = task>
  void operator co_await() & {
    static_assert(detail::dependent_false<Self>,
                  "co_await on an lvalue corun::task: you probably need co_await std::move(t)");
  }

  /// Gives up ownership of the frame (used by `spawn`).
  [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
    return std::exchange(m_frame, {});
  }

 private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}

  void reset() noexcept {
    if (m_frame) {
      std::exchange(m_frame, {}).destroy();
    }
  }

  std::coroutine_handle<promise_type> m_frame;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>{std::coroutine_handle<task_promise>::from_promise(*this)};
}

template <class>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

}  // namespace detail

/// True for the specialisations of `corun::task`.
template <class X>
concept task_type = detail::is_task<std::remove_cvref_t<X>>::value;

}  // namespace corun
