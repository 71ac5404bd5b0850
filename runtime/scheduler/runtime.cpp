// The runtime's life: start-up, roots, shutdown.
//
// Shutdown (`~runtime_core`), in this order:
//  1. Request cancellation of the root scope. Every task descends from it, so each one sees
//     `cancelled` at its next suspension point and unwinds, running its destructors.
//  2. Close the root scope: `runtime::spawn` now throws. (A root spawned between 1 and 2 starts
//     under the cancelled root and unwinds like the others.)
//  3. Wait until the last root task completed. A task completes only after all its children,
//     so then every task of the runtime has completed and no coroutine will run again.
//  4. Set the stop flag, wake every sleeping worker, join all worker threads.
//  5. Detach the root scope from the runtime (late failure reports go to stderr) and drop our
//     reference to it. Frames of completed tasks still referenced by handles stay valid: a
//     handle needs nothing from the runtime.
#include "corun/runtime.hpp"

#include "corun/exception_group.hpp"
#include "corun/this_task.hpp"

#include "scheduler/futex.hpp"
#include "scheduler/runtime_core.hpp"
#include "scheduler/task_extras.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>

namespace corun {

namespace detail {

// ---- root_scope -------------------------------------------------------------------------------

bool root_scope::try_add_root() noexcept {
  // seq_cst, paired with close_and_wait: either this root is counted before shutdown reads the
  // count, or it sees the closing flag and backs out.
  m_live.fetch_add(1, std::memory_order_seq_cst);
  if (m_closing.load(std::memory_order_seq_cst)) {
    (void)child_completed(false);
    return false;
  }
  return true;
}

resumption root_scope::child_completed(bool /*child_failed*/) noexcept {
  if (m_live.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      m_closing.load(std::memory_order_seq_cst)) {
    m_quiesced.fetch_add(1, std::memory_order_release);
    futex_wake_all(&m_quiesced);
  }
  return {};
}

void root_scope::close_and_wait() {
  m_closing.store(true, std::memory_order_seq_cst);
  for (;;) {
    const std::uint32_t seen = m_quiesced.load(std::memory_order_acquire);
    if (m_live.load(std::memory_order_seq_cst) == 0) {
      return;
    }
    futex_wait(&m_quiesced, seen);
  }
}

void root_scope::detach_runtime() noexcept {
  const std::lock_guard lock(m_report_lock);
  m_runtime_alive = false;
  m_handler = nullptr;
}

void root_scope::report(const task_failure& failure) noexcept {
  const std::lock_guard lock(m_report_lock);
  if (m_runtime_alive && m_handler) {
    m_handler(failure);  // a handler that throws terminates: we are noexcept
    return;
  }
  report_on_stderr(failure);
}

void root_scope::adopt_failure(std::exception_ptr error, task_node& child) noexcept {
  report(task_failure{child.id(), child.name(), std::move(error)});
}

void root_scope::retain_for_report() { m_refs.fetch_add(1, std::memory_order_relaxed); }

void root_scope::release() noexcept {
  // acq_rel: the last release sees every use of the scope.
  if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete this;
  }
}

void report_on_stderr(const task_failure& failure) noexcept {
  try {
    std::string line = "corun: unhandled failure in task #" + std::to_string(failure.task_id);
    if (!failure.task_name.empty()) {
      line += " '" + failure.task_name + "'";
    }
    line += ": " + describe_exception(failure.error) + "\n";
    std::fputs(line.c_str(), stderr);
  } catch (...) {
    std::fputs("corun: unhandled task failure (no memory to describe it)\n", stderr);
  }
}

// ---- runtime_core -----------------------------------------------------------------------------

namespace {
std::size_t worker_count(std::size_t requested) {
  if (requested != 0) {
    return requested;
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware != 0 ? hardware : 1;
}
}  // namespace

runtime_core::runtime_core(runtime_options options)
    : m_options(std::move(options)),
      m_root(new root_scope(m_options.on_unhandled_exception)),
      m_idle(worker_count(m_options.workers)),
      m_timers(m_options.virtual_time) {
  const std::size_t count = worker_count(m_options.workers);
  m_options.workers = count;
  if (m_options.track_tasks) {
    m_tracker = std::make_unique<task_tracker>();
  }
  m_workers.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    m_workers.push_back(std::make_unique<worker>(*this, i));
  }
  for (auto& w : m_workers) {
    w->start();
  }
}

runtime_core::~runtime_core() {
  if (local_worker() != nullptr) {
    std::fputs("corun: a runtime was destroyed from one of its own tasks; aborting\n", stderr);
    std::abort();
  }
  m_root->request_cancel_nothrow("the runtime is shutting down",  // step 1
                                 cancel_origin::shutdown);
  m_root->close_and_wait();                           // steps 2 and 3
  m_stopping.store(true, std::memory_order_seq_cst);  // step 4
  for (const std::size_t index : m_idle.take_all_sleepers()) {
    m_workers[index]->unpark();
  }
  for (auto& w : m_workers) {
    w->join();
  }
  m_root->detach_runtime();  // step 5
  m_root->release();
}

clock_time runtime_core::take_timer_service(std::size_t worker) noexcept {
  if (m_timers.empty()) {
    return clock_time::max();
  }
  std::size_t expected = no_server;
  // seq_cst: step 3's handshake; the deadline is read after the service is taken.
  if (!m_timer_service.compare_exchange_strong(expected, worker, std::memory_order_seq_cst)) {
    return clock_time::max();
  }
  const clock_time deadline = m_timers.next_deadline();
  if (deadline == clock_time::max()) {
    drop_timer_service(worker);
  }
  return deadline;
}

void runtime_core::drop_timer_service(std::size_t worker) noexcept {
  std::size_t expected = worker;
  // Relaxed: the next server rereads the queue itself (seq_cst).
  m_timer_service.compare_exchange_strong(expected, no_server, std::memory_order_relaxed);
}

void runtime_core::timers_changed() noexcept {
  if (m_timers.is_virtual()) {
    return;  // nobody sleeps on a virtual deadline
  }
  // seq_cst: step 3's handshake; the armer published the deadline first.
  const std::size_t server = m_timer_service.load(std::memory_order_seq_cst);
  if (server != no_server) {
    m_workers[server]->kick();
    return;
  }
  if (const std::size_t sleeper = m_idle.worker_to_wake(); sleeper != idle::nobody) {
    wake(sleeper);
  }
}

bool runtime_core::jump_virtual_time() noexcept {
  const std::lock_guard lock(m_jump_lock);
  if (!m_idle.nobody_awake() || any_visible_work() || !m_timers.advance_to_next()) {
    return false;
  }
  m_timers.fire_due();
  return true;
}

void runtime_core::schedule(task_node& node) {
  if (worker* w = local_worker()) {
    w->push(node);
    return;
  }
  tsan_release(&node);  // the queue's fences are invisible to TSan (tsan.hpp)
  bool queued = false;
  {
    const tsan_ignored_accesses unchecked;
    queued = m_inject.enqueue(&node);
  }
  if (!queued) {
    throw std::bad_alloc();
  }
  m_injected.fetch_add(1, std::memory_order_relaxed);
  if (const std::size_t sleeper = m_idle.worker_to_wake_after_inject(); sleeper != idle::nobody) {
    m_workers[sleeper]->unpark();
  }
}

void runtime_core::schedule_nothrow(task_node& node) noexcept {
  if (worker* w = local_worker()) {
    w->push(node);
    return;
  }
  task_node* head = m_woken.load(std::memory_order_relaxed);
  do {
    node.m_next = head;
    // Release: the task's state (its resume point) is visible to the worker that takes it.
  } while (!m_woken.compare_exchange_weak(head, &node, std::memory_order_release,
                                          std::memory_order_relaxed));
  if (const std::size_t sleeper = m_idle.worker_to_wake_after_inject(); sleeper != idle::nobody) {
    wake(sleeper);
  }
}

task_node* runtime_core::take_woken() noexcept {
  // Acquire: pairs with the release CAS of schedule_nothrow.
  task_node* list = m_woken.exchange(nullptr, std::memory_order_acquire);
  if (list == nullptr) {
    return nullptr;
  }
  worker& self = *static_cast<worker*>(tl_thread.worker);
  for (task_node* rest = list->m_next; rest != nullptr;) {
    task_node* next = rest->m_next;
    self.push(*rest);
    rest = next;
  }
  return list;
}

bool runtime_core::any_visible_work() const noexcept {
  for (const auto& w : m_workers) {
    if (w->maybe_has_work()) {
      return true;
    }
  }
  std::size_t injected = 0;
  {
    const tsan_ignored_accesses unchecked;  // the queue's fences (tsan.hpp)
    injected = m_inject.size_approx();
  }
  // seq_cst: as the deque checks, against a concurrent schedule_nothrow (idle.hpp step 4).
  return injected != 0 || m_woken.load(std::memory_order_seq_cst) != nullptr;
}

runtime_stats runtime_core::stats() const {
  runtime_stats s;
  s.workers = m_workers.size();
  for (const auto& w : m_workers) {
    s.spawned += w->counters.spawned.load(std::memory_order_relaxed);
    s.completed += w->counters.completed.load(std::memory_order_relaxed);
    s.steals += w->counters.steals.load(std::memory_order_relaxed);
    s.parks += w->counters.parks.load(std::memory_order_relaxed);
  }
  s.injected = m_injected.load(std::memory_order_relaxed);
  s.spawned += s.injected;
  s.live_frames = live_frames();
  return s;
}

void spawn_root(runtime_core& core, task_node& node, std::coroutine_handle<> frame) {
  root_scope& root = core.root();
  if (!root.try_add_root()) {
    throw std::logic_error("corun: runtime::spawn on a runtime that is shutting down");
  }
  init_spawned(node, frame, root, core, clean_epoch_of_root(root));
  try {
    core.schedule(node);
  } catch (...) {
    // Not published: undo the count; the caller's guard destroys the frame.
    (void)root.child_completed(false);
    throw;
  }
  if (worker* w = core.local_worker()) {
    worker_counters::bump(w->counters.spawned);
  }
}

}  // namespace detail

