/// \file
/// Keeps a task-making callable and its arguments alive as long as the task it makes.
#pragma once

#include "corun/task.hpp"

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

namespace corun::detail {

template <class F, class... Args>
using invoke_task_t = std::invoke_result_t<F&, Args&&...>;

/// `fn(args...)` returns a `corun::task`.
template <class F, class... Args>
concept task_factory = std::invocable<F&, Args&&...> && task_type<invoke_task_t<F, Args...>>;

/// A coroutine's parameters live in its frame, so a capturing coroutine lambda stored here stays
/// alive until the task it made has finished: its captures cannot dangle.
template <class F, class... Args>
invoke_task_t<F, Args...> call_owned(F fn, Args... args) {
  using value = typename invoke_task_t<F, Args...>::value_type;
  if constexpr (std::is_void_v<value>) {
    co_await std::invoke(fn, std::move(args)...);
  } else {
    co_return co_await std::invoke(fn, std::move(args)...);
  }
}

}  // namespace corun::detail
