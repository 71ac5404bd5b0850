// The worker loop.
//
//  1. Run local work first: the deque's bottom (LIFO, cache-warm), then tasks that yielded.
//     Every 61st pick looks at the injection queue and the yielded tasks first, so neither can
//     be starved by a task that keeps spawning.
//  2. Out of local work: take from the injection queue, then search: become a searcher (at most
//     half the workers search at once) and try to steal from every other worker, starting at a
//     random victim, for a few rounds. A worker whose last steal brought it only leaves that
//     ran for less than the steal cost, from a victim that goes on spawning, first sleeps a
//     little (steal_backoff.hpp), so that their spawner runs the next ones itself.
//  3. Still nothing: park (idle.hpp, step 4), which rechecks every queue before sleeping; with
//     light pushes it first runs the heavy side of the asymmetric barrier. With timers pending,
//     one parked worker sleeps only until the earliest deadline (runtime_core.hpp, "Timers");
//     running workers fire due timers when they run dry and every 8th pick.
//  4. On shutdown the runtime sets the stop flag only after every task completed, then wakes
//     everybody; a worker exits when it finds the flag set and nothing to run.
//
// Deferred completion counts. A child that completes tells its parent task by decrementing the
// parent's `m_pending`, an RMW on a line that every worker running that parent's children
// writes. Instead a worker counts, in plain owner-only fields, the completions of children of
// one parent at a time (`m_deferred_parent`, `m_deferred_count`) and subtracts them in one RMW
// when it flushes. Delaying a decrement can only delay the parent's completion, never cause an
// early one, so the only obligation is to flush soon enough:
//  a. before running a task that is not a child of the deferred parent (its children cannot
//     all be done while one of them runs here, so deferring across them delays nothing);
//  b. before searching for work, sleeping after a steal that did not pay (steal_backoff.hpp),
//     parking or exiting;
//  c. when a child of another parent completes (one parent at a time);
//  d. the parent's own body, finishing on this worker, folds the count into its RMW.
// A flush that brings the count to zero completes the parent right there. The last child's
// completion needs no flush of its own: it either resumes somebody (rule a, for whom to resume
// next) or returns to the loop, which flushes before it picks anything but a sibling (rule a)
// or searches (rule b), and a sibling still running means the parent cannot be done. An earlier
// rule flushed at once when the parent's count looked down to this worker's: it read the
// parent's line on every completion, which the spawner writes on every spawn; on a two-worker
// spawn storm, dropping it took the median from 103 to 68 ns per task (25 runs each).
//
// Work-first spawns. A spawn that finds `eager_spawn_threshold` tasks or more queued on its
// worker runs the child at once, nested in `spawn`, instead of queuing it (`push_spawned_slow`), as
// Cilk runs every spawned child. The queued tasks are the parallel slack idle workers steal;
// one more in the queue adds nothing to it, and costs a push, a pop and, when its handle is
// awaited before it ran, a suspension of the joiner. Run at once, the child is usually done
// before its handle exists, so the join is a load, and it publishes DONE with a plain store, as
// nobody else holds a reference yet, and takes itself off its parent's owner count, which no
// other thread touches while the parent waits in `spawn` (task_lifecycle.cpp); a parent whose
// children all ran at once thus ends without an RMW or a deferred count. A storm of a million
// spawns from one task kept a million frames alive and missed the cache on each twice (when
// spawned and when run); now the spawner never gets further than the threshold ahead of the
// work. 12 and 16 were the best of 2 to 1024 (the fanout of skynet is 10, and fib's queue
// rarely reaches them); 12 since 2026-12-06 (eighth session): by instruction count, one worker,
// skynet -1.2% and nqueens -2.0% against 16, fib unchanged, and 8 to 11 cost fib 0.3-1.0%. The
// check rides on the push's full-ring comparison (chase_lev_deque.hpp,
// `try_push_under_soft_limit`), so a spawn that queues costs nothing more. Rules:
//  a. only the free `spawn`, whose child belongs to the running task; the deferred completion
//     count (above) is not flushed first: the child runs as part of the spawner's turn, so it
//     delays a flush no more than the spawner's own code does (the worker loop, rules a and
//     b, flushes as usual). A child that ends at once with a value touches no deferred count
//     (above); one that ends otherwise counts itself like any child (rule c);
//  b. the child spends the spawner's transfer budget (it nests on the same stack), and a
//     transfer it bounces is queued, as the worker loop that would take it is suspended under
//     the spawner;
//  c. at most `max_eager_depth` such runs nest (a child run at once spawns in turn); deeper
//     spawns queue, so the stack stays bounded;
//  d. the depth is read afresh only every 128 spawns (chase_lev_deque.hpp, `holds_at_least`),
//     or at once after a thief that found nothing anywhere said so (`note_thief_hungry`, after
//     the first round of its search). Without that word a thief that emptied the deque could
//     wait, parked, for as many children as the credit lasts: in a storm of 50,000 children of
//     about 0.5 us each, two workers were slower than one (speedup 0.84; 1.96 with every spawn
//     queued), and children of about 5 us gained only 1.22 (1.99 queued). The benchmark
//     storm_work measures it (2026-12-06, ninth session).
#include "scheduler/worker.hpp"

