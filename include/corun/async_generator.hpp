/// \file
/// `corun::async_generator<T>`: a lazy coroutine that `co_yield`s values to the task consuming
/// it, and may `co_await` any corun awaitable in between (cppcoro's `async_generator`).
///
/// How it runs. The generator is not a task: its body runs as part of the task that consumes it.
/// `co_await gen.next()` records the consumer's coroutine and transfers to the generator's frame
/// (symmetric transfer, bounded like every corun transfer by `detail::transfer_to`); the body runs
/// until its next `co_yield` or its end, which transfer back to the consumer. While the body runs,
/// `detail::tl_thread.current` is the consumer's task, so whatever the body awaits (a join, an
/// event, a sleep, a nested task or generator) suspends and cancels the consumer's task, and
/// resumes the generator's frame inside it when it completes.
#pragma once

#include "corun/task.hpp"

#include "corun/detail/frame_alloc.hpp"
#include "corun/detail/task_node.hpp"
#include "corun/detail/waiter.hpp"

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace corun {

template <class T>
class async_generator;

namespace detail {

/// The part of an async generator's promise that does not depend on `T`: frame allocation, the
/// consumer to go back to, the body's exception and the suspension points that go back.
class generator_promise_base {
 public:
  generator_promise_base() noexcept = default;
  generator_promise_base(const generator_promise_base&) = delete;
  generator_promise_base& operator=(const generator_promise_base&) = delete;

  // Through corun's frame hooks, so the live-frame leak check counts generator frames too.
  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* block, std::size_t size) noexcept { frame_free(block, size); }

  /// Generators are lazy: the body starts at the first `next()`.
  std::suspend_always initial_suspend() const noexcept { return {}; }

  /// Suspends the body (at a `co_yield`, or at its end) and continues the consumer, in the same
  /// task.
  class to_consumer {
   public:
    explicit to_consumer(generator_promise_base& promise) noexcept : m_promise(promise) {}
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    [[nodiscard]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<> /*body*/) const noexcept {
      m_promise.m_running = false;
      return transfer_to(this_thread_state().current, m_promise.m_consumer);
    }
    void await_resume() const noexcept {}

   private:
    generator_promise_base& m_promise;
  };

  to_consumer final_suspend() noexcept { return to_consumer{*this}; }
  void unhandled_exception() noexcept { m_error = std::current_exception(); }
  void return_void() const noexcept {}

  /// The coroutine awaiting `next()`; written by `next()` before it resumes the body.
  std::coroutine_handle<> m_consumer;
  /// What the body ended with; rethrown (once) by `next()`.
  std::exception_ptr m_error;
  /// The body runs (between a `next()` and its `co_yield` or end): a second `next()` is a bug.
  bool m_running = false;
};

/// The typed layer: where the yielded value is.
template <class T>
class generator_promise final : public generator_promise_base {
 public:
  async_generator<T> get_return_object() noexcept;

  /// `co_yield std::move(v);` or `co_yield make();`: the consumer moves the value out of the
  /// body's object, which lives until the body resumes (a temporary lives to the end of the
  /// full-expression holding the `co_yield`). Also takes values convertible to `T`.
  to_consumer yield_value(T&& value) noexcept {
    m_value = std::addressof(value);
    return to_consumer{*this};
  }

  /// `co_yield v;` for an lvalue: the consumer gets a copy, `v` is left alone.
  to_consumer yield_value(const T& value) noexcept(std::is_nothrow_copy_constructible_v<T>) {
    if constexpr (std::is_copy_constructible_v<T>) {
      m_copy.emplace(value);
      m_value = std::addressof(*m_copy);
    } else {
      static_assert(dependent_false<T>,
                    "co_yield of an lvalue of a move-only type: you probably need "
                    "co_yield std::move(value)");
    }
    return to_consumer{*this};
  }

  /// The value of the `co_yield` the body is suspended at.
  [[nodiscard]] T& value() const noexcept { return *m_value; }

 private:
  T* m_value = nullptr;
  /// The copy of an lvalue yielded.
  std::optional<T> m_copy;
};

}  // namespace detail

