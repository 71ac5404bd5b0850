/// \file
/// The two cancellation exceptions: `cancelled` (you were cancelled) and `task_cancelled` (the
/// task you awaited was cancelled). Keeping them distinct answers the question asyncio cannot:
/// "was I cancelled, or was the task I awaited?".
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <string>

namespace corun {

/// Why a cancel request was made: the provenance a cancelled task can inspect.
enum class cancel_origin : std::uint8_t {
  user,            ///< a `cancel()` or `request_cancel()` call; the message is the caller's
  child_failed,    ///< a child failed and nobody awaited it; the task fails with it
  sibling_failed,  ///< a sibling in the same group failed (fail-fast)
  scope_exit,      ///< a structured scope is ending (a group's body ended, `when_any` was won)
  shutdown,        ///< the runtime is being destroyed
  deadline,        ///< a timeout expired
  signal,          ///< a process signal (SIGINT, SIGTERM)
};

/// Thrown **into** a task at a suspension point (joining, yielding, `this_task::checkpoint()`)
/// once its cancel scope has been cancelled.
///
/// Deliberately not derived from `std::exception`, so `catch (const std::exception&)` does not
/// swallow it (like Python's `BaseException`). Catching it without rethrowing is allowed and means
/// the task chose to ignore the request; its next suspension point throws again.
///
/// It says who asked and why (`origin()`, `culprit()`, `requested_on()`, `describe()`), so a log
/// reads "cancelled because sibling task #7 'db-writer' failed: disk full", not "cancelled".
class cancelled {
 public:
  explicit cancelled(std::string message = {})
      : m_state(
            std::make_shared<const state>(state{std::move(message), cancel_origin::user, {}, {}})) {
  }
  cancelled(std::string message, cancel_origin origin, std::string culprit,
            std::string requested_on)
      : m_state(std::make_shared<const state>(
            state{std::move(message), origin, std::move(culprit), std::move(requested_on)})) {}

  /// The message of the request: the caller's for `user`; the failure's description for
  /// `child_failed` and `sibling_failed`; empty if none was given.
  [[nodiscard]] const std::string& message() const noexcept { return m_state->message; }
  [[nodiscard]] cancel_origin origin() const noexcept { return m_state->origin; }
  /// The task whose failure caused the request ("task #7 'db-writer'"), if any.
  [[nodiscard]] const std::string& culprit() const noexcept { return m_state->culprit; }
  /// Where the request was made when it was not on the cancelled task itself: an ancestor
  /// ("task #3 'server'"), its group ("task_group"), a "cancel_source" or the "runtime". Empty
  /// when the task itself was cancelled.
  [[nodiscard]] const std::string& requested_on() const noexcept { return m_state->requested_on; }
  /// One sentence for logs, e.g. "cancelled because sibling task #7 'db-writer' failed: disk
  /// full" or "cancelled: user asked (requested on task #3 'server')".
  [[nodiscard]] std::string describe() const;

 private:
  struct state {
    std::string message;
    cancel_origin origin;
    std::string culprit;
    std::string requested_on;
  };
  // Shared so that copying the exception object cannot throw.
  std::shared_ptr<const state> m_state;
};

/// Thrown to whoever awaits (`co_await`, `get()`, `rethrow()`) a task that ended cancelled.
/// Derived from `std::exception`: a child's cancellation is an ordinary failure of the awaited
/// operation, not a request to stop the awaiting task.
class task_cancelled : public std::exception {
 public:
  task_cancelled(std::uint64_t task_id, const std::string& task_name, const std::string& reason)
      : m_what(std::make_shared<const std::string>(
            "corun: task #" + std::to_string(task_id) +
            (task_name.empty() ? std::string() : " '" + task_name + "'") + " was cancelled" +
            (reason.empty() ? std::string() : ": " + reason))),
        m_task_id(task_id) {}

  [[nodiscard]] const char* what() const noexcept override { return m_what->c_str(); }
  /// Id of the task that ended cancelled.
  [[nodiscard]] std::uint64_t task_id() const noexcept { return m_task_id; }

 private:
  std::shared_ptr<const std::string> m_what;
  std::uint64_t m_task_id;
};

}  // namespace corun
