/// \file
/// Out-of-line throws for misuse checks on the hot path (every spawn, join and `co_await` of a
/// task checks its handle). Built inline, the `std::logic_error` and its message make the
/// callers reserve stack and registers they never use when the check passes.
#pragma once

namespace corun::detail {

/// Throws `std::logic_error(message)`.
[[noreturn]] void throw_logic_error(const char* message);
/// Throws `std::logic_error` saying that `what` was called outside a corun task.
[[noreturn]] void throw_outside_task(const char* what);

}  // namespace corun::detail
