/// \file
/// cancel_tree: the time from one cancel request to the end of a whole tree of tasks. A 10-ary
/// tree of depth 6 (1,111,111 tasks); the timed part starts with the root's cancellation and
/// ends when the root's join returns.
///
/// corun builds the whole tree first: every leaf suspends in `this_task::sleep_forever()` and
/// every inner node waits for its children, so one request must reach 1,111,111 suspended tasks
/// and wake each through its cancel callback. oneTBB tasks cannot suspend: its leaves wait for
/// cancellation spinning on `is_current_task_group_canceling()`, so only as many exist as threads
/// run them and the rest of the tree is never created; its figure is the cost of unwinding a
/// running tree, not of reaching a million waiting tasks.
#pragma once

#include "common/harness.hpp"
#include "skynet/workload.hpp"

namespace bench::cancel_tree {

// The tree has skynet's shape: 10-ary, so depth 6 is 1,000,000 leaves and 1,111,111 tasks.
using skynet::fanout;
using skynet::leaves;
using skynet::tasks;

/// Depth 6 (1,000,000 leaves), 3 in smoke mode.
[[nodiscard]] inline int depth() noexcept { return skynet::depth(); }

}  // namespace bench::cancel_tree
