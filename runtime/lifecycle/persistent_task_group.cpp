// persistent_task_group: its scope and registry, its host task, and the waits of as_completed,
// join and stop.
//
// Where the group sits in the task tree:
//  1. Construction. The scope (scope_kind::persistent) is made first; then the host task, a
//     coroutine holding a reference on the scope, whose frame becomes the scope's parent before
//     the group's task creator starts it. So the group's tasks are children of the scope, the
//     scope a child of the host, and the host wherever the creator puts tasks. The creator
//     waits for the host like for any of its tasks; cancelling the creator reaches the host and
//     through it every task of the group. Children do not fail fast: the scope is not a group
//     scope, so a failing child cancels nobody (task_lifecycle.cpp asks only group scopes).
//  2. The host waits (phase 1, a cancellable waiter) until the group is destroyed and no task
//     runs (`m_live == 0`). If it is cancelled first, it waits (phase 2, not cancellable) only
//     until no task runs. Whoever makes that condition true under the lock (the last
//     completing child, the destructor, or the host itself) moves the host to `finishing`;
//     from then on `spawn` refuses tasks, so `m_live` stays 0 and the scope's parent (the host)
//     outlives every child. The host then marks itself `gone` and, if the group was destroyed,
//     takes the registry: its unacknowledged failures make the host fail (cancellations
//     dropped), so they reach the creator as any dropped handle's failure would.
//  3. Destruction of the group object marks the scope closed and cancels the scope if tasks
//     run; if the host is already gone, the destructor takes the registry itself and reports
//     the unacknowledged failures as unhandled. Exactly one of host and destructor takes it.
//
// The registry:
//  4. Spawn, under the lock: refused once the host is finishing; the task is registered
//     (`m_running`, one reference), linked under the scope (`init_spawned`) and counted in
//     `m_live`, then scheduled outside the lock without allocating (`schedule_nothrow`, also from
//     a thread that is not a worker).
//  5. A completing child (`child_completed`, after its DONE was published) takes one off
//     `m_live`, bumps `m_generation` and wakes every waiter of `m_waiters`; on a failure it also
//     prints the failures that asked for it (`log_exception`), outside the lock.
//  6. Whoever looks at the registry first moves the tasks that are DONE from `m_running` to
//     `m_waiting_ack` (`refresh`, spawn order), reading the generation in the same critical
//     section. A waiter that saw generation G sleeps until it differs, so a completion after the
//     look always wakes it.
//  7. Acknowledging a task (as_completed moving on, join, stop) removes it from `m_waiting_ack`,
//     marks its failure observed (the group handled it) and drops the registry's reference
//     outside the lock (it may destroy the frame, whose destructors are user code).
#include "corun/persistent_task_group.hpp"

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"
#include "corun/shield.hpp"
#include "corun/timeout.hpp"

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/waiter.hpp"

#include "scheduler/runtime_core.hpp"
#include "scheduler/task_extras.hpp"
#include "scheduler/worker.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <mutex>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace corun::detail {

