/// \file
/// Services: background work that can be started and stopped (frequenz.core.asyncio's
/// `Service` and `ServiceBase`): the `service` concept, `service_base` to derive from, and
/// `with_service`, its scoped form (Python's `async with service:`).
#pragma once

#include "corun/join_handle.hpp"
#include "corun/persistent_task_group.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"
#include "corun/task_creator.hpp"

#include "corun/detail/owned_call.hpp"

#include <concepts>
#include <exception>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace corun {

/// A service running in the background: `start()` launches its tasks, `cancel(msg)` requests
/// their cancellation, `co_await stop(msg)` cancels and waits for them, `co_await wait()` waits
/// for them to end on their own, `is_running()`, `unique_id()`. `service_base` implements it;
/// anything else with these members works with `with_service` too.
template <class S>
concept service = requires(S& s, const S& cs, std::string message) {
  s.start();
  s.cancel(message);
  { s.stop(message) } -> std::same_as<task<void>>;
  { s.wait() } -> std::same_as<task<void>>;
  { cs.is_running() } -> std::convertible_to<bool>;
  { cs.unique_id() } -> std::convertible_to<std::string_view>;
};

/// The base of a service: derive, override `task<void> main()`, and `start()` runs it in the
/// service's `persistent_task_group` (`task_group()`), where `main` may `spawn` more tasks.
///
///     class clock final : public corun::service_base {
///      public:
///       using service_base::service_base;
///      private:
///       corun::task<void> main() override {
///         for (;;) { co_await corun::sleep_for(1s); tick(); }
///       }
///     };
///     clock c("clock");
///     co_await corun::with_service(c, [](clock&) -> corun::task<void> { ... });
///
/// A service is running while any of its tasks is. Its tasks are named `"<unique_id>:<name>"`
/// (`main` is `"<unique_id>:main"`). Where the service lives, and so what waits for it and
/// what cancelling cancels it, is its group's business: see `persistent_task_group` (the
/// default task creator is `current_spawner()`, the task constructing the service).
///
/// Destruction: a running service's tasks are cancelled (the group's destructor), and the task
/// creator waits for them, but the destructor cannot: by then the derived part of the object
/// is already destroyed while `main` may still run. So `co_await stop()` (or use
/// `with_service`) before destroying a service; debug builds report a running service's
/// destruction on stderr.
///
/// Thread safety: as `persistent_task_group`; `start()` from one task at a time. Not copyable
/// or movable.
class service_base {
 public:
  /// A service living in the running task (`std::logic_error` outside a task). An empty
  /// `unique_id` becomes a generated unique hex id, shared with its task group.
  explicit service_base(std::string unique_id = {}) : m_group(std::move(unique_id)) {}
  /// A service whose tasks live where `creator` puts them (see `persistent_task_group`).
  template <class Creator>
    requires task_creator<std::remove_cvref_t<Creator>>
  service_base(std::string unique_id, Creator&& creator)
      : m_group(std::move(unique_id), std::forward<Creator>(creator)) {}
  /// See the class comment.
  virtual ~service_base();
  service_base(const service_base&) = delete;
  service_base& operator=(const service_base&) = delete;

  /// Spawns `main()` in the task group, named `"<unique_id>:main"`; a no-op while the service
  /// is running. Throws what `persistent_task_group::spawn` throws.
  void start();

  /// Requests cancellation of every running task of the service. Thread-safe.
  void cancel(const std::string& message = {}) { m_group.cancel(message); }

  /// Cancels the service and waits for all its tasks; throws an `exception_group` of their
  /// failures, cancellations left out (`persistent_task_group::stop`). A no-op when the
  /// service is not running and no failure is left to report (a crashed service reports it).
  [[nodiscard]] task<void> stop(std::string message = {}) {
    return m_group.stop(std::move(message));
  }

  /// Waits until every task of the service ended on its own; throws an `exception_group` of
  /// their failures, where a task that ended cancelled counts as one
  /// (`persistent_task_group::join`). A suspension point.
  [[nodiscard]] task<void> wait() { return m_group.join(); }

  /// Whether any task of the service is running (snapshot).
  [[nodiscard]] bool is_running() const { return m_group.is_running(); }

  [[nodiscard]] const std::string& unique_id() const noexcept { return m_group.unique_id(); }

