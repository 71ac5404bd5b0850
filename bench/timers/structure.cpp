/// \file
/// `timer_structure/heap/...` and `timer_structure/wheel/...` (see structure.hpp): the same two
/// workloads on the runtime's timer heap and on the benchmark's timing wheel.
///
/// The heap is the runtime's own class, not a copy: `time/timer_queue.hpp` is a private header
/// of the library, which bench/CMakeLists.txt puts on this one file's include path.

#include "timers/structure.hpp"

#include "corun/detail/spin_lock.hpp"
#include "corun/detail/timer_entry.hpp"

#include "common/harness.hpp"
#include "time/timer_queue.hpp"
#include "timers/timing_wheel.hpp"

#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace bench::timers::structure {
namespace {

/// `corun::detail::timer_queue` on virtual time, so that the benchmark moves its clock. Times
/// are ns since the adapter was made.
class heap_structure {
 public:
  /// Timers fire in (deadline, arming order): `arm_fire` checks that order.
  static constexpr bool exact_order = true;

  struct timer : corun::detail::timer_entry {
    timer() noexcept : timer_entry(&on_fire) {}
    std::int64_t deadline = 0;
    fire_log* log = nullptr;
  };

  heap_structure() : m_origin(m_queue.now()) {}

  [[nodiscard]] std::int64_t now() const noexcept { return (m_queue.now() - m_origin).count(); }

  void arm(timer& t, std::int64_t deadline) {
    t.deadline = deadline;
    // Whether it became the earliest matters only to a runtime with a sleeping timer server.
    static_cast<void>(m_queue.arm(t, m_origin + std::chrono::nanoseconds(deadline)));
  }

  /// True if `t` was still pending (it must have been armed).
  bool cancel(timer& t) noexcept { return !m_queue.disarm(t); }

  /// As a worker does: a relaxed look at the earliest deadline, the lock only when one is due.
  void advance_to(std::int64_t time) noexcept {
    m_queue.advance(std::chrono::nanoseconds(time - now()));
    if (m_queue.maybe_due()) {
      m_queue.fire_due();
    }
  }

 private:
  static void on_fire(corun::detail::timer_entry& e) noexcept {
    auto& t = static_cast<timer&>(e);
    t.log->record(t.deadline);
  }

  corun::detail::timer_queue m_queue{true};
  corun::detail::clock_time m_origin;
};

/// `timing_wheel` under the runtime's `spin_lock`, firing after unlocking as the heap does.
/// Deadlines are rounded up to the tick, so nothing fires early.
class wheel_structure {
 public:
  static constexpr bool exact_order = false;

  struct timer : wheel_entry {
    timer() noexcept : wheel_entry(&on_fire) {}
    std::int64_t deadline = 0;
    fire_log* log = nullptr;
  };

  explicit wheel_structure(std::chrono::nanoseconds tick) noexcept : m_tick(tick.count()) {}

  [[nodiscard]] std::int64_t now() const noexcept { return m_now; }

  void arm(timer& t, std::int64_t deadline) noexcept {
    t.deadline = deadline;
    const auto expiry = static_cast<std::uint64_t>((deadline + m_tick - 1) / m_tick);
    bool queued = false;
    {
      const std::lock_guard lock(m_lock);
      queued = m_wheel.arm(t, expiry);
    }
    if (!queued) {
      t.fire(t);  // already due
    }
  }

  bool cancel(timer& t) noexcept {
    const std::lock_guard lock(m_lock);
    const bool pending = t.queued;
    m_wheel.cancel(t);
    return pending;
  }

  void advance_to(std::int64_t time) noexcept {
    m_now = time;
    wheel_entry* due = nullptr;
    {
      const std::lock_guard lock(m_lock);
      due = m_wheel.advance(static_cast<std::uint64_t>(time / m_tick));
    }
    while (due != nullptr) {
      wheel_entry& e = *due;
      due = e.next;  // read first: firing may re-arm the entry
      e.fire(e);
    }
  }

 private:
  static void on_fire(wheel_entry& e) noexcept {
    auto& t = static_cast<timer&>(e);
    t.log->record(t.deadline);
  }