#include "memory/frame_pool.hpp"
#include "scheduler/asymmetric_barrier.hpp"
#include "scheduler/futex.hpp"
#include "scheduler/runtime_core.hpp"
#include "scheduler/task_extras.hpp"
#include "time/timer_queue.hpp"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <limits>
#include <new>
#include <string>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace corun::detail {

constinit thread_local thread_state tl_thread{};

namespace {

/// Rounds of stealing before a worker parks. Each round visits every other worker once.
constexpr int search_rounds = 4;
/// Most tasks a thief takes from one victim at once, beyond the one it runs.
constexpr std::int64_t max_steal_batch = 31;
/// Every how many picks a worker looks at the timers (a power of two).
constexpr std::uint32_t timer_check_interval = 8;
/// Every how many picks the injection queue and the yielded tasks go first (a prime, as tokio).
constexpr std::uint32_t fairness_interval = 61;

/// Work-first spawns nest at most this deep on one stack (a child run by a spawn spawns, and so
/// on); deeper spawns queue their child. A level costs the stack 96 bytes built by g++ 12 at
/// -O3, 848 at -O0 under ASan, 2,432 by clang 14 at -O0 under ASan (a chain of spawns, measured
/// 2026-12-07), so even 32 levels stay far below a worker's stack, and the bound is about the
/// depth of fork-join trees: a tree deeper than it queues the children of its deep nodes, and
/// their parents' joins, which await the first-queued child first, suspend. At 8, nqueens(12),
/// 13 levels deep, queued 92,000 of its 856,000 children at one worker and suspended 65,000
/// joins (none at 16); five interleaved rounds, 8 -> 16 -> 32: one worker 126.1 -> 117.8 ->
/// 118.1 ns per task, two 64.3 -> 59.6 -> 61.6, where at 8 two workers also fell into a slow
/// mode (about 95 ns) in a third of the runs; fib, skynet and the storm unchanged (2026-12-07,
/// fourteenth session).
constexpr std::uint32_t max_eager_depth = 32;

std::int64_t eager_threshold_of(std::size_t option) noexcept {
  constexpr auto largest = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(option, largest));
}

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

/// Nanoseconds of a monotonic clock, for timing steal trips (steal_backoff.hpp).
std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t next_random(std::uint64_t& state) noexcept {
  // xorshift64*: victim selection only needs to be cheap and spread out.
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

}  // namespace