  /// The group the service's tasks run in (`as_completed`, `tasks`, ...).
  [[nodiscard]] persistent_task_group& task_group() noexcept { return m_group; }
  [[nodiscard]] const persistent_task_group& task_group() const noexcept { return m_group; }

  /// Starts a task of the service: `task_group().spawn(...)`.
  template <class T>
  join_handle<T> spawn(task<T> t, spawn_options options = {}) {
    return m_group.spawn(std::move(t), std::move(options));
  }

  /// Spawns `fn(args...)`; the callable and the arguments live as long as the task.
  template <class F, class... Args>
    requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(F&& fn, Args&&... args) {
    return m_group.spawn(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// As above, with options.
  template <class F, class... Args>
    requires detail::task_factory<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(spawn_options options, F&& fn, Args&&... args) {
    return m_group.spawn(std::move(options), std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Prints `service<unique_id=ID, running=true|false, tasks=N>` (a snapshot; `tasks` counts
  /// the running and the unacknowledged finished ones).
  friend std::ostream& operator<<(std::ostream& out, const service_base& svc);

 protected:
  /// The service's logic, run by `start()` as a task of the service.
  [[nodiscard]] virtual task<void> main() = 0;

 private:
  persistent_task_group m_group;
};

namespace detail {

/// `body(svc)` or `body()` returns a `corun::task`.
template <class F, class S>
concept service_body = (std::invocable<F&, S&> && task_type<std::invoke_result_t<F&, S&>>) ||
                       (std::invocable<F&> && task_type<std::invoke_result_t<F&>>);

template <class F, class S>
[[nodiscard]] auto invoke_service_body(F& body, S& svc) {
  if constexpr (std::invocable<F&, S&>) {
    return std::invoke(body, svc);
  } else {
    return std::invoke(body);
  }
}

template <class F, class S>
using service_body_value_t =
    typename decltype(invoke_service_body(std::declval<F&>(), std::declval<S&>()))::value_type;

/// Throws what `with_service` throws for these outcomes, if anything (see there).
void settle_with_service(std::exception_ptr body_error, std::exception_ptr stop_error);

}  // namespace detail

/// Async RAII for a service (Python's `async with service:`): `start()`s `svc`, runs
/// `body(svc)` (or `body()`), then always `co_await svc.stop(...)`, also when the body threw or
/// was cancelled, and returns the body's value.
///
/// Outcomes (stop's failures are those of `service::stop`, an `exception_group`):
/// - the body returned, stop succeeded: the value;
/// - the body returned, stop failed: stop's `exception_group`;
/// - the body threw, stop succeeded: the body's exception, unchanged (a `cancelled` stays a
///   `cancelled`);
/// - the body failed and so did stop: one `exception_group`, the body's exception first, then
///   stop's members (flattened), as `with_task_group` does;
/// - the body was cancelled and stop failed: stop's `exception_group`; the caller is still
///   cancelled and sees it at its next suspension point (the failures are not lost).
/// `service_base::stop` is not interrupted by the caller's cancellation, so the service's tasks
/// have ended when this returns. `body` is moved into this coroutine's frame, so its captures
/// live as long as the call; `svc` must outlive it.
template <service S, class F>
  requires detail::service_body<F, S>
task<detail::service_body_value_t<F, S>> with_service(S& svc, F body) {
  using value_type = detail::service_body_value_t<F, S>;
  svc.start();
  std::exception_ptr body_error;
  std::optional<std::conditional_t<std::is_void_v<value_type>, bool, value_type>> value;
  try {
    // Named, not awaited as a temporary: g++ 12 destroys such a temporary twice (README).
    task<value_type> run = detail::invoke_service_body(body, svc);
    if constexpr (std::is_void_v<value_type>) {
      co_await std::move(run);
    } else {
      value.emplace(co_await std::move(run));
    }
  } catch (...) {
    body_error = std::current_exception();
  }
  std::exception_ptr stop_error;
  try {
    task<void> stopping = svc.stop(std::string("corun: with_service: the body ended"));
    co_await std::move(stopping);
  } catch (...) {
    stop_error = std::current_exception();
  }
  detail::settle_with_service(std::move(body_error), std::move(stop_error));
  if constexpr (!std::is_void_v<value_type>) {
    co_return std::move(*value);
  }
}

}  // namespace corun