  std::int64_t m_tick;
  std::int64_t m_now = 0;
  corun::detail::spin_lock m_lock;
  timing_wheel m_wheel;  // guarded by m_lock
};

/// The calling thread's CPU time (user and system). The benchmark is one thread that never
/// blocks, so this is its wall time minus the time other processes held the core, which on a
/// shared machine would otherwise be most of the noise.
[[nodiscard]] std::chrono::nanoseconds thread_cpu_now() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

/// Runs `once` untimed, then once per iteration, timing each with `SetIterationTime`; stops at
/// the first wrong answer. `once` returns its time, or a negative one if `check` failed.
template <class Once>
void measure_runs(benchmark::State& state, Once once) {
  if (once() < std::chrono::nanoseconds::zero()) {
    return;
  }
  for (auto _ : state) {
    const std::chrono::nanoseconds took = once();
    if (took < std::chrono::nanoseconds::zero()) {
      break;
    }
    state.SetIterationTime(std::chrono::duration<double>(took).count());
  }
}

[[nodiscard]] double per_op(std::chrono::nanoseconds total, const benchmark::State& state,
                            long ops) {
  const double count = static_cast<double>(state.iterations()) * static_cast<double>(ops);
  return count > 0 ? static_cast<double>(total.count()) / count : 0.0;
}

template <class Structure>
void run_arm_fire(benchmark::State& state, Structure& s) {
  const std::vector<std::int64_t> deadlines = arm_fire_deadlines();
  const long total = arm_fire_count();
  fire_log log;
  const std::unique_ptr<typename Structure::timer[]> timers(new typename Structure::timer[total]);
  for (long i = 0; i < total; ++i) {
    timers[i].log = &log;
  }
  std::chrono::nanoseconds arming{};
  std::chrono::nanoseconds firing{};
  bool timed = false;
  measure_runs(state, [&]() -> std::chrono::nanoseconds {
    const std::int64_t origin = s.now();
    log = fire_log{};
    log.now = origin;
    log.last_deadline = origin;
    const auto start = thread_cpu_now();
    for (long i = 0; i < total; ++i) {
      s.arm(timers[i], origin + deadlines[static_cast<std::size_t>(i)]);
    }
    const auto armed = thread_cpu_now();
    for (std::int64_t t = arm_fire_step.count(); t <= arm_fire_span.count();
         t += arm_fire_step.count()) {
      log.now = origin + t;
      s.advance_to(log.now);
    }
    const auto done = thread_cpu_now();
    if (!check(state, log.fired, total) || !check(state, log.early, 0L) ||
        (Structure::exact_order && !check(state, log.out_of_order, 0L))) {
      return std::chrono::nanoseconds(-1);
    }
    if (timed) {
      arming += armed - start;
      firing += done - armed;
    }
    timed = true;  // the first run is the untimed one
    return done - start;
  });
  state.counters["ns_per_op"] = per_op(arming + firing, state, total);
  state.counters["arm_ns"] = per_op(arming, state, total);
  state.counters["fire_ns"] = per_op(firing, state, total);
  state.counters["max_late_us"] = static_cast<double>(log.max_late) / 1e3;
}

template <class Structure>
void run_churn(benchmark::State& state, Structure& s) {
  const std::vector<std::int64_t> delays = churn_delays();
  const long pending = churn_pending();
  const long ops = churn_ops();
  const std::int64_t step = churn_step.count();
  const std::int64_t turn = pending * step;
  // On the heap exactly these fire: due before their slot comes round again, and before the
  // run ends (the timers left then are cancelled).
  long due = 0;
  for (long j = 0; j < ops; ++j) {
    const std::int64_t d = delays[static_cast<std::size_t>(j)];
    due += d < turn && (j + 1) * step + d <= ops * step ? 1 : 0;
  }
  fire_log log;
  const std::unique_ptr<typename Structure::timer[]> timers(new typename Structure::timer[pending]);
  for (long i = 0; i < pending; ++i) {
    timers[i].log = &log;
  }
  std::chrono::nanoseconds spent{};
  long fired = 0;
  bool timed = false;
  measure_runs(state, [&]() -> std::chrono::nanoseconds {
    const std::int64_t origin = s.now();
    log = fire_log{};
    log.now = origin;
    log.last_deadline = origin;
    // Untimed: the first timer of every slot, far enough ahead to be cancelled at its turn.
    for (long i = 0; i < pending; ++i) {
      s.arm(timers[i], origin + turn + 1 + i);
    }
    long cancelled = 0;
    const auto start = thread_cpu_now();
    for (long j = 0; j < ops; ++j) {
      log.now = origin + (j + 1) * step;
      s.advance_to(log.now);
      typename Structure::timer& t = timers[j % pending];
      cancelled += s.cancel(t) ? 1 : 0;
      s.arm(t, log.now + delays[static_cast<std::size_t>(j)]);
    }
    const auto done = thread_cpu_now();
    for (long i = 0; i < pending; ++i) {
      cancelled += s.cancel(timers[i]) ? 1 : 0;
    }
    if (!check(state, log.early, 0L) || !check(state, log.fired + cancelled, pending + ops) ||
        (Structure::exact_order && !check(state, log.fired, due))) {
      return std::chrono::nanoseconds(-1);
    }
    if (timed) {
      spent += done - start;
      fired += log.fired;
    }
    timed = true;
    return done - start;
  });
  state.counters["ns_per_op"] = per_op(spent, state, ops);
  const double runs = static_cast<double>(state.iterations());
  state.counters["fired_share"] =
      runs > 0 ? static_cast<double>(fired) / (runs * static_cast<double>(ops)) : 0.0;
  state.counters["max_late_us"] = static_cast<double>(log.max_late) / 1e3;
}

void heap_arm_fire(benchmark::State& state) {
  heap_structure s;
  run_arm_fire(state, s);
}

void heap_churn(benchmark::State& state) {
  heap_structure s;
  run_churn(state, s);
}

/// The wheel's argument is its tick in microseconds.
void wheel_arm_fire(benchmark::State& state) {
  wheel_structure s(std::chrono::microseconds(state.range(0)));
  run_arm_fire(state, s);
}

void wheel_churn(benchmark::State& state) {
  wheel_structure s(std::chrono::microseconds(state.range(0)));
  run_churn(state, s);
}

void single_thread(benchmark::internal::Benchmark* family) {
  family->UseManualTime()->Unit(benchmark::kMillisecond);
}

void wheel_ticks(benchmark::internal::Benchmark* family) {
  family->ArgName("tick_us")->Arg(1000)->Arg(1);
  single_thread(family);
}

}  // namespace

BENCHMARK(heap_arm_fire)->Name("timer_structure/heap/arm_fire")->Apply(single_thread);
BENCHMARK(wheel_arm_fire)->Name("timer_structure/wheel/arm_fire")->Apply(wheel_ticks);
BENCHMARK(heap_churn)->Name("timer_structure/heap/churn")->Apply(single_thread);
BENCHMARK(wheel_churn)->Name("timer_structure/wheel/churn")->Apply(wheel_ticks);

}  // namespace bench::timers::structure
