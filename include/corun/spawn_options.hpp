/// \file
/// `corun::spawn_options`: per-spawn settings.
#pragma once

#include <string>

namespace corun {

/// Settings of one spawn. An aggregate: `spawn(t, {.name = "db-writer"})`.
struct spawn_options {
  /// Shown by `task_handle::name()`, in failure reports and in task dumps. Empty by default.
  std::string name{};
  /// `persistent_task_group` and services: print the task's failure on stderr when it happens
  /// (unless it was acknowledged first; a cancellation is never printed), as frequenz's
  /// `log_exception`. Other spawners ignore it: a failure there always reaches whoever awaits
  /// the handle, or the parent.
  bool log_exception = true;
};

}  // namespace corun
