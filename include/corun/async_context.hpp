/// \file
/// `corun::async_context<T>`, `with` and `with_all`: async resources written as one coroutine
/// that sets up, `co_yield`s the resource and tears down (aiotools' `actxmgr` and `actxgroup`,
/// Python's `asynccontextmanager`).
///
/// \code
///   corun::async_context<connection> open(std::string host) {
///     connection c = co_await connect(host);
///     std::exception_ptr failed;
///     try {
///       co_yield c;                  // the body of `with` runs here
///     } catch (...) {
///       failed = std::current_exception();  // the body's exception, rethrown at co_yield
///     }
///     if (failed) {
///       co_await c.abort();          // (C++ allows no co_await inside a catch block)
///       std::rethrow_exception(failed);
///     }
///     co_await c.close();
///   }
///
///   co_await corun::with(open("db"), [&](connection& c) -> corun::task<void> {
///     co_await c.query("...");
///   });
/// \endcode
///
/// How it runs. Like `async_generator`, a context is not a task: its frame runs inside the task
/// that enters it (`with`'s caller, or one child task per context for `with_all`), so whatever
/// it awaits suspends and is cancelled with that task. The teardown after `co_yield` runs
/// shielded from outside cancellation (`shield`: a child task that the caller's cancellation
/// does not reach), because async RAII that a cancel could cut short is no RAII: a body ended by
/// `corun::cancelled` still gets its `co_await c.close()`. A deadline opened inside the teardown
/// still bounds it.
#pragma once

#include "corun/shield.hpp"
#include "corun/task.hpp"

#include "corun/detail/frame_alloc.hpp"
#include "corun/detail/task_node.hpp"

#include <array>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corun {

template <class T>
class async_context;

namespace detail {

struct context_access;

/// The part of a context's promise that does not depend on `T`: frame allocation, where it
/// stands, the task to go back to, and the exceptions going in and out.
class context_promise_base {
 public:
  context_promise_base() noexcept = default;
  context_promise_base(const context_promise_base&) = delete;
  context_promise_base& operator=(const context_promise_base&) = delete;

  // Through corun's frame hooks, so the live-frame leak check counts context frames too.
  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* block, std::size_t size) noexcept { frame_free(block, size); }

  /// Lazy: the setup runs when the context is entered.
  std::suspend_always initial_suspend() const noexcept { return {}; }

  /// The final suspension: goes back to whoever entered or exited the context, in the same
  /// task (the frame is finished: nothing to rethrow).
  class at_end {
   public:
    explicit at_end(context_promise_base& promise) noexcept : m_promise(promise) {}
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    [[nodiscard]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<> /*context*/) const noexcept {
      return transfer_to(this_thread_state().current, m_promise.m_caller);
    }
    void await_resume() const noexcept {}

   protected:
    context_promise_base& m_promise;
  };

  /// `co_yield`: suspends as `at_end` does; resumed for the teardown, it rethrows the body's
  /// exception there, if any.
  class to_caller : public at_end {
   public:
    using at_end::at_end;
    void await_resume() const {
      if (m_promise.m_injected) {
        std::rethrow_exception(std::exchange(m_promise.m_injected, nullptr));
      }
    }
  };

  at_end final_suspend() noexcept { return at_end{*this}; }
  void unhandled_exception() noexcept { m_error = std::current_exception(); }
  void return_void() const noexcept {}

  /// Where the context stands; each step checks it, so misuse is a `std::logic_error`, not a
  /// resumption of a running or finished frame.
  enum class phase : std::uint8_t { fresh, entering, entered, exiting, done };

  phase m_phase = phase::fresh;
  /// This frame (set by `get_return_object`, so the untyped code can resume it).
  std::coroutine_handle<> m_self;
  /// The coroutine that entered or is exiting the context.
  std::coroutine_handle<> m_caller;
  /// What the context's frame ended with (its setup or teardown threw).
  std::exception_ptr m_error;
  /// The body's exception, rethrown at `co_yield` when the teardown starts.
  std::exception_ptr m_injected;
  /// The yielded value (`T*`; unused for `async_context<void>`).
  void* m_value = nullptr;
};

