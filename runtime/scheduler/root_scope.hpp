/// \file
/// The root of a runtime's task tree: parent of every task started with `runtime::spawn`.
///
/// It counts the live roots (shutdown waits for zero), carries the cancel request that shutdown
/// publishes, and is where failures nobody observed end up (`on_unhandled_exception`). It is
/// reference-counted because a failed task may report after the runtime is gone; the report then
/// goes to stderr.
#pragma once

#include "corun/runtime.hpp"

#include "corun/detail/task_node.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

namespace corun::detail {

class root_scope final : public scope_node {
 public:
  explicit root_scope(unhandled_exception_handler handler)
      : scope_node(scope_kind::root, nullptr, scope_ops_of<root_scope>),
        m_handler(std::move(handler)) {}

  /// Counts a new root; false (and not counted) if the runtime is shutting down.
  [[nodiscard]] bool try_add_root() noexcept;
  /// Shutdown: refuse new roots and wait until every root task completed.
  void close_and_wait();
  /// The runtime is gone: later reports go to stderr.
  void detach_runtime() noexcept;

  /// Reports a failure nobody observed: to the handler while the runtime lives, else stderr.
  void report(const task_failure& failure) noexcept;

  // The scope operations (scope_ops).
  void adopt_failure(std::exception_ptr error, task_node& child) noexcept;
  [[nodiscard]] resumption child_completed(bool child_failed) noexcept;
  void retain_for_report();
  void release() noexcept;

  [[nodiscard]] std::uint64_t live_roots() const noexcept {
    return m_live.load(std::memory_order_relaxed);
  }

 private:
  ~root_scope() = default;

  std::atomic<std::uint64_t> m_live{0};
  std::atomic<bool> m_closing{false};
  /// Bumped (and futex-woken) when the last root completes during shutdown.
  std::atomic<std::uint32_t> m_quiesced{0};
  std::atomic<std::uint32_t> m_refs{1};
  std::mutex m_report_lock;
  unhandled_exception_handler m_handler;  // guarded by m_report_lock
  bool m_runtime_alive = true;            // guarded by m_report_lock
};

/// The default report: one line on stderr with the task's id, name and error.
void report_on_stderr(const task_failure& failure) noexcept;

}  // namespace corun::detail
