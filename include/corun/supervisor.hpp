/// \file
/// `supervisor`: restarts failed children, Erlang/OTP style (aiotools' Supervisor, frequenz's
/// "restart the failing task" loop), with restart policies, strategies, a restart intensity and
/// an optional exponential backoff with jitter.
///
/// \code
///   corun::supervisor sup({.name = "app", .max_restarts = 2, .period = 5s});
///   sup.add("print_1", [] { return print_every(1s); });
///   sup.add("fail_5", [] { return fail_after(5s); });  // permanent: restarted after each failure
///   co_await sup.run();  // until cancelled, or until the restart intensity is exceeded
/// \endcode
#pragma once

#include "corun/async_semaphore.hpp"
#include "corun/cancelled.hpp"
#include "corun/join_handle.hpp"
#include "corun/task.hpp"
#include "corun/time.hpp"

#include "corun/detail/task_node.hpp"

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun {

/// When a supervisor restarts a child that ended (Erlang's restart types).
enum class restart_policy : std::uint8_t {
  permanent,  ///< always: after a failure and after a normal return
  transient,  ///< only after an abnormal end (a failure, or ending cancelled on its own)
  temporary,  ///< never; not even when a sibling's restart (one_for_all, rest_for_one) stops it
};

/// Which children a supervisor restarts when one of them is to be restarted.
enum class restart_strategy : std::uint8_t {
  one_for_one,   ///< only that child
  one_for_all,   ///< every running child: the others are cancelled and awaited first
  rest_for_one,  ///< that child and the running children added after it, in order
};

/// Exponential backoff between a child's end and its restart. The delay before the `k`-th
/// restart in a row of a child (k = 0, 1, ...) is `min(max, initial * multiplier^k)`, minus a
/// random part of at most `jitter` of it: `base * (1 - jitter * u)`, `u` uniform in [0, 1) from
/// the supervisor's RNG (`supervisor_options::seed`). So a delay never exceeds `max`, and with
/// `jitter == 0` it is exact. A child that ran for at least the intensity `period` before it
/// ended starts over at k = 0. `initial == 0` (the default): no delay.
struct restart_backoff {
  std::chrono::nanoseconds initial{0};
  std::chrono::nanoseconds max{std::chrono::seconds(30)};
  /// At least 1.
  double multiplier = 2.0;
  /// The fraction of a delay that may be taken off at random, in [0, 1].
  double jitter = 0.0;
};

/// Settings of a supervisor. An aggregate: `supervisor sup({.strategy = ..., .max_restarts = 5})`.
/// Plain values, copied into the supervisor.
struct supervisor_options {
  /// Shown in cancel messages and errors ("supervisor 'app'"), and prefixed to the children's
  /// task names ("app:db"); empty: the children's tasks are named after their specs only.
  std::string name{};
  restart_strategy strategy = restart_strategy::one_for_one;
  /// Restart intensity: more than `max_restarts` restarts within `period` (on the runtime's
  /// clock) and the supervisor gives up (see `supervisor::run`). Elixir's defaults.
  std::size_t max_restarts = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);
  restart_backoff backoff{};
  /// Seeds the jitter RNG (`std::mt19937_64`): the same seed gives the same delays.
  std::uint64_t seed = 0;
};

namespace detail {

/// `factory()` makes the task of a child: `[] { return worker(); }` or a coroutine lambda.
template <class F>
concept child_factory_function =
    std::invocable<F&> && std::same_as<std::invoke_result_t<F&>, task<void>>;

/// A child's factory, type-erased. Lives in its `child_spec` and then in the supervisor.
class child_factory {
 public:
  child_factory() = default;
  child_factory(const child_factory&) = delete;
  child_factory& operator=(const child_factory&) = delete;
  virtual ~child_factory() = default;
  [[nodiscard]] virtual task<void> make() = 0;
};

template <class F>
class child_factory_of final : public child_factory {
 public:
  explicit child_factory_of(F fn) : m_fn(std::move(fn)) {}
  [[nodiscard]] task<void> make() override { return std::invoke(m_fn); }

 private:
  F m_fn;
};

}  // namespace detail

/// What a supervisor needs to know about one child: its name, its factory (called for every
/// start and restart) and its restart policy.
///
/// Lifetime: the factory is moved into the spec and then into the supervisor, where it lives
/// as long as the supervisor, so the tasks it makes may refer to its captures (a coroutine
/// lambda's captures live in the lambda object, not in the coroutine frame). Move-only.
class child_spec {
 public:
  template <class F>
    requires detail::child_factory_function<std::decay_t<F>>
  child_spec(std::string name, F&& factory, restart_policy policy = restart_policy::permanent)
      : m_name(std::move(name)),
        m_policy(policy),
        m_factory(
            std::make_unique<detail::child_factory_of<std::decay_t<F>>>(std::forward<F>(factory))) {
  }