/// `co_await enter_awaiter{p}`: runs the setup until `co_yield`. Throws `cancelled` without
/// starting it if the running task is cancelled, the setup's exception if it threw, and
/// `std::logic_error` if the context ended without yielding or was entered before.
class enter_awaiter {
 public:
  explicit enter_awaiter(context_promise_base& promise) noexcept : m_promise(promise) {}
  [[nodiscard]] bool await_ready();
  [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept;
  void await_resume();

 private:
  context_promise_base& m_promise;
  bool m_cancelled = false;
};

/// `co_await exit_awaiter{p, error}`: resumes an entered context for its teardown (its
/// `co_yield` rethrowing `error` if there is one) and returns what the context ended with:
/// nothing if it returned, else its exception (`error` itself if it let it through). A context
/// that yields a second time ends with `std::logic_error`. Not a cancellation point: the
/// teardown always runs.
class exit_awaiter {
 public:
  exit_awaiter(context_promise_base& promise, std::exception_ptr error) noexcept
      : m_promise(promise), m_error(std::move(error)) {}
  [[nodiscard]] bool await_ready();
  [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept;
  [[nodiscard]] std::exception_ptr await_resume();

 private:
  context_promise_base& m_promise;
  std::exception_ptr m_error;
};

/// The teardown as a task of its own, so that `with` can shield it; returns the context's
/// ending (see `exit_awaiter`).
task<std::exception_ptr> exit_context(context_promise_base& promise, std::exception_ptr error);

/// What `with` throws (or not) once the teardown ended with `ending`, the body having thrown
/// `body_error` (null if it returned); `value_body`: the body returns a value.
void settle_with(const std::exception_ptr& body_error, std::exception_ptr ending, bool value_body);

/// `with_all`'s two halves, over the untyped promises. `enter_all` enters every context
/// concurrently, each in a child task, and waits for all; if any setup failed, it exits those
/// that entered (their `co_yield` rethrowing the failure) and throws. `exit_all` runs every
/// teardown concurrently, shielded, and throws what `with_all` throws (see there).
task<void> enter_all(std::span<context_promise_base* const> contexts);
task<void> exit_all(std::span<context_promise_base* const> contexts, std::exception_ptr body_error,
                    bool value_body);

template <class T>
class context_promise final : public context_promise_base {
 public:
  async_context<T> get_return_object() noexcept;

  /// `co_yield resource;`: the body gets a reference to the context's own object, which it
  /// shares with the teardown (Python's `yield self.resource`).
  to_caller yield_value(T& value) noexcept {
    m_value = std::addressof(value);
    return to_caller{*this};
  }
  /// `co_yield make();` or `co_yield std::move(v);`: the object lives until the teardown
  /// starts (a temporary lives to the end of the full-expression holding the `co_yield`).
  to_caller yield_value(T&& value) noexcept {
    m_value = std::addressof(value);
    return to_caller{*this};
  }
  /// A `const` lvalue: the body gets a copy it may change.
  to_caller yield_value(const T& value) {
    if constexpr (std::is_copy_constructible_v<T>) {
      m_copy.emplace(value);
      m_value = std::addressof(*m_copy);
    } else {
      static_assert(dependent_false<T>,
                    "co_yield of a const lvalue of a move-only type in an async_context");
    }
    return to_caller{*this};
  }

  [[nodiscard]] T& value() const noexcept { return *static_cast<T*>(m_value); }