worker::worker(runtime_core& core, std::size_t index)
    : m_core(core),
      m_idle(core.idle_state()),
      m_tracker(core.tracker()),
      m_index(index),
      m_solo_pops(asymmetric_barrier::available()),
      m_deque(asymmetric_barrier::available()),
      m_fair_countdown(fairness_interval),
      m_rng(0x9E3779B97F4A7C15ULL * (index + 1)),
      m_eager_threshold(eager_threshold_of(core.options().eager_spawn_threshold)) {
  m_yielded.reserve(64);
  m_deque.set_soft_limit(m_eager_threshold);
}

void worker::start() {
  m_thread = std::thread([this] { run(); });
}

void worker::join() {
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void worker::push_slow(task_node& node) noexcept {
  try {
    m_deque.push(&node);
  } catch (const std::bad_alloc&) {
    // No memory to grow the deque: keep the task on a list that needs none. The worker itself
    // runs it (it checks the list before sleeping), so it is late at worst, never lost.
    node.m_next = m_overflow;
    m_overflow = &node;
    return;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);  // as in `push`
  m_core.notify_work_pushed();
}

void worker::wake_one(std::uint64_t state) noexcept {
  if (const std::size_t sleeper = m_idle.wake_if_needed(state); sleeper != idle::nobody) {
    m_core.wake(sleeper);
  }
}

void worker::push_spawned_slow(task_node& child) noexcept {
  // Relaxed: a hint (see `note_thief_hungry`); the depth read that follows synchronises itself.
  if (CORUN_UNLIKELY(m_thief_hungry.load(std::memory_order_relaxed))) {
    m_thief_hungry.store(false, std::memory_order_relaxed);
    m_deque.forget_depth();
  }
  if (m_eager_threshold == 0 || m_eager_depth >= max_eager_depth ||
      !m_deque.holds_at_least(m_eager_threshold)) {
    push(child);
    return;
  }
  // Runs the child here, on this stack, until it first suspends or completes (one function
  // with the decision: a call and a frame less on every work-first spawn).
  thread_state& ts = tl_thread;
  // Nothing is bounced while a task body runs: a bounce ends the body's resumption at once.
  assert(ts.bounced == nullptr);
  task_node* const spawner = ts.current;
  // The child's transfers nest on the spawner's stack: they spend the spawner's budget.
  const std::uint32_t transfers_left = ts.transfers_left;
  ++m_eager_depth;
  task_node* const outer_child = std::exchange(m_eager_child, &child);
  ts.current = &child;
  child.m_resume.resume();
  m_eager_child = outer_child;
  --m_eager_depth;
  // A transfer bounced in the child cannot wait for the loop, which the spawner holds.
  if (task_node* bounced = std::exchange(ts.bounced, nullptr); bounced != nullptr) {
    push(*bounced);
  }
  ts.current = spawner;
  ts.transfers_left = transfers_left;
}

void worker::push_yielded(task_node& node) { m_yielded.push_back(&node); }

task_node* worker::pop_yielded() noexcept {
  if (m_yielded_head == m_yielded.size()) {
    return nullptr;
  }
  task_node* node = m_yielded[m_yielded_head++];
  if (m_yielded_head == m_yielded.size()) {
    m_yielded.clear();
    m_yielded_head = 0;
  }
  return node;
}

void runtime_core::wake(std::size_t sleeper) noexcept { m_workers[sleeper]->unpark(); }

void worker::unpark() noexcept {
  // Release: the waker's state changes happen before the woken worker's loop continues.
  m_unparked.store(1, std::memory_order_release);
  futex_wake(&m_unparked, 1);
}

void worker::kick() noexcept {
  std::uint32_t expected = 0;
  // Relaxed: a kick carries no data; the sleeper rereads the timer queue (seq_cst) itself. An
  // unpark already pending makes the kick unnecessary.
  if (m_unparked.compare_exchange_strong(expected, kick_mark, std::memory_order_relaxed)) {
    futex_wake(&m_unparked, 1);
  }
}

void worker::wait_for_unpark() noexcept {
  // Acquire: pairs with `unpark`. A stale kick is dropped: a wake-up is on its way.
  while (m_unparked.exchange(0, std::memory_order_acquire) != unpark_mark) {
    futex_wait(&m_unparked, 0);
  }
}

worker::wake_reason worker::wait_until(clock_time deadline) noexcept {
  for (;;) {
    // Acquire: pairs with `unpark`.
    const std::uint32_t mark = m_unparked.exchange(0, std::memory_order_acquire);
    if (mark == unpark_mark) {
      return wake_reason::unparked;
    }
    if (mark == kick_mark) {
      return wake_reason::kicked;
    }
    if (deadline == clock_time::max()) {
      futex_wait(&m_unparked, 0);
      continue;
    }
    const clock_time now = m_core.timers().now();
    if (now >= deadline) {
      return wake_reason::timed_out;
    }
    futex_wait_for(&m_unparked, 0, deadline - now);
  }
}

void worker::run() {
  tl_thread = thread_state{nullptr, 0, nullptr, this};
  configure_thread_frame_cache(m_core.options().recycle_frames);
  try {
    const std::string thread_name = m_core.options().name + "-w" + std::to_string(m_index);
    pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
  } catch (const std::bad_alloc&) {
    // The name is a convenience for debuggers; the worker runs without it.
  }

  for (;;) {
    task_node* node = next_task();
    if (node == nullptr) {
      if (m_core.timers().maybe_due() && m_core.timers().fire_due() != 0) {
        continue;  // what the timers woke is on our deque now
      }
      if (!back_off_if_last_trip_did_not_pay()) {
        continue;  // a flush completed a task, whose continuation may have left us work
      }
      node = search();
    }
    if (node != nullptr) {
      stop_searching();
      if (m_deferred_parent != nullptr && node->m_parent != m_deferred_parent) {
        flush_deferred();  // rule a
      }
      execute(*node);
      continue;
    }
    if (m_deferred_parent != nullptr) {
      flush_deferred();  // rule b; completing a parent may have made its joiner runnable
      continue;
    }
    if (m_core.stopping()) {
      break;
    }
    park();
  }
  tl_thread = thread_state{};
}

task_node* worker::next_task() {
  ++m_tick;
  // Timers are served between task steps, also under load: every 8th pick looks (one relaxed
  // load, and a clock read only while timers are pending), so a busy worker fires a due timer
  // within 8 task steps (the benchmark timer_lateness/corun_busy measures how late that is).
  if ((m_tick & (timer_check_interval - 1)) == 0 && m_core.timers().maybe_due()) {
    m_core.timers().fire_due();
  }
  if (CORUN_UNLIKELY(--m_fair_countdown == 0)) {
    m_fair_countdown = fairness_interval;
    if (task_node* node = m_core.pop_injected()) {
      return node;
    }
    if (task_node* node = pop_yielded()) {
      return node;
    }
  }
  if (task_node* node = m_deque.pop(no_thieves{this})) {
    return node;
  }
  if (m_overflow != nullptr) {
    task_node* node = m_overflow;
    m_overflow = node->m_next;
    return node;
  }
  if (task_node* node = pop_yielded()) {
    return node;
  }
  return m_core.pop_injected();
}

void worker::end_search() noexcept {
  m_searching = false;
  if (m_core.idle_state().end_search()) {
    // The last searcher found work: there may be more where it came from.
    m_core.notify_work_pushed();
  }
}

task_node* worker::steal_round() {
  auto& workers = m_core.workers();
  const std::size_t count = workers.size();
  const std::size_t start = static_cast<std::size_t>(next_random(m_rng) % count);
  const std::uint64_t trip_begin = now_ns();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t victim = (start + i) % count;
    if (victim == m_index) {
      continue;
    }
    worker& other = *workers[victim];
    if (task_node* node = other.steal()) {
      worker_counters::bump(counters.steals);
      // Take more in the same trip: a victim that spawns many small tasks then pays for one
      // cache-line migration per batch, not per task. The Chase-Lev deque has no atomic batch
      // steal, so these are single steals in a row; they stay cheap because this thread now
      // owns the victim's top line. How many depends on what the last batch was:
      //  - it spawned (or this is the first steal): half of what is left, as tokio and Go do.
      //    The victim's oldest tasks are then likely whole subtrees that its own joins will
      //    wait for; taking all of them leaves it to steal them back (fib, two workers: 8.2
      //    ns per task with half, 10.0 with all);
      //  - it spawned nothing: all of it. The victim queues leaves (a spawn storm), and each
      //    trip costs the same transfers however few tasks it brings, so leaving half behind
      //    only brings us back sooner. Two-worker spawn storm, seven interleaved rounds on the
      //    EPYC VM: median 26.0 -> 22.9 ns per task (oneTBB 124); fib, skynet and nqueens
      //    unchanged (2026-12-06, ninth session).
      const std::uint64_t spawned = counters.spawned.load(std::memory_order_relaxed);
      const bool stole_leaves = spawned == m_spawned_at_steal;
      m_spawned_at_steal = spawned;
      const std::int64_t left = other.size_hint();
      const std::int64_t extra = std::min(stole_leaves ? left : left / 2, max_steal_batch);
      for (std::int64_t k = 0; k < extra; ++k) {
        task_node* more = other.steal();
        if (more == nullptr) {
          break;
        }
        push(*more);
      }
      m_backoff.trip_done(trip_begin, now_ns(), other.spawn_count());
      m_last_victim = &other;
      return node;
    }
  }
  return nullptr;
}