  [[nodiscard]] const std::string& name() const noexcept { return m_name; }
  [[nodiscard]] restart_policy policy() const noexcept { return m_policy; }

 private:
  friend class supervisor;

  std::string m_name;
  restart_policy m_policy;
  std::unique_ptr<detail::child_factory> m_factory;
};

/// An Erlang/OTP supervisor: starts its children, watches them, and restarts them according to
/// their `restart_policy` and the `restart_strategy`, within a restart intensity.
///
/// Use: construct it, `add` the children, then `co_await sup.run()` (or spawn `sup.run()`).
/// `run()` runs in the task that awaits it; the children are that task's children (so
/// cancelling that task cancels them) and are named "<name>:<child name>" (the child's name
/// alone when the supervisor has none).
///
/// Rules (`run` documents the outcomes):
/// - A child *ends normally* when its task returns, *abnormally* when it fails or lets
///   `cancelled` escape without the supervisor having asked (its error is then a
///   `task_cancelled`). Which ends lead to a restart is the child's `restart_policy`.
/// - Every restart counts towards the intensity; the restart that makes more than
///   `max_restarts` within the last `period` (restarts at exactly `now - period` still count,
///   as in OTP) is not made: the supervisor gives up instead.
/// - one_for_all / rest_for_one: the supervisor cancels the other children concerned (the
///   running ones; children that ended for good stay ended) and waits until they ended; then it
///   restarts them, non-temporary ones only, in the order they were added.
/// - The supervisor's cancellations carry provenance: a restart after a failure cancels the
///   siblings with `cancel_origin::sibling_failed` and the failed child as `culprit()` ("cancelled
///   because sibling task #7 'app:db' failed: supervisor 'app' is restarting its children
///   (one_for_all)"); one after a normal return, and giving up, use `cancel_origin::scope_exit`.
/// - A failed child's own children still running are cancelled before it is restarted.
/// - Restart order: factories are called, and tasks spawned, in the order the children were
///   added (with backoff, a restarted child's factory is called when the restart is decided,
///   its task starts after the delay).
///
/// Differences from Erlang/OTP, and why:
/// - Starting a child is spawning its task; there is no synchronous init/ack, so "in order"
///   means factory calls and spawns in order (their tasks then run concurrently).
/// - `run()` returns once no child is left to run (OTP's `auto_shutdown` of all significant
///   children) instead of idling forever: a supervisor of finite jobs then simply ends.
/// - A group restart does not bring back children that had ended for good (a transient child
///   that returned, a temporary one): re-running finished work would surprise.
/// - Ending cancelled without the supervisor asking is abnormal (OTP treats `shutdown` from
///   anyone as normal): in corun only the supervisor and its owner are meant to cancel it.
/// - Failures are never only logged: those of children that were not restarted are thrown by
///   `run()` (an `exception_group`), and giving up throws the recent failures.
/// - Exits are judged as they arrive while a group restart waits for its children to stop, so
///   restarts decided meanwhile (rest_for_one: an earlier child fails too) are carried out
///   together, once, each still counted towards the intensity.
/// - Stopping is cancellation, which is cooperative: there is no `brutal_kill` and no shutdown
///   timeout (wrap a child in `timeout` for that); a child ignoring it delays the supervisor.
/// - Backoff and jitter are additions; OTP restarts at once. Children are fixed once `run()`
///   started (no `start_child`/`terminate_child`).
///
/// Thread safety: `add`, `run`, `options` and `size` from the task that owns the supervisor
/// (one at a time); `restarts` from any thread. Lifetime: the supervisor must outlive `run()`
/// (the children refer to it); it is neither copyable nor movable.
class supervisor {
 public:
  /// Throws `std::invalid_argument` for a negative `period`, a backoff `multiplier` below 1, a
  /// `jitter` outside [0, 1], or a negative backoff duration.
  explicit supervisor(supervisor_options options = {});
  ~supervisor();
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  /// Adds a child; it starts when `run()` does. Before `run()` only (`std::logic_error`
  /// afterwards). Returns `*this` for chaining.
  supervisor& add(child_spec spec);
  /// `add(child_spec(name, factory, policy))`.
  template <class F>
    requires detail::child_factory_function<std::decay_t<F>>
  supervisor& add(std::string name, F&& factory,
                  restart_policy policy = restart_policy::permanent) {
    return add(child_spec(std::move(name), std::forward<F>(factory), policy));
  }