 private:
  std::optional<T> m_copy;
};

/// A context with nothing to hand over: `co_yield {};`.
template <>
class context_promise<void> final : public context_promise_base {
 public:
  async_context<void> get_return_object() noexcept;
  to_caller yield_value(std::monostate /*nothing*/) noexcept { return to_caller{*this}; }
};

/// `body(value)` (or `body()` for `async_context<void>`) returns a `corun::task`.
template <class F, class T>
struct context_body_result {
  using type = std::invoke_result_t<F&, T&>;
};
template <class F>
struct context_body_result<F, void> {
  using type = std::invoke_result_t<F&>;
};

template <class F, class T>
concept context_body_for =
    (std::is_void_v<T> ? std::invocable<F&> : std::invocable<F&, std::add_lvalue_reference_t<T>>);

template <class F, class... Ts>
concept context_group_body = (!std::is_void_v<Ts> && ...) && std::invocable<F&, Ts&...> &&
                             task_type<std::invoke_result_t<F&, Ts&...>>;

/// What the body of `with_all(std::vector<async_context<T>>, body)` is given.
template <class T>
using context_values = std::vector<std::reference_wrapper<T>>;

template <class F, class T>
concept context_vector_body = !std::is_void_v<T> && std::invocable<F&, context_values<T>&> &&
                              task_type<std::invoke_result_t<F&, context_values<T>&>>;

/// Lets `with` and `with_all` reach a context's promise without making it public.
struct context_access {
  template <class T>
  [[nodiscard]] static context_promise<T>& promise(async_context<T>& ctx);
};

}  // namespace detail

/// A coroutine that sets up a resource, hands it over with `co_yield value;` (`co_yield {};`
/// for `async_context<void>`), and tears it down when resumed: aiotools' `actxmgr`. Enter it with
/// `corun::with` or `corun::with_all`; a context is used once.
///
/// In the context's body:
/// - `co_yield` comes back when the user of the resource is done. If that user threw, the
///   `co_yield` expression rethrows its exception, so the context's try/catch and RAII guards
///   see it (rollback instead of commit). Catching it without rethrowing swallows it; throwing
///   another exception replaces it (wrap it with `std::throw_with_nested` to keep both).
/// - `co_await` anything; before `co_yield` that runs in the entering task (cancellable with
///   it), after `co_yield` shielded (see the file comment).
/// - Exactly one `co_yield`: a context that ends without one fails `with` with
///   `std::logic_error`, and a second one ends the teardown with `std::logic_error`.
///
/// `T`: an object type or `void`; the body gets a `T&` valid until the teardown starts. Yield a
/// pointer or `std::reference_wrapper` to hand over an object living elsewhere.
///
/// Destroying a context that was entered and not exited (only possible by misusing the handle;
/// `with` always exits) destroys its frame at `co_yield`: destructors run, the async teardown
/// does not. Move-only; used by one task at a time.
template <class T>
class [[nodiscard("an async_context does nothing until entered with corun::with")]] async_context {
  static_assert(std::is_void_v<T> || (std::is_object_v<T> && !std::is_array_v<T>),
                "corun::async_context<T>: T must be void or an object type; for a reference "
                "yield a pointer or std::reference_wrapper");

 public:
  using promise_type = detail::context_promise<T>;
  using value_type = T;

  /// An empty context; `with` on it throws `std::logic_error`.
  async_context() noexcept = default;
  async_context(async_context&& other) noexcept : m_frame(std::exchange(other.m_frame, {})) {}
  async_context& operator=(async_context&& other) noexcept {
    if (this != &other) {
      reset();
      m_frame = std::exchange(other.m_frame, {});
    }
    return *this;
  }
  async_context(const async_context&) = delete;
  async_context& operator=(const async_context&) = delete;
  ~async_context() { reset(); }

  /// False for an empty or moved-from context.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_frame); }

 private:
  friend promise_type;
  friend detail::context_access;
  explicit async_context(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}

  void reset() noexcept {
    if (m_frame) {
      std::exchange(m_frame, {}).destroy();
    }
  }

