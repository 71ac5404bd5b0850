// Model check of the park/notify protocol of runtime/scheduler/idle.hpp (steps 1-5 there) and
// the worker loop around it (runtime/scheduler/worker.cpp: search, stop_searching, park,
// unpark/wait_for_unpark), under Relacy.
//
// `idle_model` is a line-by-line replica of `corun::detail::idle` (the runtime class is not a
// template) with the same memory orders: the state word (bits 0..31 searching, 32..63 unparked)
// changed by seq_cst RMWs, and the sleepers list under a mutex. The producer's work goes on the
// real `chase_lev_deque` (through `rl_atomic`), so a push is the runtime's push, and the parking
// worker's recheck is the runtime's `maybe_nonempty`.
//
// Threads: thread 0 produces one task; threads 1 and 2 are idle workers that search, park and
// sleep exactly as the worker loop does. Whoever runs the task then shuts the model runtime down
// as `~runtime_core` does (stop flag, wake every sleeper), and every worker must exit. A lost
// wake-up leaves the task untaken while both workers sleep on their futex (a condition variable
// here), which Relacy reports as a DEADLOCK. The task's payload is an rl::var written before the
// push, so its runner also proves the push happened-before the run.
//
// Variants that must hold:
//  - a worker's push with the seq_cst exchange, then `worker_to_wake`'s seq_cst load;
//  - a worker's light push (release store) with the asymmetric barrier, modelled as what it
//    guarantees: a seq_cst fence between the pusher's store and its state load, paired with the
//    seq_cst fence of the parker's `asymmetric_barrier::heavy()` before its recheck;
//  - an injection from a non-worker thread (queue enqueue, a release store here) followed by
//    `worker_to_wake_after_inject`'s seq_cst RMW on the state.
// Variants that must be caught (the test fails if Relacy finds no lost wake-up):
//  - the push published with a release store and the state read relaxed;
//  - the light push without the asymmetric barrier (why the membarrier is needed);
//  - an injection followed by a plain seq_cst load of the state instead of the RMW (why
//    `worker_to_wake_after_inject` uses `fetch_add(0)`).
#include "scheduler/chase_lev_deque.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
// After every other header (see rl_shim.hpp).
#include "rl_shim.hpp"

namespace {

using corun::model::read;
using corun::model::rl_atomic;
using corun::model::rl_lock_guard;
using corun::model::run_options;
using corun::model::thread_fence;
using corun::model::write;

constexpr std::size_t max_workers = 3;

/// Replica of corun::detail::idle (runtime/scheduler/idle.hpp, idle.cpp).
class idle_model {
 public:
  explicit idle_model(std::size_t workers) : m_workers(workers), m_state(pack(workers, 0)) {
    write(m_sleeper_count, 0);
    for (auto& s : m_sleepers) {
      write(s, -1);
    }
  }

  /// Step 1 for a worker's push. `load_order` is seq_cst in the runtime (relaxed only in a
  /// deliberately broken variant).
  [[nodiscard]] std::optional<std::size_t> worker_to_wake(
      std::memory_order load_order = std::memory_order_seq_cst) {
    const std::uint64_t state = m_state.load(load_order);
    if (searching(state) != 0 || unparked(state) >= m_workers) {
      return std::nullopt;
    }
    return wake_if_needed(state);
  }
  /// Step 1 for an injection.
  [[nodiscard]] std::optional<std::size_t> worker_to_wake_after_inject() {
    return wake_if_needed(m_state.fetch_add(0, std::memory_order_seq_cst));
  }

  /// Step 2.
  [[nodiscard]] bool try_begin_search() {
    const std::uint64_t state = m_state.load(std::memory_order_relaxed);
    if (2 * searching(state) >= m_workers) {
      return false;
    }
    m_state.fetch_add(one_searching, std::memory_order_seq_cst);
    return true;
  }

  /// Step 3.
  [[nodiscard]] bool end_search() {
    const std::uint64_t prev = m_state.fetch_sub(one_searching, std::memory_order_seq_cst);
    return searching(prev) == 1;
  }