  /// Starts every child in order and supervises them. Once per supervisor, inside a corun task
  /// (`std::logic_error` otherwise). Outcomes:
  /// - Returns when no child is left running and none is to be restarted (every child ended
  ///   for good; at once without children). If a child failed and was not restarted (a
  ///   temporary one), throws an `exception_group` of those failures instead.
  /// - Restart intensity exceeded: cancels every child, waits for them, and throws an
  ///   `exception_group` ("supervisor 'app' gave up: more than 3 restarts within 5000 ms")
  ///   holding, oldest first, the child failures of the last `period` (at most the latest
  ///   `max_restarts + 1`; the one that asked for the restart too many, if it failed, is last;
  ///   none when every restart followed a normal return), then the
  ///   failures of children that were not restarted and are not among those, then failures of
  ///   children while they were being stopped.
  /// - Cancelled (the awaiting task is): the children, cancelled with it, are awaited; then
  ///   `cancelled` propagates, unless children failed without being restarted or while they
  ///   stopped, which are thrown as an `exception_group` instead (like `task_group::join`).
  [[nodiscard]] task<void> run();

  /// Restarts made so far, each decision once (a one_for_all restart of every child is one, as
  /// it counts once towards the intensity). A relaxed snapshot; thread-safe.
  [[nodiscard]] std::uint64_t restarts() const noexcept {
    // Relaxed: a statistic, ordered with nothing.
    return m_restarts.load(std::memory_order_relaxed);
  }
  [[nodiscard]] const supervisor_options& options() const noexcept { return m_options; }
  /// The number of children added.
  [[nodiscard]] std::size_t size() const noexcept { return m_children.size(); }

 private:
  /// How a child's task ended, as its `run_child` saw it.
  enum class exit_kind : std::uint8_t {
    returned,     ///< the body returned
    failed,       ///< the body threw (`error`)
    cancelled,    ///< `cancelled` escaped the body (`error` is the `task_cancelled` to report)
    not_started,  ///< cancelled during its backoff delay, before the body ran
  };
  /// Posted by `run_child` when a child's body ended.
  struct exit_event {
    std::size_t index = 0;
    std::uint64_t generation = 0;
    exit_kind kind = exit_kind::returned;
    std::exception_ptr error;
    time_point started_at{};
    time_point ended_at{};
  };
  /// One child: its spec, and its run state (supervisor task only).
  struct child_record {
    std::string name;
    /// The name of its task: "<supervisor name>:<name>", or `name`.
    std::string task_name;
    restart_policy policy;
    std::unique_ptr<detail::child_factory> factory;
    /// The running task (valid from its start until the supervisor took its exit event and
    /// joined it) and its node, for cancelling it with provenance (kept alive by `task`).
    join_handle<void> task;
    detail::task_node* node = nullptr;
    /// Bumped at every start; exit events name the start they end.
    std::uint64_t generation = 0;
    /// Restarts in a row, for the backoff exponent.
    std::size_t streak = 0;
    /// Cancelled by the supervisor for a group restart; its end is expected.
    bool stopping = false;
    /// Member of the pending group restart (one_for_all, rest_for_one).
    bool restart_pending = false;
    /// Ended and not to be restarted.
    bool finished = false;
  };
  enum class decision : std::uint8_t { keep_running, give_up };

  task<void> run_child(std::size_t index, std::uint64_t generation, task<void> body,
                       time_point start_at);
  void post(exit_event event) noexcept;
  [[nodiscard]] exit_event take_event();
  void start_child(std::size_t index, time_point start_at);
  [[nodiscard]] decision child_ended(exit_event& event, const std::string& culprit);
  [[nodiscard]] bool count_restart(time_point now);
  void note_failure(time_point now, const std::exception_ptr& error);
  [[nodiscard]] std::chrono::nanoseconds next_delay(child_record& child, const exit_event& event);
  void restart_stopped_group();
  void cancel_running(const std::string& message, cancel_origin origin, const std::string& culprit);
  [[nodiscard]] std::exception_ptr escalation_error() const;
  [[nodiscard]] std::string label() const;

  supervisor_options m_options;
  std::vector<child_record> m_children;
  bool m_started = false;
  std::atomic<std::uint64_t> m_restarts{0};

  // Supervisor task only (run's loop).
  std::size_t m_live = 0;
  std::deque<time_point> m_restart_times;
  std::deque<std::pair<time_point, std::exception_ptr>> m_recent_failures;
  std::vector<std::exception_ptr> m_unrestarted;
  std::vector<std::exception_ptr> m_stop_failures;
  time_point m_group_start_at{};
  std::mt19937_64 m_rng;

  // Shared with the children: ended children post here (a ring with one place per child, as a
  // child posts once per start and is restarted only after its post was taken), and wake the
  // supervisor with one unit of `m_posted` each.
  std::mutex m_queue_lock;
  std::vector<exit_event> m_queue;
  std::size_t m_queue_head = 0;
  std::size_t m_queue_size = 0;
  async_semaphore m_posted{0};
};

}  // namespace corun