task_node* worker::search() {
  for (int round = 0; round < search_rounds; ++round) {
    if (!m_searching) {
      m_searching = m_core.idle_state().try_begin_search();
    }
    if (m_searching) {
      if (task_node* node = steal_round()) {
        return node;
      }
      // Found nothing anywhere: tell the others, whose work-first spawns may be running
      // children on a depth read before we emptied their deques (rule d of "Work-first
      // spawns"). At once, not at the last round: the spawner then queues again before we park
      // (a park costs two membarriers here, and a wake-up). storm_work, two workers, five
      // interleaved rounds: 162 ns per task signalling after the first round, 177 after the
      // second, 190 after the last; the tiny-task storm 19.0, 17.9 and 18.3.
      if (round == 0) {
        for (const auto& other : m_core.workers()) {
          if (other.get() != this) {
            other->note_thief_hungry();
          }
        }
      }
    }
    if (task_node* node = m_core.pop_injected()) {
      return node;
    }
    for (int spin = 0; spin < 32; ++spin) {
      cpu_relax();
    }
  }
  return nullptr;
}

bool worker::back_off_if_last_trip_did_not_pay() {
  if (!m_backoff.has_trip_to_judge()) {
    return true;  // no clock read on every dry spell, only on the first after a steal
  }
  // Relaxed: our own counter. Unchanged since the trip: the tasks it brought spawned nothing.
  const bool spawned_nothing =
      counters.spawned.load(std::memory_order_relaxed) == m_spawned_at_steal;
  const std::uint64_t sleep = m_backoff.sleep_before_search(
      now_ns(), spawned_nothing, [this] { return m_last_victim->spawn_count(); });
  if (sleep == 0) {
    return true;
  }
  // Count the stolen children off their parent first (rule b of "Deferred completion counts"):
  // their parent must not wait for our sleep. A storm's spawner, its body done, would: with
  // waits stretched to 15-38 ms (experiments), the two-worker storm took 34 ns per task
  // counting after the wait, 21 before it.
  if (task_node* parent = take_deferred_completion()) {
    run_from(complete_task(*parent));
    return false;
  }
  std::this_thread::sleep_for(std::chrono::nanoseconds(sleep));
  return true;
}