  /// Step 4, first half.
  void transition_to_parked(std::size_t worker, bool was_searching) {
    const rl_lock_guard lock(m_lock);
    m_state.fetch_sub(one_unparked + (was_searching ? one_searching : 0),
                      std::memory_order_seq_cst);
    push_sleeper(worker);
  }

  /// Step 4, the recheck found work.
  [[nodiscard]] bool cancel_park(std::size_t worker) {
    const rl_lock_guard lock(m_lock);
    const std::size_t n = sleeper_count();
    for (std::size_t i = 0; i < n; ++i) {
      if (sleeper(i) == worker) {
        for (std::size_t j = i; j + 1 < n; ++j) {  // erase
          write(m_sleepers[j], read(m_sleepers[j + 1]));
        }
        set_sleeper_count(n - 1);
        m_state.fetch_add(one_unparked + one_searching, std::memory_order_seq_cst);
        return true;
      }
    }
    return false;
  }

  /// Shutdown: takes every sleeper off the list; writes them to `out`, returns how many.
  std::size_t take_all_sleepers(std::array<std::size_t, max_workers>& out) {
    const rl_lock_guard lock(m_lock);
    const std::size_t n = sleeper_count();
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = sleeper(i);
    }
    set_sleeper_count(0);
    m_state.fetch_add(n * (one_unparked + one_searching), std::memory_order_seq_cst);
    return n;
  }

 private:
  static constexpr std::uint64_t one_searching = 1;
  static constexpr std::uint64_t one_unparked = std::uint64_t{1} << 32;
  static constexpr std::uint64_t pack(std::uint64_t unparked_count, std::uint64_t searching_count) {
    return unparked_count * one_unparked + searching_count;
  }
  static constexpr std::uint64_t searching(std::uint64_t state) { return state & 0xffffffffU; }
  static constexpr std::uint64_t unparked(std::uint64_t state) { return state >> 32; }

  std::optional<std::size_t> wake_if_needed(std::uint64_t state) {
    if (searching(state) != 0 || unparked(state) >= m_workers) {
      return std::nullopt;
    }
    const rl_lock_guard lock(m_lock);
    // Re-read under the lock: sleepers only come and go under it.
    state = m_state.load(std::memory_order_seq_cst);
    const std::size_t n = sleeper_count();
    if (searching(state) != 0 || n == 0) {
      return std::nullopt;
    }
    const std::size_t worker = sleeper(n - 1);
    set_sleeper_count(n - 1);
    // The woken worker starts as a searcher (step 5).
    m_state.fetch_add(one_unparked + one_searching, std::memory_order_seq_cst);
    return worker;
  }

  // The sleepers list (a std::vector in the runtime); callers hold m_lock.
  [[nodiscard]] std::size_t sleeper_count() const {
    return static_cast<std::size_t>(read(m_sleeper_count));
  }
  void set_sleeper_count(std::size_t n) { write(m_sleeper_count, static_cast<int>(n)); }
  [[nodiscard]] std::size_t sleeper(std::size_t i) const {
    return static_cast<std::size_t>(read(m_sleepers[i]));
  }
  void push_sleeper(std::size_t worker) {
    const std::size_t n = sleeper_count();
    RL_ASSERT(n < max_workers);
    write(m_sleepers[n], static_cast<int>(worker));
    set_sleeper_count(n + 1);
  }

  const std::size_t m_workers;
  rl_atomic<std::uint64_t> m_state;
  rl::mutex m_lock;
  // The sleepers list, guarded by m_lock (rl::var: an unguarded access is a reported race).
  std::array<rl::var<int>, max_workers> m_sleepers;
  rl::var<int> m_sleeper_count;
};

/// A worker's futex word with `worker::unpark` and `worker::wait_for_unpark`.
struct parking_word {
  rl_atomic<std::uint32_t> unparked{0};
  corun::model::rl_futex futex;