// ---- runtime ----------------------------------------------------------------------------------

runtime::runtime(runtime_options options)
    : m_core(std::make_unique<detail::runtime_core>(std::move(options))) {}

runtime::~runtime() = default;

std::size_t runtime::workers() const noexcept { return m_core->options().workers; }

const std::string& runtime::name() const noexcept { return m_core->options().name; }

runtime_stats runtime::stats() const { return m_core->stats(); }

detail::clock_time runtime::now() const noexcept { return m_core->timers().now(); }

void runtime::advance(std::chrono::nanoseconds d) {
  detail::timer_queue& timers = m_core->timers();
  if (!timers.is_virtual()) {
    throw std::logic_error("corun: runtime::advance needs runtime_options::virtual_time");
  }
  timers.advance(d);
  timers.fire_due();
}

void runtime::dump_tasks(std::ostream& out) const {
  detail::task_tracker* tracker = m_core->tracker();
  out << "corun runtime '" << m_core->options().name << "': ";
  if (tracker == nullptr) {
    out << "task tracking is off (runtime_options::track_tasks)\n";
    return;
  }
  detail::task_tracker::write_text(out, tracker->snapshot(), tracker->untracked());
}

void runtime::dump_tasks_json(std::ostream& out) const {
  detail::task_tracker* tracker = m_core->tracker();
  if (tracker == nullptr) {
    out << "{\"tracking\":false}\n";
    return;
  }
  detail::task_tracker::write_json(out, tracker->snapshot(), tracker->untracked());
}

unhandled_exception_handler terminate_on_unhandled_exception() {
  return [](const task_failure& failure) {
    detail::report_on_stderr(failure);
    std::terminate();
  };
}

// ---- this_task --------------------------------------------------------------------------------

namespace this_task {

corun::detail::task_node& detail::current(const char* what) {
  corun::detail::task_node* node = corun::detail::tl_thread.current;
  if (node == nullptr) {
    throw std::logic_error(std::string("corun: ") + what + " called outside a corun task");
  }
  return *node;
}

std::uint64_t id() { return detail::current("this_task::id").id(); }

std::optional<cancelled> cancellation() {
  return corun::detail::cancellation_of(detail::current("this_task::cancellation"));
}

cancel_token token() {
  // The running task keeps its whole chain alive while the state takes its references.
  return cancel_token(corun::detail::make_token_state(detail::current("this_task::token")));
}

std::string name() { return detail::current("this_task::name").name(); }

}  // namespace this_task

}  // namespace corun