namespace {

/// One task of the registry.
struct entry {
  task_node* node;
  /// Print its failure when it happens (`log_exception`, not printed yet).
  bool log;
};

/// The host task's progress (step 2).
enum class host_state : std::uint8_t { waiting, draining, finishing, gone };

/// Registry entries whose reference is dropped when this goes, outside the scope's lock.
class released_entries {
 public:
  released_entries() = default;
  released_entries(const released_entries&) = delete;
  released_entries& operator=(const released_entries&) = delete;
  ~released_entries() {
    for (const entry& e : list) {
      release_ref(*e.node);
    }
  }
  std::vector<entry> list;
};

/// What awaiting a task that ended cancelled throws: its `task_cancelled`.
std::exception_ptr cancellation_error(task_node& node) noexcept {
  try {
    throw_outcome(node);
  } catch (...) {
    return std::current_exception();
  }
}

std::string count_of(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

class persistent_scope final : public scope_node {
 public:
  explicit persistent_scope(std::string unique_id) noexcept
      : scope_node(scope_kind::persistent, nullptr, scope_ops_of<persistent_scope>),
        m_unique_id(std::move(unique_id)) {}

  void retain() noexcept {
    // Relaxed: a new reference is made from an existing one.
    m_refs.fetch_add(1, std::memory_order_relaxed);
  }

  // --- scope_node ---
  // The scope operations (scope_ops).
  void adopt_failure(const std::exception_ptr& error, task_node& child) noexcept {
    // The registry holds a reference on each task until it is acknowledged, and acknowledging
    // marks the failure observed, so this needs a failure that slipped past both: report it.
    report_unhandled(child, error);
  }
  [[nodiscard]] resumption child_completed(bool child_failed) noexcept;
  void retain_for_report() { retain(); }
  void release() noexcept {
    // acq_rel: the last release sees every use of the scope.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  // --- Under m_lock ---
  /// Step 6. Throws `std::bad_alloc` before changing anything.
  void refresh() {
    m_waiting_ack.reserve(m_waiting_ack.size() + m_running.size());
    std::size_t kept = 0;
    for (const entry& e : m_running) {
      if (e.node->done()) {
        m_waiting_ack.push_back(e);  // reserved: cannot throw
      } else {
        m_running[kept++] = e;
      }
    }
    m_running.resize(kept);
  }
  /// Step 2: claims the host's phase-1 waiter for the object; the host is finishing then.
  [[nodiscard]] waiter* claim_host_waiter() noexcept {
    waiter* w = m_host_waiter;
    if (w == nullptr || !try_claim(*w)) {
      return nullptr;  // not waiting yet (it will look), or its cancel got it (phase 2 looks)
    }
    m_host_waiter = nullptr;
    m_host = host_state::finishing;
    return w;
  }
  /// Takes the whole registry (the group is closed and the host gone): the finished tasks
  /// waiting for acknowledgement first, then those not looked at yet (all DONE by then).
  void take_registry(released_entries& waiting, released_entries& running) noexcept {
    waiting.list.swap(m_waiting_ack);
    running.list.swap(m_running);
  }

  // --- Out of the lock ---
  /// Step 3.
  void close() noexcept;
  /// Requests cancellation of every task running now (`persistent_task_group::cancel`).
  void cancel_running(const std::string& message);
  /// The finished tasks waiting for acknowledgement, taken (acknowledged) all at once.
  [[nodiscard]] std::vector<entry> take_waiting();
  /// Step 7 for `node` (if nobody acknowledged it meanwhile).
  void acknowledge(task_node& node) noexcept;
  /// Step 2, once the host stopped waiting: marks it gone and, if the group was destroyed,
  /// hands the registry to the host to settle.
  void host_gone(released_entries& waiting, released_entries& running) noexcept;

  const std::string m_unique_id;
  /// The host's runtime, set once by `attach_persistent_host` before the group is used.
  runtime_core* m_rt = nullptr;
  std::atomic<std::uint32_t> m_refs{1};
  mutable spin_lock m_lock;
  std::vector<entry> m_running;      // guarded by m_lock; spawned, not seen DONE (spawn order)
  std::vector<entry> m_waiting_ack;  // guarded by m_lock; seen DONE, not acknowledged
  std::size_t m_live = 0;            // guarded by m_lock; spawned, not yet child_completed
  std::uint64_t m_generation = 0;    // guarded by m_lock; bumped by every child_completed
  std::size_t m_logging = 0;         // guarded by m_lock; entries with `log` set
  waiter_queue m_waiters;            // guarded by m_lock; as_completed, join and stop waits
  waiter* m_host_waiter = nullptr;   // guarded by m_lock; the host in phase 1
  resumption m_host_resume;          // guarded by m_lock; the host in phase 2
  host_state m_host = host_state::waiting;  // guarded by m_lock
  bool m_closed = false;                    // guarded by m_lock; the group object is gone

 private:
  ~persistent_scope() = default;
};

// ---- Waits -----------------------------------------------------------------------------------

namespace {

/// Step 6: waits until a task of the group completes after the look that read `seen`.
/// The waiter protocol of detail/waiter.hpp; a suspension point.
class change_awaiter {
 public:
  change_awaiter(persistent_scope& scope, std::uint64_t seen) noexcept
      : m_scope(scope), m_seen(seen) {}
  change_awaiter(const change_awaiter&) = delete;
  change_awaiter& operator=(const change_awaiter&) = delete;

  [[nodiscard]] bool await_ready() {
    m_cancelled = checkpoint_or_ready("persistent_task_group");
    if (m_cancelled) {
      return true;
    }
    const std::lock_guard lock(m_scope.m_lock);
    return m_scope.m_generation != m_seen;
  }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
    m_scope.m_lock.lock();
    if (m_scope.m_generation != m_seen) {
      m_scope.m_lock.unlock();
      return false;
    }
    m_scope.m_waiters.push_back(m_waiter);
    m_suspended = true;
    return arm_and_unlock(m_waiter, h, wait_kind::children, m_scope.m_lock);  // nothing after
  }
  void await_resume() {
    if (m_cancelled) {
      throw_cancelled_current();
    }
    if (m_suspended && !resumed(m_waiter)) {
      {
        const std::lock_guard lock(m_scope.m_lock);
        m_scope.m_waiters.remove(m_waiter);
      }
      throw_cancelled_current();
    }
  }

 private:
  persistent_scope& m_scope;
  std::uint64_t m_seen;
  waiter m_waiter;
  bool m_cancelled = false;
  bool m_suspended = false;
};

/// Step 2, phase 1 of the host: until the group is destroyed and idle (yields true), or the
/// host is cancelled (yields false).
class host_awaiter {
 public:
  explicit host_awaiter(persistent_scope& scope) noexcept : m_scope(scope) {}
  host_awaiter(const host_awaiter&) = delete;
  host_awaiter& operator=(const host_awaiter&) = delete;

  [[nodiscard]] bool await_ready() {
    m_cancelled = checkpoint_or_ready("persistent_task_group host");
    if (m_cancelled) {
      return true;
    }
    const std::lock_guard lock(m_scope.m_lock);
    return finished();
  }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) noexcept {
    m_scope.m_lock.lock();
    if (finished()) {
      m_scope.m_lock.unlock();
      return false;
    }
    m_scope.m_host_waiter = &m_waiter;
    m_suspended = true;
    return arm_and_unlock(m_waiter, h, wait_kind::children, m_scope.m_lock);  // nothing after
  }
  [[nodiscard]] bool await_resume() noexcept {
    if (m_cancelled) {
      return false;
    }
    if (m_suspended && !resumed(m_waiter)) {
      const std::lock_guard lock(m_scope.m_lock);
      if (m_scope.m_host_waiter == &m_waiter) {
        m_scope.m_host_waiter = nullptr;
      }
      return false;
    }
    return true;
  }

 private:
  /// Under the lock: the host may end (the object may also have claimed us already).
  [[nodiscard]] bool finished() noexcept {
    if (m_scope.m_host == host_state::waiting && m_scope.m_closed && m_scope.m_live == 0) {
      m_scope.m_host = host_state::finishing;
    }
    return m_scope.m_host == host_state::finishing;
  }

  persistent_scope& m_scope;
  waiter m_waiter;
  bool m_cancelled = false;
  bool m_suspended = false;
};

/// Step 2, phase 2 of the host (cancelled): until no task runs. Not a cancellation point: the
/// host is cancelled already, and must outlive the tasks it is the ancestor of.
class drain_awaiter {
 public:
  explicit drain_awaiter(persistent_scope& scope) noexcept : m_scope(scope) {}
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const noexcept {
    task_node& self = *this_thread_state().current;
    leave_stack(self);  // we may wait long: our inline joiners need their cancel wake-ups
    const std::lock_guard lock(m_scope.m_lock);
    if (m_scope.m_live == 0) {
      m_scope.m_host = host_state::finishing;
      return false;
    }
    m_scope.m_host = host_state::draining;
    m_scope.m_host_resume = resumption{&self, h};
    return true;  // the last child_completed resumes us; the lock is released before that
  }
  void await_resume() const noexcept {}

 private:
  persistent_scope& m_scope;
};

/// One look (step 6): the generation seen, whether no task runs, and the first finished task
/// waiting for acknowledgement (with a reference) if any.
struct look {
  std::uint64_t generation = 0;
  bool idle = false;
  task_handle first;
  task_node* first_node = nullptr;
};

look take_look(persistent_scope& scope) {
  look result;
  const std::lock_guard lock(scope.m_lock);
  scope.refresh();
  result.generation = scope.m_generation;
  result.idle = scope.m_running.empty();
  if (!scope.m_waiting_ack.empty()) {
    task_node* node = scope.m_waiting_ack.front().node;
    node->add_ref();
    result.first = task_handle(node);
    result.first_node = node;
  }
  return result;
}

/// Waits until no task of the group runs (a suspension point).
task<void> wait_idle(persistent_scope_ref scope) {
  for (;;) {
    const look now = take_look(*scope);
    if (now.idle) {
      co_return;
    }
    change_awaiter changed(*scope, now.generation);
    co_await changed;
  }
}

task<void> wait_change(persistent_scope_ref scope, std::uint64_t seen) {
  change_awaiter changed(*scope, seen);
  co_await changed;
}

/// Turns taken entries into the failures `join`/`stop`/the host report, drops the registry's
/// references, and throws the failures as an `exception_group` described by `what`.
void settle(std::initializer_list<released_entries*> taken, bool with_cancelled,
            const std::string& what) {
  std::vector<std::exception_ptr> failures;
  for (released_entries* release : taken) {
    for (const entry& e : release->list) {
      task_node& node = *e.node;
      if (node.outcome() == task_outcome::error) {
        node.mark_observed();
        failures.push_back(node.error());
      } else if (node.outcome() == task_outcome::cancelled && with_cancelled) {
        failures.push_back(cancellation_error(node));
      }
    }
  }
  for (released_entries* release : taken) {
    released_entries dropped;  // now, not when the caller's lists go
    dropped.list.swap(release->list);
  }
  if (!failures.empty()) {
    const std::size_t count = failures.size();
    throw exception_group(what + count_of(count, "task failed", "tasks failed"),
                          std::move(failures));
  }
}

/// The host task (step 2).
task<void> run_host(persistent_scope_ref scope) {
  host_awaiter until_finished(*scope);
  if (!co_await until_finished) {
    drain_awaiter until_drained(*scope);
    co_await until_drained;
  }
  released_entries waiting;
  released_entries running;
  scope->host_gone(waiting, running);
  settle({&waiting, &running}, false,
         "corun: persistent_task_group '" + scope->m_unique_id +
             "' was destroyed without acknowledging its failures: ");
}

task<void> run_join(persistent_scope_ref scope) {
  task<void> idle = wait_idle(scope);
  co_await std::move(idle);
  released_entries taken;
  taken.list = scope->take_waiting();
  settle({&taken}, true, "corun: persistent_task_group '" + scope->m_unique_id + "': ");
}

task<void> run_stop(persistent_scope_ref scope, std::string message) {
  scope->cancel_running(message);
  // Not interrupted by the caller's cancellation: the tasks were cancelled, so the wait lasts
  // as long as their cleanup, and nobody is left running when stop() returns.
  task<void> idle = wait_idle(scope);
  task<void> shielded = shield(std::move(idle));
  co_await std::move(shielded);
  released_entries taken;
  taken.list = scope->take_waiting();
  settle({&taken}, false, "corun: persistent_task_group '" + scope->m_unique_id + "': ");
}

async_generator<task_handle> run_as_completed(persistent_scope_ref scope,
                                              std::optional<std::chrono::nanoseconds> timeout) {
  for (;;) {
    look now = take_look(*scope);
    while (now.first_node != nullptr) {
      const task_handle kept = now.first;  // keeps the node (and its address) ours
      co_yield std::move(now.first);
      // The consumer asked for the next item: the task was handled.
      scope->acknowledge(*now.first_node);
      now = take_look(*scope);
    }
    if (now.idle) {
      co_return;
    }
    if (timeout) {
      task<void> changed = wait_change(scope, now.generation);
      task<bool> bounded = move_on_after(*timeout, std::move(changed));
      if (!co_await std::move(bounded)) {
        co_return;  // no task finished in time
      }
    } else {
      change_awaiter changed(*scope, now.generation);
      co_await changed;
    }
  }
}

std::string generated_unique_id() {
  static std::atomic<std::uint64_t> next{1};
  // Relaxed: ids only need to be unique.
  const std::uint64_t id = next.fetch_add(1, std::memory_order_relaxed);
  char text[2 * sizeof id + 1];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(id));
  return text;
}

}  // namespace