  void unpark() {
    // Release: the waker's state changes happen before the woken worker's loop continues.
    unparked.store(1, std::memory_order_release);
    futex.wake();
  }

  void wait_for_unpark() {
    // Acquire: pairs with `unpark`.
    while (unparked.exchange(0, std::memory_order_acquire) == 0) {
      futex.wait(unparked, 0);
    }
  }
};

enum class producer_kind {
  seq_cst_push,           // runtime: push with the seq_cst exchange
  light_push_barrier,     // runtime: light push + asymmetric barrier (modelled as two SC fences)
  inject,                 // runtime: injection + worker_to_wake_after_inject
  release_push_relaxed,   // broken: release push, relaxed state load
  light_push_no_barrier,  // broken: light push without the asymmetric barrier
  inject_plain_load,      // broken: injection followed by a seq_cst load instead of the RMW
};

struct task {
  rl::var<int> payload;  // written by the producer before publishing, checked by the runner
};

using deque = corun::detail::chase_lev_deque<task*, rl_atomic>;

template <producer_kind Kind>
struct park_test : rl::test_suite<park_test<Kind>, 3> {
  static constexpr bool injects =
      Kind == producer_kind::inject || Kind == producer_kind::inject_plain_load;
  static constexpr bool light = Kind == producer_kind::light_push_barrier ||
                                Kind == producer_kind::light_push_no_barrier ||
                                Kind == producer_kind::release_push_relaxed;
  static constexpr bool barrier = Kind == producer_kind::light_push_barrier;
  // A pushing producer is worker 0 (busy running the task that pushed); an injecting one is not
  // a worker.
  static constexpr std::size_t workers = injects ? 2 : 3;

  task work;
  std::unique_ptr<deque> dq;  // the producer's deque (the idle workers' own deques stay empty)
  // The injection queue (moodycamel, one producer): the enqueue publishes with a release store
  // of the tail, size_approx reads relaxed, a dequeue claims with a CAS.
  rl_atomic<int> inject_tail{0};
  rl_atomic<int> inject_head{0};
  idle_model idle{workers};
  std::array<parking_word, max_workers> words;
  rl_atomic<bool> stopping{false};
  int runs = 0;  // how many times the task ran

  void before() { dq = std::make_unique<deque>(light, 2); }

  void after() {
    RL_ASSERT(runs == 1);
    dq.reset();
  }

  // ---- runtime_core ----

  void notify_work_pushed() {
    const std::memory_order order = Kind == producer_kind::release_push_relaxed
                                        ? std::memory_order_relaxed
                                        : std::memory_order_seq_cst;
    if (const auto sleeper = idle.worker_to_wake(order)) {
      words[*sleeper].unpark();
    }
  }

  task* pop_injected() {
    int head = inject_head.load(std::memory_order_relaxed);
    if (head >= inject_tail.load(std::memory_order_acquire)) {
      return nullptr;
    }
    return inject_head.compare_exchange_strong(head, head + 1, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)
               ? &work
               : nullptr;
  }

  bool any_visible_work() {
    if (dq->maybe_nonempty()) {
      return true;
    }
    // size_approx() != 0, as moodycamel computes it for one producer.
    const int tail = inject_tail.load(std::memory_order_relaxed);
    const int head = inject_head.load(std::memory_order_relaxed);
    return head < tail;
  }

  void shutdown() {
    // ~runtime_core, step 4.
    stopping.store(true, std::memory_order_seq_cst);
    std::array<std::size_t, max_workers> sleepers{};
    const std::size_t n = idle.take_all_sleepers(sleepers);
    for (std::size_t i = 0; i < n; ++i) {
      words[sleepers[i]].unpark();
    }
  }

  // ---- the producer ----

