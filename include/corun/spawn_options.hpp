/// \file
/// `corun::spawn_options`: per-spawn settings.
#pragma once

#include <string>

namespace corun {

/// Settings of one spawn. An aggregate: `spawn(t, {.name = "db-writer"})`.
struct spawn_options {
  /// Shown by `task_handle::name()`, in failure reports and in task dumps. Empty by default.
  std::string name{};
};

}  // namespace corun