// ---- persistent_scope --------------------------------------------------------------------------

resumption persistent_scope::child_completed(bool child_failed) noexcept {
  retain();  // the host woken below may end and drop the last other reference before we return
  std::vector<task_node*> to_log;
  waiter* woken = nullptr;  // claimed waiters, linked through q_next
  waiter* host = nullptr;
  resumption host_next;
  {
    const std::lock_guard lock(m_lock);
    --m_live;
    ++m_generation;
    if (child_failed && m_logging != 0) {
      for (std::vector<entry>* list : {&m_running, &m_waiting_ack}) {
        for (entry& e : *list) {
          if (!e.log || !e.node->done()) {
            continue;
          }
          if (e.node->outcome() == task_outcome::error) {
            try {
              to_log.push_back(e.node);
            } catch (...) {
              continue;  // no memory to print it now: a later failure's look may
            }
            e.node->add_ref();  // printed after the lock, when an acknowledgement may drop ours
          }
          e.log = false;
          --m_logging;
        }
      }
    }
    while (waiter* w = m_waiters.pop_front()) {
      if (try_claim(*w)) {
        w->q_next = woken;
        woken = w;
      }
    }
    if (m_live == 0) {
      if (m_host == host_state::draining) {
        m_host = host_state::finishing;
        host_next = m_host_resume;
      } else if (m_host == host_state::waiting && m_closed) {
        host = claim_host_waiter();
      }
    }
  }
  while (woken != nullptr) {
    waiter* next = woken->q_next;  // before the wake: the waiter may be gone right after
    wake(*woken);
    woken = next;
  }
  if (host != nullptr) {
    wake(*host);
  }
  for (task_node* node : to_log) {
    try {
      const std::string line = "corun: persistent_task_group '" + m_unique_id +
                               "': " + task_label(*node) +
                               " failed: " + describe_exception(node->error()) + "\n";
      std::fputs(line.c_str(), stderr);
    } catch (...) {
      std::fputs("corun: a persistent_task_group task failed (no memory to describe it)\n", stderr);
    }
    release_ref(*node);
  }
  release();
  return host_next;  // the completion loop resumes the draining host
}

