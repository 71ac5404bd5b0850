/// \file
/// `link` and `cancel_when_done`: tie the fate of one task to another's (Erlang's links; the Q&A
/// seed's producer and consumer, where the consumer must not wait forever for a dead producer).
///
/// \code
///   auto producer = corun::spawn(produce(queue));
///   auto consumer = corun::spawn(consume(queue));
///   corun::link(producer, consumer);  // either fails or is cancelled: the other is cancelled
/// \endcode
///
/// Both start a small monitor task that waits (`task_handle::wait`) until either task
/// completed, then cancels as asked and ends. The monitor is a root task of the runtime, like
/// an Erlang link it belongs to neither task nor to its caller: it does not keep the calling
/// task from completing, it ends as soon as either task has completed (so it never outlives
/// both, and cannot keep a finished program alive), and destroying the runtime cancels it. It
/// holds a `task_handle` to each task, so their frames live until it ended; it never takes or
/// observes their results, so a failure still goes to whoever awaits the task. A failure nobody
/// will observe (the task's own handles were dropped) still goes to the task's parent: the
/// monitor lets go of the failed task's handle, which reports it, before it cancels the partner.
///
/// Provenance: the cancelled task sees a `corun::cancelled` whose `message()` names the other
/// task and how it ended ("linked task #3 'producer' failed"). Its `origin()` is
/// `cancel_origin::user`, as for any cancel through a `task_handle`.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/runtime.hpp"

namespace corun {

/// Links the fates of `a` and `b`: when one of them ends failed or cancelled, the other is
/// cancelled (unless it is done already). A task that returns normally cancels nothing, and
/// the link ends with it (API.md: "when one fails or is cancelled, the other is cancelled").
///
/// Returns the monitor's handle; `cancel()` on it unlinks (a task already being cancelled by
/// the link stays cancelled); dropping it keeps the link. Inside a corun task only, on the
/// runtime of both tasks (`std::logic_error` outside a task or for an empty handle). Thread
/// safety: as `task_handle`; linking the same tasks several times makes several monitors.
task_handle link(task_handle a, task_handle b);

/// `link(a, b)` for the tasks of `rt`, from any thread (also outside a task).
task_handle link(runtime& rt, task_handle a, task_handle b);

/// A one-way monitor (the Q&A seed's `cancel_when_done`): when `source` completes in any way
/// (returns, fails or is cancelled), `target` is cancelled, with a message naming `source`
/// ("cancel_when_done: task #3 'producer' returned"). If `target` completes first, the monitor
/// just ends. Returns the monitor's handle (cancel it to give up the monitoring). Inside a
/// corun task only; lifetimes as for `link`.
task_handle cancel_when_done(task_handle source, task_handle target);

/// `cancel_when_done(source, target)` for the tasks of `rt`, from any thread.
task_handle cancel_when_done(runtime& rt, task_handle source, task_handle target);

}  // namespace corun