  void produce() {
    write(work.payload, 42);
    if constexpr (injects) {
      inject_tail.store(1, std::memory_order_release);  // enqueue
      if constexpr (Kind == producer_kind::inject) {
        if (const auto sleeper = idle.worker_to_wake_after_inject()) {
          words[*sleeper].unpark();
        }
      } else {
        notify_work_pushed();
      }
    } else {
      dq->push(&work);  // worker::push
      if constexpr (barrier) {
        // The pusher's side of the asymmetric barrier: the parker's membarrier puts a full
        // barrier somewhere in this thread's instruction stream; the compiler barrier keeps it
        // between the store and the load at worst. Equivalent to a seq_cst fence here.
        thread_fence(std::memory_order_seq_cst);
      }
      notify_work_pushed();
    }
    // The producer stays busy with its own task: it never takes the work back.
  }

  // ---- an idle worker (worker::run) ----

  void run_task(task* t) {
    RL_ASSERT(t == &work);
    RL_ASSERT(read(t->payload) == 42);
    ++runs;
    shutdown();
  }

  task* steal_anything() {
    if constexpr (injects) {
      return nullptr;
    } else {
      return dq->steal();
    }
  }

  void work_loop(std::size_t me) {
    bool searching = false;
    for (;;) {
      task* t = pop_injected();  // next_task: the own deque is empty
      if (t == nullptr) {
        // search(), one round.
        if (!searching) {
          searching = idle.try_begin_search();
        }
        if (searching) {
          t = steal_anything();
        }
        if (t == nullptr) {
          t = pop_injected();
        }
      }
      if (t != nullptr) {
        // stop_searching()
        if (searching) {
          searching = false;
          if (idle.end_search()) {
            notify_work_pushed();
          }
        }
        run_task(t);
        continue;
      }
      if (stopping.load(std::memory_order_seq_cst)) {
        return;
      }
      // park()
      idle.transition_to_parked(me, searching);
      searching = false;
      if constexpr (barrier) {
        thread_fence(std::memory_order_seq_cst);  // asymmetric_barrier::heavy()
      }
      if (any_visible_work() || stopping.load(std::memory_order_seq_cst)) {
        if (idle.cancel_park(me)) {
          searching = true;
          continue;
        }
      }
      words[me].wait_for_unpark();
      searching = true;
    }
  }

  void thread(unsigned index) {
    if (index == 0) {
      produce();
    } else {
      work_loop(injects ? index - 1 : index);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  using corun::model::expect_caught;
  using corun::model::expect_holds;
  using corun::model::scaled;
  const double scale = corun::model::iteration_scale(argc, argv);
  const run_options bounded{rl::sched_bound, 0, 2};  // every interleaving with <= 2 preemptions
  const run_options random{rl::sched_random, scaled(300000, scale)};
  bool ok = true;
  ok &= expect_holds<park_test<producer_kind::seq_cst_push>>("seq_cst push vs two parking workers",
                                                             bounded);
  ok &= expect_holds<park_test<producer_kind::seq_cst_push>>("seq_cst push vs two parking workers",
                                                             random);
  ok &= expect_holds<park_test<producer_kind::light_push_barrier>>(
      "light push + asymmetric barrier vs two parking workers", bounded);
  ok &= expect_holds<park_test<producer_kind::light_push_barrier>>(
      "light push + asymmetric barrier vs two parking workers", random);
  ok &= expect_holds<park_test<producer_kind::inject>>(
      "injection + RMW on the state vs two parking workers", bounded);
  ok &= expect_holds<park_test<producer_kind::inject>>(
      "injection + RMW on the state vs two parking workers", random);
  ok &= expect_caught<park_test<producer_kind::release_push_relaxed>>(
      "BROKEN release push + relaxed state load", random, rl::test_result_deadlock);
  ok &= expect_caught<park_test<producer_kind::light_push_no_barrier>>(
      "BROKEN light push without the asymmetric barrier", random, rl::test_result_deadlock);
  ok &= expect_caught<park_test<producer_kind::inject_plain_load>>(
      "BROKEN injection + plain seq_cst load of the state", random, rl::test_result_deadlock);
  std::cout << (ok ? "park model: all checks passed" : "park model: FAILED") << std::endl;
  return ok ? 0 : 1;
}