void persistent_scope::close() noexcept {
  released_entries waiting;
  released_entries running;
  waiter* host = nullptr;
  bool cancel_tasks = false;
  {
    const std::lock_guard lock(m_lock);
    m_closed = true;
    cancel_tasks = m_live != 0;
    if (m_host == host_state::gone) {
      take_registry(waiting, running);
    } else if (m_live == 0 && m_host == host_state::waiting) {
      host = claim_host_waiter();
    }
  }
  if (cancel_tasks) {
    try {
      request_cancel("corun: persistent_task_group '" + m_unique_id + "' was destroyed",
                     cancel_origin::scope_exit);
    } catch (...) {
      request_cancel_nothrow("corun: a persistent_task_group was destroyed");
    }
  }
  if (host != nullptr) {
    wake(*host);
  }
  // The host ended before the group was destroyed (its creator was cancelled): nobody can
  // take these failures any more.
  for (const released_entries* list : {&waiting, &running}) {
    for (const entry& e : list->list) {
      if (e.node->outcome() == task_outcome::error) {
        e.node->mark_observed();
        report_unhandled(*e.node, e.node->error());
      }
    }
  }
}

void persistent_scope::cancel_running(const std::string& message) {
  std::vector<task_handle> running;
  {
    const std::lock_guard lock(m_lock);
    running.reserve(m_running.size());
    for (const entry& e : m_running) {
      if (!e.node->done()) {
        e.node->add_ref();
        running.emplace_back(e.node);
      }
    }
  }
  for (const task_handle& handle : running) {
    handle.cancel(message);  // outside the lock: cancel callbacks run here
  }
}