  std::coroutine_handle<promise_type> m_frame;
};

namespace detail {

template <class T>
async_context<T> context_promise<T>::get_return_object() noexcept {
  auto frame = std::coroutine_handle<context_promise>::from_promise(*this);
  m_self = frame;
  return async_context<T>{frame};
}

inline async_context<void> context_promise<void>::get_return_object() noexcept {
  auto frame = std::coroutine_handle<context_promise>::from_promise(*this);
  m_self = frame;
  return async_context<void>{frame};
}

template <class T>
context_promise<T>& context_access::promise(async_context<T>& ctx) {
  if (!ctx.m_frame) {
    throw std::logic_error("corun: with() on an empty or moved-from corun::async_context");
  }
  return ctx.m_frame.promise();
}

template <class T>
[[nodiscard]] std::add_lvalue_reference_t<T> context_value(context_promise<T>& promise) noexcept {
  if constexpr (!std::is_void_v<T>) {
    return promise.value();
  }
}

template <class F, class T>
[[nodiscard]] auto invoke_context_body(F& body, context_promise<T>& promise) {
  if constexpr (std::is_void_v<T>) {
    return std::invoke(body);
  } else {
    return std::invoke(body, promise.value());
  }
}

}  // namespace detail

/// Enters `ctx` (runs its setup in the calling task), runs `body(value)` (`body()` for
/// `async_context<void>`), then resumes the context for its teardown, shielded, and returns the
/// body's value: Python's `async with ctx as value:`.
///
/// Outcomes:
/// - the setup threw: that exception, and neither body nor teardown runs (a context cancelled
///   before it is entered is not started at all: `cancelled`);
/// - the body returned: its value, unless the teardown threw (then that exception);
/// - the body threw: the `co_yield` rethrows it in the context; what leaves the context leaves
///   `with` (the same exception, or the one that replaced it). If the context swallowed it,
///   `with` returns normally — for a `void` body only: a body that returns a value has no value
///   to return then, so its exception leaves `with` all the same (a deliberate difference from
///   Python, where the statement after `async with` just runs).
/// - the body was cancelled: as "threw" (the teardown sees `cancelled` at `co_yield`); if the
///   context swallowed it, the caller is still cancelled and sees it at its next suspension
///   point.
///
/// `body` is moved into this coroutine's frame, so its captures live as long as the call.
template <class T, class F>
  requires detail::context_body_for<F, T> &&
           task_type<typename detail::context_body_result<F, T>::type>
task<typename detail::context_body_result<F, T>::type::value_type> with(async_context<T> ctx,
                                                                        F body) {
  using value_type = typename detail::context_body_result<F, T>::type::value_type;
  detail::context_promise<T>& promise = detail::context_access::promise(ctx);
  co_await detail::enter_awaiter{promise};
  std::exception_ptr body_error;
  std::optional<std::conditional_t<std::is_void_v<value_type>, bool, value_type>> value;
  try {
    // Named, not awaited as a temporary: g++ 12 destroys such a temporary twice (README).
    task<value_type> run = detail::invoke_context_body(body, promise);
    if constexpr (std::is_void_v<value_type>) {
      co_await std::move(run);
    } else {
      value.emplace(co_await std::move(run));
    }
  } catch (...) {
    body_error = std::current_exception();
  }
  task<std::exception_ptr> teardown = shield(detail::exit_context(promise, body_error));
  std::exception_ptr ending = co_await std::move(teardown);
  detail::settle_with(body_error, std::move(ending), !std::is_void_v<value_type>);
  if constexpr (!std::is_void_v<value_type>) {
    co_return std::move(*value);
  }
}

namespace detail {

/// Both forms of `with_all` over the contexts' untyped promises: enters them all, runs the
/// body's task that `make_body()` makes (once every context is entered), exits them all.
template <class MakeBody>
task<typename std::invoke_result_t<MakeBody&>::value_type> run_with_all(
    std::span<context_promise_base* const> promises, MakeBody make_body) {
  using value_type = typename std::invoke_result_t<MakeBody&>::value_type;
  {
    task<void> entering = enter_all(promises);
    co_await std::move(entering);
  }
  std::exception_ptr body_error;
  std::optional<std::conditional_t<std::is_void_v<value_type>, bool, value_type>> value;
  try {
    task<value_type> run = std::invoke(make_body);
    if constexpr (std::is_void_v<value_type>) {
      co_await std::move(run);
    } else {
      value.emplace(co_await std::move(run));
    }
  } catch (...) {
    body_error = std::current_exception();
  }
  task<void> exiting = exit_all(promises, std::move(body_error), !std::is_void_v<value_type>);
  co_await std::move(exiting);
  if constexpr (!std::is_void_v<value_type>) {
    co_return std::move(*value);
  }
}

template <class F, class... Ts>
  requires context_group_body<F, Ts...>
task<typename std::invoke_result_t<F&, Ts&...>::value_type> with_all_impl(
    F body, async_context<Ts>... ctxs) {
  const std::array<context_promise_base*, sizeof...(Ts)> promises{
      &context_access::promise(ctxs)...};
  task<typename std::invoke_result_t<F&, Ts&...>::value_type> all = run_with_all(
      promises, [&] { return std::invoke(body, context_value(context_access::promise(ctxs))...); });
  co_return co_await std::move(all);
}

template <class... Args, std::size_t... I>
auto with_all_split(std::tuple<Args...>& args, std::index_sequence<I...> /*contexts*/) {
  return with_all_impl(std::move(std::get<sizeof...(Args) - 1>(args)),
                       std::move(std::get<I>(args))...);
}

template <class X>
struct is_async_context : std::false_type {};
template <class T>
struct is_async_context<async_context<T>> : std::true_type {};

}  // namespace detail

/// `co_await with_all(ctx1, ctx2, ..., body)`: aiotools' `actxgroup`. Enters every context
/// concurrently (each setup in a child task of the caller), runs `body(v1, v2, ...)`, then runs
/// every teardown concurrently, shielded, and returns the body's value. (`async_context<void>`
/// is not accepted here, as it has no argument to give the body: yield a value.)
///
/// Failures, gathered in an `exception_group`:
/// - setups that threw: the contexts that did enter are torn down with the failure rethrown
///   at their `co_yield` (one failure as it is, several as an `exception_group`), the body does
///   not run, and `with_all` throws a group of the setup failures and of what the teardowns
///   threw besides. If every failure was a `cancelled` (the caller is being cancelled), that
///   `cancelled` propagates instead.
/// - the body threw: every context sees its exception at `co_yield`. It leaves `with_all`
///   unchanged if no teardown threw anything else, and is swallowed only if every context
///   swallowed it (for a `void` body; see `with`). Teardowns that threw other exceptions make
///   an `exception_group`: the body's exception first (unless every context swallowed or
///   replaced it, or it is the caller's own `cancelled`), then theirs.
///
/// Each setup runs in a child task of its own, so a task that a setup spawns is that child's
/// child: entering does not end before such a task completed (API.md, Ownership). A context
/// that starts background work for the body's lifetime should put it in a group it is given
/// (a `persistent_task_group` of the caller's), not spawn it as a child. (With `with` the setup
/// runs in the caller's task, whose children live as long as it does.)
///
/// The arguments are moved into this coroutine's frame, so the body's captures live as long as
/// the call.
template <class... Args>
  requires(sizeof...(Args) >= 2)
auto with_all(Args... args) {
  static_assert(
      []<std::size_t... I>(std::index_sequence<I...>) {
        return (detail::is_async_context<std::tuple_element_t<I, std::tuple<Args...>>>::value &&
                ...);
      }(std::make_index_sequence<sizeof...(Args) - 1>{}),
      "corun::with_all(ctxs..., body): every argument but the last must be an async_context");
  std::tuple<Args...> all(std::move(args)...);
  return detail::with_all_split(all, std::make_index_sequence<sizeof...(Args) - 1>{});
}

/// `co_await with_all(std::move(ctxs), body)`: `with_all` for a number of contexts known only at
/// run time (aiotools' `actxgroup` over a list). `body(values)` gets `values`, a
/// `std::vector<std::reference_wrapper<T>>&` holding the value each context yielded, in the
/// order of `ctxs` (references, as in the variadic form: the body and each teardown share the
/// object). Everything else is the variadic form's: concurrent setups in child tasks, concurrent
/// shielded teardowns, the same failures and `exception_group`s. An empty `ctxs` runs
/// `body` with no values. An empty context in `ctxs` is a `std::logic_error` before any is
/// entered. (`async_context<void>` is not accepted: yield a value.)
///
/// `ctxs` and `body` are moved into this coroutine's frame, so the body's captures live as long
/// as the call.
template <class T, class F>
  requires detail::context_vector_body<F, T>
task<typename std::invoke_result_t<F&, detail::context_values<T>&>::value_type> with_all(
    std::vector<async_context<T>> ctxs, F body) {
  std::vector<detail::context_promise_base*> promises;
  promises.reserve(ctxs.size());
  for (async_context<T>& ctx : ctxs) {
    promises.push_back(&detail::context_access::promise(ctx));
  }
  detail::context_values<T> values;
  task<typename std::invoke_result_t<F&, detail::context_values<T>&>::value_type> all =
      detail::run_with_all(promises, [&] {
        // Only now do the contexts' values exist.
        values.reserve(ctxs.size());
        for (async_context<T>& ctx : ctxs) {
          values.emplace_back(detail::context_access::promise(ctx).value());
        }
        return std::invoke(body, values);
      });
  co_return co_await std::move(all);
}

}  // namespace corun
