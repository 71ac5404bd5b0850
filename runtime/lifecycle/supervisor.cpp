// supervisor (include/corun/supervisor.hpp): the run loop, the children's runner and the restart
// decisions.
//
// Protocol. The loop runs in the task that awaits `run()`, and is the only code that touches the
// children's run state (`child_record`) and the intensity bookkeeping; the children touch only
// the exit queue and its semaphore.
//
//  1. Start. Each child's factory is called in order; its task is wrapped in `run_child` and
//     spawned as a child of the supervisor's task (named "<name>:<child>"), keeping its node to
//     cancel it with provenance later (the join handle keeps the node alive).
//  2. Run. `run_child` sleeps until its start time (the backoff delay), then runs the child's
//     body inline, so the child's own code runs in that very task and sees its cancellations
//     first-hand. Whatever the body does, `run_child` catches it, cancels what a body that ended
//     abnormally left running, and posts one exit event (a ring with a place per child, under a
//     lock), then releases one unit of `m_posted`. It never fails itself.
//  3. Exit. The loop takes a unit, then the event, and joins the child's task (uncancellably:
//     only its completion is left, and its remaining children are cancelled by now if it
//     failed). After that join the child touches nothing of the supervisor any more, so a child
//     is restarted, and the supervisor may end, only after it. Then, if the supervisor itself is
//     cancelled, it stops (step 6); otherwise the end is judged (step 4).
//  4. Decision. An end the supervisor caused (`stopping`) only completes a pending group
//     restart. Otherwise the failure (if any) is noted in the window of recent failures, and the
//     child's policy decides whether to restart it. A restart is counted first: more than
//     `max_restarts` within `period` and the supervisor gives up (step 5). Otherwise the delay is
//     chosen (backoff) and: one_for_one restarts the child; one_for_all and rest_for_one mark the
//     child and the running siblings concerned as pending, cancel those siblings with
//     provenance, and once every pending child has ended restart them in order (step 1), all
//     at the latest start time asked for. A child posts once per start and is restarted only
//     after its post was taken, so the ring never holds more than one event per child.
//  5. Giving up. Every running child is cancelled with provenance, then step 6, then the
//     `exception_group` of the recent failures is thrown.
//  6. Stop. Every child still running is joined uncancellably (a cancelled supervisor's children
//     are cancelled with it through the task tree); the events they posted are drained, their
//     failures kept. Nothing is left running when `run()` ends.
#include "corun/supervisor.hpp"

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"
#include "corun/spawn.hpp"
#include "corun/this_task.hpp"
#include "corun/time.hpp"

#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corun {