std::vector<entry> persistent_scope::take_waiting() {
  std::vector<entry> taken;
  const std::lock_guard lock(m_lock);
  refresh();
  taken.swap(m_waiting_ack);
  for (const entry& e : taken) {
    if (e.log) {
      --m_logging;
    }
  }
  return taken;
}

void persistent_scope::acknowledge(task_node& node) noexcept {
  {
    const std::lock_guard lock(m_lock);
    const auto found = std::find_if(m_waiting_ack.begin(), m_waiting_ack.end(),
                                    [&](const entry& e) { return e.node == &node; });
    if (found == m_waiting_ack.end()) {
      return;  // somebody else acknowledged it meanwhile
    }
    if (found->log) {
      --m_logging;
    }
    m_waiting_ack.erase(found);
  }
  node.mark_observed();
  release_ref(node);  // the registry's reference; the caller still holds one of its own
}

void persistent_scope::host_gone(released_entries& waiting, released_entries& running) noexcept {
  const std::lock_guard lock(m_lock);
  m_host = host_state::gone;
  if (m_closed) {
    take_registry(waiting, running);
  }
}

// ---- The interface of the header ---------------------------------------------------------------

void persistent_scope_retain(persistent_scope& scope) noexcept { scope.retain(); }
void persistent_scope_release(persistent_scope& scope) noexcept { scope.release(); }

