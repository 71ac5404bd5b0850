/// \file
/// `as_completed`: the tasks of some handles, in the order they complete (asyncio's
/// `as_completed`, trio's and anyio's patterns of consuming results as they come).
#pragma once

#include "corun/async_generator.hpp"
#include "corun/join_handle.hpp"
#include "corun/merge.hpp"

#include <utility>
#include <vector>

namespace corun {

namespace detail {
/// Yields `handle` once its task completed.
inline async_generator<task_handle> when_done(task_handle handle) {
  co_await handle.wait();
  co_yield std::move(handle);
}
}  // namespace detail

/// Yields every handle of `handles` once its task (and all its children) completed, in
/// completion order; the tasks keep running, and nothing is taken from them: look at
/// `failed()`, `exception()`, `rethrow()`... of each handle yielded (a `join_handle` converts to
/// a `task_handle` that shares the task, so its result can still be taken through it).
///
///     auto done = corun::as_completed({a, b, c});
///     while (std::optional<corun::task_handle> h = co_await done.next()) { ... }
///
/// Waiting runs in one child task per handle (through `merge`); destroying the generator early
/// cancels those waits (never the tasks themselves), which then end before the consuming task
/// completes. Invalid handles are a
/// `std::logic_error` at the call. `next()` is a suspension point: a cancelled consumer gets
/// `corun::cancelled`.
inline async_generator<task_handle> as_completed(std::vector<task_handle> handles) {
  std::vector<async_generator<task_handle>> sources;
  sources.reserve(handles.size());
  for (task_handle& handle : handles) {
    if (!handle.valid()) {
      throw std::logic_error("corun: as_completed of an empty task_handle");
    }
    sources.push_back(detail::when_done(std::move(handle)));
  }
  return merge(std::move(sources));
}

}  // namespace corun