void worker::before_stealing_again() noexcept {
  if (m_solo_pops) {
    // We are counted as awake again (by our waker, or by cancel_park): an owner that saw us
    // asleep may be in a solo pop; this barrier orders its store of bottom before our steals.
    asymmetric_barrier::heavy();
  }
}

void worker::park() {
  park_until_woken();
  before_stealing_again();
}

void worker::park_until_woken() {
  worker_counters::bump(counters.parks);
  m_core.idle_state().transition_to_parked(m_index, m_searching);
  m_searching = false;
  if (asymmetric_barrier::available()) {
    asymmetric_barrier::heavy();  // pushers' stores are now visible to the recheck
  }
  if (m_core.any_visible_work() || m_core.stopping()) {
    if (m_core.idle_state().cancel_park(m_index)) {
      m_searching = true;
      return;
    }
    wait_for_unpark();
    m_searching = true;
    return;
  }
  timer_queue& timers = m_core.timers();
  if (timers.is_virtual()) {
    // Virtual time moves only when every worker sleeps: the last to fall asleep jumps the clock
    // to the earliest deadline and fires what is due (runtime_core.hpp, "Timers").
    if (m_core.jump_virtual_time()) {
      if (m_core.idle_state().cancel_park(m_index)) {
        m_searching = true;
        return;
      }
    }
    wait_for_unpark();
    m_searching = true;
    return;
  }
  const clock_time deadline = m_core.take_timer_service(m_index);
  const wake_reason reason = wait_until(deadline);
  if (deadline != clock_time::max()) {
    m_core.drop_timer_service(m_index);
  }
  // Kicked or timed out: leave the park and fire the due timers from the loop, unless a
  // waker already took us off the sleepers (then its wake-up is on the way).
  if (reason != wake_reason::unparked && !m_core.idle_state().cancel_park(m_index)) {
    wait_for_unpark();
  }
  // Woken workers are counted as searching by whoever woke them (idle.hpp, step 5), and a
  // worker that took itself off the sleepers by `cancel_park`.
  m_searching = true;
}

