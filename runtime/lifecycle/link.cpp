// link and cancel_when_done (include/corun/link.hpp): the monitor task.
//
// Protocol:
//  1. The monitor is spawned as a root task of the runtime, holding a `task_handle` copy of
//     each task.
//  2. It races two tiny children, each waiting (`task_handle::wait`, which neither takes nor
//     observes the result) for one of the tasks, with `when_any`: the first task to complete
//     wins, the other waiter is cancelled and awaited. So the monitor ends as soon as either
//     task completed, whichever it is.
//  3. Then it looks at how the completed task(s) ended and cancels the other one if the link
//     asks for it and it is not done yet, after letting go of the handle of the task that
//     ended. Cancelling the monitor before that (unlinking, or the runtime's destruction) ends
//     it at step 2 without cancelling anything.
#include "corun/link.hpp"

#include "corun/join_handle.hpp"
#include "corun/runtime.hpp"
#include "corun/spawn.hpp"
#include "corun/task.hpp"
#include "corun/when_any.hpp"

#include "corun/detail/task_node.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace corun {

namespace {

enum class link_kind : std::uint8_t {
  both_ways,         ///< link: a failure or cancellation of either cancels the other
  source_to_target,  ///< cancel_when_done: any completion of the source cancels the target
};

task<void> wait_done(task_handle handle) { co_await handle.wait(); }

std::string label_of(const task_handle& handle) {
  std::string text = "task #" + std::to_string(handle.id());
  if (std::string name = handle.name(); !name.empty()) {
    text += " '" + name + "'";
  }
  return text;
}

std::string how_it_ended(const task_handle& handle) {
  if (handle.failed()) {
    return "failed";
  }
  if (handle.cancelled()) {
    return "was cancelled";
  }
  return "returned";
}

/// The message to cancel `target` with because `ended` completed, or empty if the link does not
/// ask for it (`ended` is not done or ended well, or `target` is done already).
std::string reason_to_cancel(const task_handle& ended, const task_handle& target, link_kind kind) {
  if (!ended.done() || target.done()) {
    return {};
  }
  if (kind == link_kind::source_to_target) {
    return "cancel_when_done: " + label_of(ended) + " " + how_it_ended(ended);
  }
  if (ended.failed() || ended.cancelled()) {
    return "linked " + label_of(ended) + " " + how_it_ended(ended);
  }
  return {};
}

task<void> monitor(task_handle a, task_handle b, link_kind kind) {
  {
    // Named, not temporaries of the co_await (README, "Known compiler bugs").
    task<void> wait_a = wait_done(a);
    task<void> wait_b = wait_done(b);
    auto race = when_any(std::move(wait_a), std::move(wait_b));
    static_cast<void>(co_await std::move(race));
  }
  // Step 3. The handle of a task that ended is let go before the other is cancelled: a failure
  // nobody observed is then reported to the failed task's parent at once (as without the link),
  // before the partner's cancellation can let that parent finish.
  std::string cancel_b = reason_to_cancel(a, b, kind);
  std::string cancel_a =
      kind == link_kind::both_ways ? reason_to_cancel(b, a, kind) : std::string();
  if (cancel_a.empty()) {
    a = task_handle();
  }
  if (cancel_b.empty()) {
    b = task_handle();
  }
  if (!cancel_b.empty()) {
    b.cancel(std::move(cancel_b));
  }
  if (!cancel_a.empty()) {
    a.cancel(std::move(cancel_a));
  }
}

void check_handles(const task_handle& a, const task_handle& b, const char* what) {
  if (!a.valid() || !b.valid()) {
    throw std::logic_error(std::string("corun: ") + what + " of an empty task_handle");
  }
}

std::string monitor_name(const char* what, const task_handle& a, const task_handle& b) {
  return std::string(what) + " #" + std::to_string(a.id()) + " #" + std::to_string(b.id());
}

/// Spawns `t` as a root task of the current task's runtime.
task_handle spawn_root_here(task<void> t, std::string name, const char* what) {
  detail::task_node& self = detail::current_task_for(what);
  auto frame = t.release();
  detail::frame_guard guard(frame);
  detail::name_task(frame.promise(), std::move(name));
  detail::spawn_root(*self.runtime(), frame.promise(), frame);  // throws only before publishing
  guard.dismiss();
  return task_handle{&frame.promise()};  // adopts the reference meant for the handle
}

}  // namespace

task_handle link(task_handle a, task_handle b) {
  check_handles(a, b, "link");
  std::string name = monitor_name("link", a, b);
  return spawn_root_here(monitor(std::move(a), std::move(b), link_kind::both_ways), std::move(name),
                         "corun::link");
}

task_handle link(runtime& rt, task_handle a, task_handle b) {
  check_handles(a, b, "link");
  std::string name = monitor_name("link", a, b);
  return rt.spawn(monitor(std::move(a), std::move(b), link_kind::both_ways),
                  {.name = std::move(name)});
}

task_handle cancel_when_done(task_handle source, task_handle target) {
  check_handles(source, target, "cancel_when_done");
  std::string name = monitor_name("cancel_when_done", source, target);
  return spawn_root_here(monitor(std::move(source), std::move(target), link_kind::source_to_target),
                         std::move(name), "corun::cancel_when_done");
}

task_handle cancel_when_done(runtime& rt, task_handle source, task_handle target) {
  check_handles(source, target, "cancel_when_done");
  std::string name = monitor_name("cancel_when_done", source, target);
  return rt.spawn(monitor(std::move(source), std::move(target), link_kind::source_to_target),
                  {.name = std::move(name)});
}

}  // namespace corun
