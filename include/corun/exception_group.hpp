/// \file
/// `exception_group`: several failures reported as one (Python's `ExceptionGroup`).
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace corun {

/// Several exceptions raised by concurrent children, reported together.
///
/// Thrown by `when_all`, and by a task whose unobserved children failed more than once. Members
/// keep their nesting (`exceptions()`); `leaves()` flattens nested groups.
class exception_group : public std::exception {
 public:
  exception_group(std::string message, std::vector<std::exception_ptr> exceptions);

  /// The direct members, nested groups kept as they are.
  [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept {
    return m_state->exceptions;
  }
  /// Every non-group exception, depth first, nested groups flattened.
  [[nodiscard]] std::vector<std::exception_ptr> leaves() const;
  /// The message followed by one line per member.
  [[nodiscard]] const char* what() const noexcept override { return m_state->what.c_str(); }
  [[nodiscard]] const std::string& message() const noexcept { return m_state->message; }

 private:
  struct state {
    std::string message;
    std::vector<std::exception_ptr> exceptions;
    std::string what;
  };
  // Shared so that copying the exception object cannot throw.
  std::shared_ptr<const state> m_state;
};

/// Describes an exception for messages: `what()` of a `std::exception`, the message of a
/// `corun::cancelled`, or "unknown exception".
[[nodiscard]] std::string describe_exception(const std::exception_ptr& error);

}  // namespace corun
