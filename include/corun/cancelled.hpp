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

/// Thrown **into** a task at a suspension point (joining, yielding, `this_task::checkpoint()`)
/// once its cancel scope has been cancelled.
///
/// Deliberately not derived from `std::exception`, so `catch (const std::exception&)` does not
/// swallow it (like Python's `BaseException`). Catching it without rethrowing is allowed and means
/// the task chose to ignore the request; its next suspension point throws again.
class cancelled {
 public:
  explicit cancelled(std::string message = {})
      : m_message(std::make_shared<const std::string>(std::move(message))) {}

  /// The message given to the cancel request (empty if none was given).
  [[nodiscard]] const std::string& message() const noexcept { return *m_message; }

 private:
  // Shared so that copying the exception object cannot throw.
  std::shared_ptr<const std::string> m_message;
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
