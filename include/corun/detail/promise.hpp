/// \file
/// The coroutine promise of `corun::task<T>`: a non-template base (the task node, the
/// continuation, the final awaiter, frame allocation) plus a thin typed layer holding the result,
/// so the compiler specialises as little as possible per `T`.
#pragma once

#include "corun/detail/frame_alloc.hpp"
#include "corun/detail/task_node.hpp"

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace corun {
template <class T>
class task;
}  // namespace corun

namespace corun::detail {

class promise_base : public task_node {
 public:
  promise_base() noexcept = default;

  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* block, std::size_t size) noexcept { frame_free(block, size); }

  /// Tasks are lazy: nothing runs until the task is awaited or spawned.
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    [[nodiscard]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<Promise> self) const noexcept {
      promise_base& promise = self.promise();
      if (promise.m_rt == nullptr) {
        // Awaited inline: continue the awaiter, which runs in the same spawned task.
        return transfer_to(this_thread_state().current, promise.m_continuation);
      }
      return finish_spawned(promise);
    }
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept {
    m_error = std::current_exception();
    m_threw_cancelled = current_exception_is_cancelled();
  }

  /// The coroutine awaiting this task inline.
  std::coroutine_handle<> m_continuation;
};

/// Holds the value of a completed task (or the address of a referenced object).
template <class T>
class result_slot {
 public:
  result_slot() noexcept {}
  result_slot(const result_slot&) = delete;
  result_slot& operator=(const result_slot&) = delete;
  ~result_slot() {
    if (m_has_value) {
      std::destroy_at(std::addressof(m_value));
    }
  }
  template <class U>
  void set(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    std::construct_at(std::addressof(m_value), std::forward<U>(value));
    m_has_value = true;
  }
  [[nodiscard]] T take() noexcept(std::is_nothrow_move_constructible_v<T>) {
    return std::move(m_value);
  }

 private:
  union {
    T m_value;
  };
  bool m_has_value = false;
};

template <class T>
class result_slot<T&> {
 public:
  void set(T& value) noexcept { m_ptr = std::addressof(value); }
  [[nodiscard]] T& take() noexcept { return *m_ptr; }

 private:
  T* m_ptr = nullptr;
};

template <class T>
class task_promise final : public promise_base {
 public:
  // `frame_of` finds the frame from the node; over-aligned frames are not supported anyway (g++
  // 12 ignores a promise's over-alignment when it allocates the frame).
  static_assert(alignof(result_slot<T>) <= task_promise_align,
                "corun::task<T>: T must not be over-aligned (alignof(T) <= 16)");

  task<T> get_return_object() noexcept;

  template <class U = T>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(
      noexcept(std::declval<result_slot<T>&>().set(std::forward<U>(value)))) {
    m_result.set(std::forward<U>(value));
  }

  /// The value, or rethrows the exception the body ended with.
  T take_result() {
    if (m_error) {
      std::rethrow_exception(m_error);
    }
    return m_result.take();
  }

 private:
  result_slot<T> m_result;
};

template <>
class task_promise<void> final : public promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take_result() {
    if (m_error) {
      std::rethrow_exception(m_error);
    }
  }
};

}  // namespace corun::detail