persistent_scope_ref make_persistent_scope(std::string unique_id) {
  if (unique_id.empty()) {
    unique_id = generated_unique_id();
  }
  return persistent_scope_ref(new persistent_scope(std::move(unique_id)));
}

task<void> make_persistent_host(const persistent_scope_ref& scope) {
  task<void> host = run_host(scope);
  auto frame = host.release();
  // Before the creator starts it, and before any task can be spawned into the scope: the scope
  // is a child of the host (step 1). The frame is handed on as a task again.
  scope->m_parent = &frame.promise();
  return frame.promise().get_return_object();
}

void attach_persistent_host(persistent_scope& scope) {
  const auto* host = static_cast<const task_node*>(scope.m_parent);
  if (host->m_rt == nullptr) {
    // The creator keeps the host for later: the group cannot place tasks anywhere. The host
    // ends as soon as it runs (closed, nothing running).
    scope.close();
    throw std::logic_error(
        "corun: persistent_task_group: the task creator did not start the group's host task "
        "at once");
  }
  scope.m_rt = host->m_rt;
}

const std::string& persistent_scope_id(const persistent_scope& scope) noexcept {
  return scope.m_unique_id;
}

void persistent_spawn(persistent_scope& scope, task_node& child, std::coroutine_handle<> frame,
                      spawn_options options) {
  runtime_core& rt = *scope.m_rt;
  if (const task_node* spawner = this_thread_state().current;
      spawner != nullptr && spawner->m_rt != &rt) {
    throw std::logic_error(
        "corun: persistent_task_group::spawn called from a task of another runtime");
  }
  std::string name = scope.m_unique_id + ':';
  name += options.name.empty() ? std::to_string(child.id()) : options.name;
  name_task(child, std::move(name));
  {
    const std::lock_guard lock(scope.m_lock);
    if (scope.m_host == host_state::finishing || scope.m_host == host_state::gone) {
      throw std::logic_error("corun: spawn into persistent_task_group '" + scope.m_unique_id +
                             "', which is closed: its task creator was cancelled and its last "
                             "task ended");
    }
    scope.m_running.push_back(entry{&child, options.log_exception});  // may throw: nothing done
    init_spawned(child, frame, scope, rt, 0);  // epoch 0: checks its chain when it first looks
    child.add_ref();                           // the registry's reference
    ++scope.m_live;
    if (options.log_exception) {
      ++scope.m_logging;
    }
  }
  if (worker* self = rt.local_worker()) {
    worker_counters::bump(self->counters.spawned);
  }
  rt.schedule_nothrow(child);  // a local push on a worker of rt, else the wake-up list
}

}  // namespace corun::detail

namespace corun {

persistent_task_group::~persistent_task_group() { m_scope->close(); }

async_generator<task_handle> persistent_task_group::as_completed(
    std::optional<std::chrono::nanoseconds> timeout) {
  return detail::run_as_completed(m_scope, timeout);
}

void persistent_task_group::cancel(const std::string& message) { m_scope->cancel_running(message); }

task<void> persistent_task_group::stop(std::string message) {
  return detail::run_stop(m_scope, std::move(message));
}

task<void> persistent_task_group::join() { return detail::run_join(m_scope); }

bool persistent_task_group::is_running() const {
  const std::lock_guard lock(m_scope->m_lock);
  return std::any_of(m_scope->m_running.begin(), m_scope->m_running.end(),
                     [](const detail::entry& e) { return !e.node->done(); });
}

std::vector<task_handle> persistent_task_group::tasks() const {
  std::vector<task_handle> out;
  const std::lock_guard lock(m_scope->m_lock);
  m_scope->refresh();
  out.reserve(m_scope->m_running.size() + m_scope->m_waiting_ack.size());
  for (const std::vector<detail::entry>* list : {&m_scope->m_running, &m_scope->m_waiting_ack}) {
    for (const detail::entry& e : *list) {
      e.node->add_ref();
      out.emplace_back(e.node);
    }
  }
  return out;
}

std::ostream& operator<<(std::ostream& out, const persistent_task_group& group) {
  std::size_t running = 0;
  std::size_t waiting = 0;
  {
    const std::lock_guard lock(group.m_scope->m_lock);
    group.m_scope->refresh();
    running = group.m_scope->m_running.size();
    waiting = group.m_scope->m_waiting_ack.size();
  }
  return out << "persistent_task_group<unique_id=" << group.unique_id() << ", running=" << running
             << ", waiting_ack=" << waiting << ">";
}

}  // namespace corun