/// A lazy, move-only coroutine producing a sequence of `T`: `co_yield value;` in the body hands
/// a value to the consumer, and the body may `co_await` any corun awaitable (a task, a join
/// handle, an event, another generator's `next()`...).
///
/// Consuming it — corun has no asynchronous range-for in C++20, so the idiom is:
///
///     while (std::optional<T> v = co_await gen.next()) {
///       use(*v);
///     }
///
/// `next()` runs the body, inline in the consuming task, until its next `co_yield` (returning
/// the value) or its end (returning an empty optional, also on every later call). An exception
/// leaving the body is rethrown by that `next()`; the generator has ended then.
///
/// `T`: an object type, not cv-qualified (the consumer gets its own `T`, so `const` would say
/// nothing); move-only types work (`co_yield std::move(v);`). References are not supported:
/// `std::optional<T&>` does not exist in C++20, and a reference handed across a suspension point
/// dangles too easily. Yield `std::reference_wrapper<U>` or a pointer to share an object whose
/// lifetime the consumer knows.
///
/// Cancellation: `next()` is a suspension point. If the consuming task is cancelled when it
/// calls `next()`, it throws `corun::cancelled` and the body is not resumed (it stays where it
/// was; destroying the generator destroys it there). Inside the body the consuming task is the
/// current task, so its cancellation reaches the body at the body's own suspension points, and a
/// `cancelled` escaping the body comes out of `next()`.
///
/// Lifetime and threads: the generator owns its frame; destroying it destroys the frame where it
/// is suspended (at a `co_yield`, or not started), running the destructors of the body's locals
/// — never while a `next()` is in progress. Like `task`, it is used by one task at a time; it may
/// be handed to another task between `next()`s. Awaiting `next()` while another `next()` of the
/// same generator is in progress (from the body itself, or from another task) throws
/// `std::logic_error`. Deep synchronous use (millions of values yielded without suspending)
/// uses bounded stack, as task chains do.
template <class T>
class [[nodiscard("an async_generator does nothing until co_await gen.next()")]] async_generator {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && std::same_as<T, std::remove_cv_t<T>>,
                "corun::async_generator<T>: T must be a non-const object type; for references "
                "yield std::reference_wrapper<U> or a pointer");

 public:
  using promise_type = detail::generator_promise<T>;
  using value_type = T;

  /// An empty generator; awaiting its `next()` throws `std::logic_error`.
  async_generator() noexcept = default;
  async_generator(async_generator&& other) noexcept : m_frame(std::exchange(other.m_frame, {})) {}
  async_generator& operator=(async_generator&& other) noexcept {
    if (this != &other) {
      reset();
      m_frame = std::exchange(other.m_frame, {});
    }
    return *this;
  }
  async_generator(const async_generator&) = delete;
  async_generator& operator=(const async_generator&) = delete;
  ~async_generator() { reset(); }

  /// False for an empty or moved-from generator.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_frame); }

  /// Awaitable returned by `next()`.
  class next_awaiter {
   public:
    explicit next_awaiter(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}
    [[nodiscard]] bool await_ready() {
      if (!m_frame) {
        throw std::logic_error("corun: next() on an empty or moved-from corun::async_generator");
      }
      m_cancelled = detail::checkpoint_or_ready("async_generator::next");
      if (m_cancelled) {
        return true;
      }
      if (m_frame.promise().m_running) {
        throw std::logic_error(
            "corun: async_generator::next() while another next() of the same generator is in "
            "progress");
      }
      return m_frame.done();
    }
    [[nodiscard]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<> consumer) const noexcept {
      promise_type& promise = m_frame.promise();
      promise.m_consumer = consumer;
      promise.m_running = true;
      // The body runs in the consumer's task: it stays the current task.
      return detail::transfer_to(detail::this_thread_state().current, m_frame);
    }
    std::optional<T> await_resume() const {
      if (m_cancelled) {
        detail::throw_cancelled_current();
      }
      promise_type& promise = m_frame.promise();
      if (!m_frame.done()) {
        return std::optional<T>(std::in_place, std::move(promise.value()));
      }
      if (promise.m_error) {
        std::rethrow_exception(std::exchange(promise.m_error, nullptr));
      }
      return std::nullopt;
    }

   private:
    std::coroutine_handle<promise_type> m_frame;
    bool m_cancelled = false;
  };

  /// `co_await gen.next()`: the next value, or an empty optional once the body has ended.
  /// Rethrows the body's exception; throws `corun::cancelled` if the consuming task is
  /// cancelled (without resuming the body); `std::logic_error` outside a task, on an empty
  /// generator, or while another `next()` is in progress.
  [[nodiscard]] next_awaiter next() noexcept { return next_awaiter{m_frame}; }

 private:
  friend promise_type;
  explicit async_generator(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}

  void reset() noexcept {
    if (m_frame) {
      std::exchange(m_frame, {}).destroy();
    }
  }

  std::coroutine_handle<promise_type> m_frame;
};

namespace detail {

template <class T>
async_generator<T> generator_promise<T>::get_return_object() noexcept {
  return async_generator<T>{std::coroutine_handle<generator_promise>::from_promise(*this)};
}

}  // namespace detail

}  // namespace corun