namespace {

/// Restarts in a row past this no longer grow the backoff exponent (the delay is capped by
/// `max` long before, and a multiplier of 1 must not loop forever).
constexpr std::size_t max_streak = 64;

const char* strategy_name(restart_strategy strategy) noexcept {
  switch (strategy) {
    case restart_strategy::one_for_one:
      return "one_for_one";
    case restart_strategy::one_for_all:
      return "one_for_all";
    case restart_strategy::rest_for_one:
      return "rest_for_one";
  }
  return "?";
}

std::string format_duration(std::chrono::nanoseconds d) {
  const std::int64_t ns = d.count();
  if (ns % 1'000'000 == 0) {
    return std::to_string(ns / 1'000'000) + " ms";
  }
  if (ns % 1'000 == 0) {
    return std::to_string(ns / 1'000) + " us";
  }
  return std::to_string(ns) + " ns";
}

/// A task whose body throws `error`: what a child runs when its factory failed.
task<void> rethrow_task(std::exception_ptr error) {
  std::rethrow_exception(std::move(error));
  co_return;
}

/// The `task_cancelled` reported for a child that let `reason` escape (the current task is that
/// child); without memory for it, the `std::bad_alloc`.
std::exception_ptr cancelled_error(const cancelled& reason) noexcept {
  try {
    return std::make_exception_ptr(
        task_cancelled(this_task::id(), this_task::name(), reason.describe()));
  } catch (...) {
    return std::current_exception();
  }
}

/// Spawns `t` as a child of the current task, like `corun::spawn`, and hands out its node.
join_handle<void> spawn_supervised(task<void> t, std::string name, detail::task_node*& node) {
  detail::task_node& parent = detail::current_task_for("corun::supervisor::run");
  auto frame = t.release();
  detail::frame_guard guard(frame);
  if (!name.empty()) {
    detail::name_task(frame.promise(), std::move(name));
  }
  guard.dismiss();
  node = &frame.promise();
  detail::spawn_child(frame.promise(), frame, parent);
  return join_handle<void>{&frame.promise()};
}

void cancel_with_provenance(detail::task_node& node, const std::string& message,
                            cancel_origin origin, const std::string& culprit) noexcept {
  try {
    node.request_cancel(message, origin, culprit);
  } catch (...) {
    node.request_cancel_nothrow("cancelled by its supervisor", origin);
  }
}

bool holds(const std::vector<std::exception_ptr>& errors, const std::exception_ptr& error) {
  return std::find(errors.begin(), errors.end(), error) != errors.end();
}

}  // namespace

supervisor::supervisor(supervisor_options options)
    : m_options(std::move(options)), m_rng(m_options.seed) {
  const restart_backoff& b = m_options.backoff;
  if (m_options.period.count() < 0) {
    throw std::invalid_argument("corun: supervisor_options::period must not be negative");
  }
  if (!(b.multiplier >= 1.0) || !std::isfinite(b.multiplier)) {
    throw std::invalid_argument("corun: restart_backoff::multiplier must be a number >= 1");
  }
  if (!(b.jitter >= 0.0 && b.jitter <= 1.0)) {
    throw std::invalid_argument("corun: restart_backoff::jitter must be within [0, 1]");
  }
  if (b.initial.count() < 0 || b.max.count() < 0) {
    throw std::invalid_argument("corun: restart_backoff durations must not be negative");
  }
}

supervisor::~supervisor() = default;

supervisor& supervisor::add(child_spec spec) {
  if (m_started) {
    throw std::logic_error("corun: supervisor::add after run() started");
  }
  if (!spec.m_factory) {
    throw std::logic_error("corun: supervisor::add of a moved-from child_spec");
  }
  child_record child;
  child.task_name = m_options.name.empty() ? spec.m_name : m_options.name + ":" + spec.m_name;
  child.name = std::move(spec.m_name);
  child.policy = spec.m_policy;
  child.factory = std::move(spec.m_factory);
  m_children.push_back(std::move(child));
  return *this;
}

std::string supervisor::label() const {
  return m_options.name.empty() ? std::string("supervisor") : "supervisor '" + m_options.name + "'";
}

task<void> supervisor::run() {
  if (m_started) {
    throw std::logic_error("corun: supervisor::run() called twice");
  }
  static_cast<void>(detail::current_task_for("corun::supervisor::run"));
  m_started = true;
  m_queue.resize(m_children.size());

  std::exception_ptr stopped_by;  // the supervisor's own cancellation, or an internal error
  bool gave_up = false;
  try {
    // Step 1.
    const time_point start = corun::now();
    for (std::size_t i = 0; i < m_children.size(); ++i) {
      start_child(i, start);
    }
    while (m_live > 0) {
      // Step 3.
      co_await m_posted.acquire();
      exit_event event = take_event();
      child_record& child = m_children[event.index];
      assert(event.generation == child.generation && "an exit event of an older start");
      co_await child.task.wait_uncancellable();
      std::string culprit = detail::task_label(*child.node);
      child.task = {};
      child.node = nullptr;
      --m_live;
      if (std::optional<cancelled> why = this_task::cancellation()) {
        if (event.kind == exit_kind::failed) {
          m_stop_failures.push_back(event.error);
        }
        throw *why;
      }
      // Step 4.
      if (child_ended(event, culprit) == decision::give_up) {
        gave_up = true;
        break;
      }
    }
  } catch (...) {
    stopped_by = std::current_exception();
  }

  if (gave_up || stopped_by) {
    // Step 6 (the give-up already cancelled the children, a cancelled supervisor's children are
    // cancelled with it; an internal error cancels them here).
    if (stopped_by && !gave_up) {
      try {
        std::rethrow_exception(stopped_by);
      } catch (const cancelled&) {
      } catch (...) {
        cancel_running(label() + " failed", cancel_origin::scope_exit, {});
      }
    }
    for (child_record& child : m_children) {
      if (child.task.valid()) {
        co_await child.task.wait_uncancellable();  // never throws: run_child never fails
        child.task = {};
        child.node = nullptr;
      }
    }
    m_live = 0;
    while (m_posted.try_acquire()) {
      exit_event event = take_event();
      if (event.kind == exit_kind::failed) {
        m_stop_failures.push_back(std::move(event.error));
      }
    }
  }

  if (gave_up) {
    std::rethrow_exception(escalation_error());
  }
  if (stopped_by) {
    if (m_unrestarted.empty() && m_stop_failures.empty()) {
      std::rethrow_exception(stopped_by);
    }
    std::vector<std::exception_ptr> failures;
    try {
      std::rethrow_exception(stopped_by);
    } catch (const cancelled&) {
    } catch (...) {
      failures.push_back(stopped_by);
    }
    failures.insert(failures.end(), m_unrestarted.begin(), m_unrestarted.end());
    failures.insert(failures.end(), m_stop_failures.begin(), m_stop_failures.end());
    throw exception_group("corun: " + label() + " stopped; children failed", std::move(failures));
  }
  if (!m_unrestarted.empty()) {
    throw exception_group("corun: " + label() + ": children failed and were not restarted",
                          m_unrestarted);
  }
}

task<void> supervisor::run_child(std::size_t index, std::uint64_t generation, task<void> body,
                                 time_point start_at) {
  // Step 2.
  exit_event event;
  event.index = index;
  event.generation = generation;
  bool started = false;
  try {
    if (start_at > corun::now()) {
      co_await sleep_until(start_at);
    }
    started = true;
    event.started_at = corun::now();
    co_await std::move(body);
    event.kind = exit_kind::returned;
  } catch (const cancelled& reason) {
    event.kind = started ? exit_kind::cancelled : exit_kind::not_started;
    event.error = cancelled_error(reason);
  } catch (...) {
    event.kind = exit_kind::failed;
    event.error = std::current_exception();
  }
  if (event.kind == exit_kind::failed || event.kind == exit_kind::cancelled) {
    // What the body left running would otherwise keep this task, and its restart, waiting.
    detail::this_thread_state().current->request_cancel_nothrow(
        "its supervised parent task ended abnormally", cancel_origin::scope_exit);
  }
  event.ended_at = corun::now();
  post(std::move(event));
}

void supervisor::post(exit_event event) noexcept {
  {
    const std::lock_guard<std::mutex> lock(m_queue_lock);
    assert(m_queue_size < m_queue.size() && "more exit events than children");
    m_queue[(m_queue_head + m_queue_size) % m_queue.size()] = std::move(event);
    ++m_queue_size;
  }
  // Release: the supervisor, acquiring the unit, finds the event (the lock orders it anyway).
  m_posted.release();
}

supervisor::exit_event supervisor::take_event() {
  const std::lock_guard<std::mutex> lock(m_queue_lock);
  assert(m_queue_size > 0 && "a unit of m_posted without an event");
  exit_event event = std::move(m_queue[m_queue_head]);
  m_queue_head = (m_queue_head + 1) % m_queue.size();
  --m_queue_size;
  return event;
}

void supervisor::start_child(std::size_t index, time_point start_at) {
  child_record& child = m_children[index];
  task<void> body;
  try {
    body = child.factory->make();
    if (!body.valid()) {
      throw std::logic_error("corun: the factory of supervised task '" + child.name +
                             "' returned an empty task");
    }
  } catch (...) {
    body = rethrow_task(std::current_exception());  // a failure of this start, judged as such
  }
  ++child.generation;
  task<void> runner = run_child(index, child.generation, std::move(body), start_at);
  child.task = spawn_supervised(std::move(runner), child.task_name, child.node);
  ++m_live;
}

supervisor::decision supervisor::child_ended(exit_event& event, const std::string& culprit) {
  child_record& child = m_children[event.index];
  const time_point now = corun::now();
  const bool expected = std::exchange(child.stopping, false);
  const bool abnormal = event.kind != exit_kind::returned;

  if (expected) {
    // Stopped for a group restart: only a failure while stopping is news.
    if (event.kind == exit_kind::failed) {
      note_failure(now, event.error);
      if (child.policy == restart_policy::temporary) {
        m_unrestarted.push_back(event.error);
      }
    }
    if (!child.restart_pending) {
      child.finished = true;
    } else if (child.policy == restart_policy::temporary) {
      child.restart_pending = false;
      child.finished = true;
    }
    restart_stopped_group();
    return decision::keep_running;
  }

  if (abnormal) {
    note_failure(now, event.error);
  }
  const bool restart = child.policy == restart_policy::permanent ||
                       (child.policy == restart_policy::transient && abnormal);
  if (!restart) {
    child.finished = true;
    if (abnormal) {
      m_unrestarted.push_back(event.error);
    }
    return decision::keep_running;
  }

  const cancel_origin origin = abnormal ? cancel_origin::sibling_failed : cancel_origin::scope_exit;
  if (!count_restart(now)) {
    // Step 5.
    std::string message = label() + " gave up: more than " +
                          std::to_string(m_options.max_restarts) + " restarts within " +
                          format_duration(m_options.period);
    if (!abnormal) {
      message += " (" + culprit + " returned)";
    }
    cancel_running(message, origin, culprit);
    return decision::give_up;
  }
  // Relaxed: a statistic.
  m_restarts.fetch_add(1, std::memory_order_relaxed);
  const time_point start_at = now + next_delay(child, event);
  if (m_options.strategy == restart_strategy::one_for_one) {
    start_child(event.index, start_at);
    return decision::keep_running;
  }

  m_group_start_at = std::max(m_group_start_at, start_at);
  std::string message =
      label() + " is restarting its children (" + strategy_name(m_options.strategy) + ")";
  if (!abnormal) {
    message += ": " + culprit + " returned";
  }
  child.restart_pending = true;
  const bool all = m_options.strategy == restart_strategy::one_for_all;
  for (std::size_t j = all ? 0 : event.index + 1; j < m_children.size(); ++j) {
    child_record& sibling = m_children[j];
    if (j == event.index || sibling.finished) {
      continue;
    }
    sibling.restart_pending = true;
    if (sibling.task.valid() && !sibling.stopping) {
      sibling.stopping = true;
      cancel_with_provenance(*sibling.node, message, origin, culprit);
    }
  }
  restart_stopped_group();
  return decision::keep_running;
}

bool supervisor::count_restart(time_point now) {
  // A restart at exactly `now - period` still counts (OTP keeps restarts >= now - period).
  while (!m_restart_times.empty() && now - m_restart_times.front() > m_options.period) {
    m_restart_times.pop_front();
  }
  m_restart_times.push_back(now);
  return m_restart_times.size() <= m_options.max_restarts;
}

void supervisor::note_failure(time_point now, const std::exception_ptr& error) {
  while (!m_recent_failures.empty() && now - m_recent_failures.front().first > m_options.period) {
    m_recent_failures.pop_front();
  }
  m_recent_failures.emplace_back(now, error);
  // The window keeps at most the failures that can matter for one give-up.
  while (m_recent_failures.size() - 1 > m_options.max_restarts) {
    m_recent_failures.pop_front();
  }
}

std::chrono::nanoseconds supervisor::next_delay(child_record& child, const exit_event& event) {
  const restart_backoff& b = m_options.backoff;
  if (b.initial.count() == 0) {
    return std::chrono::nanoseconds(0);
  }
  if (event.kind != exit_kind::not_started &&
      event.ended_at - event.started_at >= m_options.period) {
    child.streak = 0;  // it ran long enough: start over
  }
  const auto cap = static_cast<double>(b.max.count());
  double delay = std::min(static_cast<double>(b.initial.count()), cap);
  for (std::size_t k = 0; k < child.streak && delay < cap; ++k) {
    delay = std::min(delay * b.multiplier, cap);
  }
  if (b.jitter > 0) {
    // 53 random bits as a double in [0, 1): the same for a seed on every platform.
    const double u = static_cast<double>(m_rng() >> 11) * 0x1.0p-53;
    delay *= 1.0 - b.jitter * u;
  }
  if (child.streak < max_streak) {
    ++child.streak;
  }
  return std::chrono::nanoseconds(std::llround(delay));
}

void supervisor::restart_stopped_group() {
  bool pending = false;
  for (const child_record& child : m_children) {
    if (child.restart_pending) {
      if (child.task.valid()) {
        return;  // still stopping
      }
      pending = true;
    }
  }
  if (!pending) {
    return;
  }
  for (std::size_t i = 0; i < m_children.size(); ++i) {
    child_record& child = m_children[i];
    if (!child.restart_pending) {
      continue;
    }
    child.restart_pending = false;
    if (child.policy == restart_policy::temporary) {
      child.finished = true;
    } else {
      start_child(i, m_group_start_at);
    }
  }
  m_group_start_at = {};
}

void supervisor::cancel_running(const std::string& message, cancel_origin origin,
                                const std::string& culprit) {
  for (child_record& child : m_children) {
    if (child.task.valid()) {
      child.stopping = true;
      cancel_with_provenance(*child.node, message, origin, culprit);
    }
  }
}

std::exception_ptr supervisor::escalation_error() const {
  std::vector<std::exception_ptr> errors;
  errors.reserve(m_recent_failures.size() + m_unrestarted.size() + m_stop_failures.size());
  for (const auto& failure : m_recent_failures) {
    errors.push_back(failure.second);
  }
  for (const std::exception_ptr& error : m_unrestarted) {
    if (!holds(errors, error)) {
      errors.push_back(error);
    }
  }
  errors.insert(errors.end(), m_stop_failures.begin(), m_stop_failures.end());
  return std::make_exception_ptr(exception_group(
      "corun: " + label() + " gave up: more than " + std::to_string(m_options.max_restarts) +
          " restarts within " + format_duration(m_options.period),
      std::move(errors)));
}

}  // namespace corun