task_node* worker::switch_deferred_parent(task_node& parent) noexcept {
  task_node* previous = m_deferred_parent;
  const std::int64_t count = std::exchange(m_deferred_count, 1);
  m_deferred_parent = &parent;
  // acq_rel: as in child_completed. If that was the previous parent's last decrement, it is
  // completed first; this one stays deferred (the caller's loop completes one task at a time).
  if (previous != nullptr &&
      previous->m_pending.fetch_sub(count, std::memory_order_acq_rel) == count) {
    return previous;
  }
  return nullptr;
}

task_node* worker::take_deferred_completion() noexcept {
  task_node* parent = std::exchange(m_deferred_parent, nullptr);
  const std::int64_t count = std::exchange(m_deferred_count, 0);
  // acq_rel: as in child_completed.
  if (parent != nullptr && parent->m_pending.fetch_sub(count, std::memory_order_acq_rel) == count) {
    return parent;
  }
  return nullptr;
}

void worker::flush_deferred() noexcept {
  if (task_node* parent = take_deferred_completion()) {
    run_from(complete_task(*parent));
  }
}

void worker::execute(task_node& node) noexcept {
  // A depth seen deep in an earlier task's turn is not trusted in this one: thieves may have
  // emptied the deque since, and a child run at once that blocks its thread until this task
  // goes on would then deadlock a queue that was never deep (stress/sched_park_storm.cpp).
  m_deque.forget_depth();
  tl_thread.current = &node;
  run_from(node.m_resume);
}

void worker::run_from(std::coroutine_handle<> h) noexcept {
  thread_state& ts = tl_thread;
  ts.transfers_left = max_inline_depth;
  h.resume();
  while (ts.bounced != nullptr) {
    task_node* next = ts.bounced;
    ts.bounced = nullptr;
    ts.current = next;
    ts.transfers_left = max_inline_depth;
    next->m_resume.resume();
  }
  ts.current = nullptr;
}

}  // namespace corun::detail
