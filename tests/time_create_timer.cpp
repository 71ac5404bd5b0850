/// \file
/// `create_timer` and its `timer_delay_policy`s, on virtual time (exact and instant).
///
/// Every tick logs its start, its end, its cancellation and its failure at `now() - start`; a
/// log is printed sorted by (time, tick, kind) as tokens `<kind><tick>@<ms>`: `s` started, `e`
/// ended, `d` cancelled by the timer's next deadline (`cancel` policy), `c` cancelled for
/// another reason (the timer stopped or failed), `f` failed. The interval is always 100 ms.
#include "corun/cancel_and_await.hpp"
#include "corun/create_timer.hpp"
#include "corun/shield.hpp"
#include "corun/time.hpp"

#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using corun::task;
using corun::timer_delay_policy;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

constexpr timer_delay_policy all_policies[] = {
    timer_delay_policy::accumulate, timer_delay_policy::cancel, timer_delay_policy::skip,
    timer_delay_policy::delay, timer_delay_policy::burst};

const char* policy_name(timer_delay_policy policy) {
  switch (policy) {
    case timer_delay_policy::accumulate:
      return "accumulate";
    case timer_delay_policy::cancel:
      return "cancel";
    case timer_delay_policy::skip:
      return "skip";
    case timer_delay_policy::delay:
      return "delay";
    case timer_delay_policy::burst:
      return "burst";
  }
  return "?";
}

/// The events of a timer's ticks, on the runtime clock relative to `start`.
class tick_log {
 public:
  /// Sets the time the log counts from: before the timer starts (the spawn publishes it).
  void set_start(corun::time_point start) noexcept { m_start = start; }
  [[nodiscard]] corun::time_point start() const noexcept { return m_start; }
  /// Milliseconds since `start` on the running task's clock.
  [[nodiscard]] long long elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(corun::now() - m_start).count();
  }
  void add(int tick, char kind) {
    const long long at = elapsed_ms();
    const std::lock_guard guard(m_lock);
    m_events.emplace_back(at, tick, kind_rank(kind), kind);
  }
  /// The events sorted by (time, tick, kind), as `s0@0 s1@100 e0@250 ...`.
  [[nodiscard]] std::string str() const {
    const std::lock_guard guard(m_lock);
    std::vector<event> sorted = m_events;
    std::sort(sorted.begin(), sorted.end());
    std::string text;
    for (const auto& [at, tick, rank, kind] : sorted) {
      if (!text.empty()) {
        text += ' ';
      }
      text += kind + std::to_string(tick) + '@' + std::to_string(at);
    }
    return text;
  }

 private:
  using event = std::tuple<long long, int, int, char>;
  /// A tick's events at one time, in causal order.
  static int kind_rank(char kind) { return kind == 's' ? 0 : kind == 'e' ? 1 : 2; }

  corun::time_point m_start{};
  mutable std::mutex m_lock;
  std::vector<event> m_events;
};

/// What tick number `tick` does: sleeps `busy`, then fails if `fails`. If cancelled while
/// busy, it first runs a cleanup of `cleanup` shielded from the cancel, then returns normally
/// when `cleanup` is positive (a tick that ignores its cancellation) or ends cancelled.
struct tick_plan {
  std::chrono::milliseconds busy{0};
  std::chrono::milliseconds cleanup{0};
  bool fails = false;
};
using plan_fn = tick_plan (*)(int tick);

task<void> sleep_a_while(std::chrono::milliseconds d) { co_await corun::sleep_for(d); }

task<void> run_tick(tick_log& log, int tick, tick_plan plan) {
  log.add(tick, 's');
  bool cancelled = false;
  try {
    co_await corun::sleep_for(plan.busy);
  } catch (const corun::cancelled& c) {
    log.add(tick, c.origin() == corun::cancel_origin::deadline ? 'd' : 'c');
    if (plan.cleanup <= 0ms) {
      throw;
    }
    cancelled = true;
  }
  if (cancelled) {
    // Named, not awaited as a temporary (g++ 12, README "Known compiler bugs").
    task<void> cleanup = sleep_a_while(plan.cleanup);
    co_await corun::shield(std::move(cleanup));
  }
  if (plan.fails) {
    log.add(tick, 'f');
    throw test_error(tick);
  }
  log.add(tick, 'e');
}

/// The timer's function: a plain callable returning the tick's task (numbered from 0).
struct logged_tick {
  tick_log* log;
  std::atomic<int>* ticks;
  plan_fn plan;
  task<void> operator()() const {
    const int tick = ticks->fetch_add(1);
    return run_tick(*log, tick, plan(tick));
  }
};

/// How a scenario ended: when the controller got the timer's outcome, when the run ended,
/// and which `test_error` the timer failed with (-1: none).
struct outcome {
  long long stopped_ms = -1;
  long long ended_ms = -1;
  int error = -1;
};

/// Waits for the timer until `stop` (or until it fails), stops it with `cancel_and_await`,
/// then lets a second go by in which no tick may start.
task<outcome> stop_timer_at(tick_log& log, corun::join_handle<void>& timer,
                            std::chrono::milliseconds stop) {
  outcome result;
  try {
    co_await corun::sleep_until(log.start() + stop);
    task<void> stopping = corun::cancel_and_await(timer);
    co_await std::move(stopping);
  } catch (const test_error& e) {
    result.error = e.id();
  }
  result.stopped_ms = log.elapsed_ms();
  co_await corun::sleep_for(1s);
  result.ended_ms = log.elapsed_ms();
  co_return result;
}

/// Awaits the timer, which must fail (a tick failed); then a second in which nothing starts.
task<outcome> await_failure(tick_log& log, corun::join_handle<void>& timer) {
  outcome result;
  try {
    co_await timer;
  } catch (const test_error& e) {
    result.error = e.id();
  }
  result.stopped_ms = log.elapsed_ms();
  co_await corun::sleep_for(1s);
  result.ended_ms = log.elapsed_ms();
  co_return result;
}

task<outcome> timer_until(tick_log& log, std::atomic<int>& ticks, timer_delay_policy policy,
                          plan_fn plan, std::chrono::milliseconds stop) {
  corun::join_handle<void> timer =
      corun::create_timer(logged_tick{&log, &ticks, plan}, 100ms, policy);
  task<outcome> controller = stop_timer_at(log, timer, stop);
  co_return co_await std::move(controller);
}

task<outcome> timer_until_failure(tick_log& log, std::atomic<int>& ticks, timer_delay_policy policy,
                                  plan_fn plan) {
  corun::join_handle<void> timer =
      corun::create_timer(logged_tick{&log, &ticks, plan}, 100ms, policy);
  task<outcome> controller = await_failure(log, timer);
  co_return co_await std::move(controller);
}

/// The log and outcome of a timer run from a task and stopped at `stop`.
struct run_result {
  std::string log;
  outcome result;
};

run_result run_timer_until(std::size_t workers, timer_delay_policy policy, plan_fn plan,
                           std::chrono::milliseconds stop) {
  std::atomic<int> ticks{0};
  tick_log log;
  corun::runtime rt(with_virtual_time(workers));
  log.set_start(rt.now());
  const outcome result = rt.block_on(timer_until(log, ticks, policy, plan, stop));
  return {log.str(), result};
}

/// The same, for runs whose stop takes no time (every cancelled tick unwinds at once): checks
/// that and that nothing ran in the second after it; returns the log.
std::string run_until(std::size_t workers, timer_delay_policy policy, plan_fn plan,
                      std::chrono::milliseconds stop) {
  const run_result run = run_timer_until(workers, policy, plan, stop);
  CHECK(run.result.stopped_ms == stop.count());
  CHECK(run.result.ended_ms == stop.count() + 1000);
  CHECK(run.result.error == -1);
  return run.log;
}

tick_plan busy_250ms(int /*tick*/) { return {.busy = 250ms}; }
tick_plan busy_30ms(int /*tick*/) { return {.busy = 30ms}; }
tick_plan busy_100ms(int /*tick*/) { return {.busy = 100ms}; }
/// The first tick overruns two deadlines (100 and 200 ms); the others take 30 ms.
tick_plan first_overruns(int tick) { return {.busy = tick == 0 ? 250ms : 30ms}; }

/// Counts live instances of itself (moved-from ones too) and poisons its value when destroyed.
class capture_probe {
 public:
  explicit capture_probe(std::atomic<int>& live) noexcept : m_live(&live) { m_live->fetch_add(1); }
  capture_probe(capture_probe&& other) noexcept : m_live(other.m_live), m_value(other.m_value) {
    m_live->fetch_add(1);
  }
  capture_probe(const capture_probe&) = delete;
  capture_probe& operator=(const capture_probe&) = delete;
  capture_probe& operator=(capture_probe&&) = delete;
  ~capture_probe() {
    m_value = -1;
    m_live->fetch_sub(1);
  }
  [[nodiscard]] int value() const noexcept { return m_value; }

 private:
  std::atomic<int>* m_live;
  int m_value = 42;
};

}  // namespace

TEST_SUITE("time_create_timer") {
  TEST_CASE("accumulate: a tick starts every interval from t=0, overlapping the running ones") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Ticks of 250 ms: up to three run at once; the three running at the stop are cancelled.
      CHECK(run_until(workers, timer_delay_policy::accumulate, busy_250ms, 1020ms) ==
            "s0@0 s1@100 s2@200 e0@250 s3@300 e1@350 s4@400 e2@450 s5@500 e3@550 s6@600 "
            "e4@650 s7@700 e5@750 s8@800 e6@850 s9@900 e7@950 s10@1000 c8@1020 c9@1020 "
            "c10@1020");
    }
  }

  TEST_CASE("accumulate is the default policy") {
    std::atomic<int> ticks{0};
    tick_log log;
    corun::runtime rt(with_virtual_time(2));
    log.set_start(rt.now());
    const outcome result = rt.block_on([&]() -> task<outcome> {
      const logged_tick fn{&log, &ticks, busy_250ms};  // an lvalue: copied into the timer
      corun::join_handle<void> timer = corun::create_timer(fn, std::chrono::milliseconds(100));
      task<outcome> controller = stop_timer_at(log, timer, 320ms);
      co_return co_await std::move(controller);
    }());
    CHECK(result.stopped_ms == 320);
    CHECK(log.str() == "s0@0 s1@100 s2@200 e0@250 s3@300 c1@320 c2@320 c3@320");
  }

  TEST_CASE("cancel: a tick still running at the next deadline is cancelled, then the next runs") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Each tick is cut by the next deadline (`d`, origin `deadline`), the last by the stop.
      CHECK(run_until(workers, timer_delay_policy::cancel, busy_250ms, 1020ms) ==
            "s0@0 d0@100 s1@100 d1@200 s2@200 d2@300 s3@300 d3@400 s4@400 d4@500 s5@500 "
            "d5@600 s6@600 d6@700 s7@700 d7@800 s8@800 d8@900 s9@900 d9@1000 s10@1000 "
            "c10@1020");
    }
  }

  TEST_CASE("cancel: ticks that end within their interval are never cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Only the stop at 420 cancels one (`c`, not `d`).
      CHECK(run_until(workers, timer_delay_policy::cancel, busy_30ms, 420ms) ==
            "s0@0 e0@30 s1@100 e1@130 s2@200 e2@230 s3@300 e3@330 s4@400 c4@420");
    }
  }

  TEST_CASE(
      "cancel: the next tick waits for the cancelled one to unwind, and deadlines it overran "
      "are skipped") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Tick 0 is cut at 100 but cleans up for 150 ms more and returns: tick 1 starts late at
      // 250 (the 200 ms deadline is skipped) and the grid goes on at 300.
      const plan_fn plan = [](int tick) -> tick_plan {
        if (tick == 0) {
          return {.busy = 1000ms, .cleanup = 150ms};
        }
        return {.busy = 30ms};
      };
      CHECK(run_until(workers, timer_delay_policy::cancel, plan, 520ms) ==
            "s0@0 d0@100 e0@250 s1@250 e1@280 s2@300 e2@330 s3@400 e3@430 s4@500 c4@520");
    }
  }

  TEST_CASE("burst: after an overrun the missed ticks run back to back until caught up") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Deadlines stay at 0, 100, 200, ...: ticks 1 and 2 (due at 100 and 200) run at once
      // one after the other, tick 3 (due at 300) is late by 10 ms, tick 4 is on time.
      CHECK(run_until(workers, timer_delay_policy::burst, first_overruns, 720ms) ==
            "s0@0 e0@250 s1@250 e1@280 s2@280 e2@310 s3@310 e3@340 s4@400 e4@430 s5@500 "
            "e5@530 s6@600 e6@630 s7@700 c7@720");
    }
  }

  TEST_CASE("delay: after an overrun the missed tick runs at once and the grid restarts there") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Tick 1 (due at 100) starts when tick 0 ended, at 250; the next ones every 100 ms after.
      CHECK(run_until(workers, timer_delay_policy::delay, first_overruns, 720ms) ==
            "s0@0 e0@250 s1@250 e1@280 s2@350 e2@380 s3@450 e3@480 s4@550 e4@580 s5@650 "
            "e5@680");
    }
  }

  TEST_CASE("skip: after an overrun the missed tick runs at once, then the grid goes on") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      // Tick 1 (due at 100) starts at 250; the 200 ms deadline is skipped; tick 2 at 300.
      CHECK(run_until(workers, timer_delay_policy::skip, first_overruns, 720ms) ==
            "s0@0 e0@250 s1@250 e1@280 s2@300 e2@330 s3@400 e3@430 s4@500 e4@530 s5@600 "
            "e5@630 s6@700 c6@720");
    }
  }

  TEST_CASE("skip, delay, burst: ticks that always overrun run back to back, one at a time") {
    for (const std::size_t workers : worker_counts) {
      for (const timer_delay_policy policy :
           {timer_delay_policy::skip, timer_delay_policy::delay, timer_delay_policy::burst}) {
        CAPTURE(workers);
        CAPTURE(policy_name(policy));
        CHECK(run_until(workers, policy, busy_250ms, 1020ms) ==
              "s0@0 e0@250 s1@250 e1@500 s2@500 e2@750 s3@750 e3@1000 s4@1000 c4@1020");
      }
    }
  }

  TEST_CASE("skip, delay, burst: a tick lasting exactly one interval misses nothing") {
    for (const std::size_t workers : worker_counts) {
      for (const timer_delay_policy policy :
           {timer_delay_policy::skip, timer_delay_policy::delay, timer_delay_policy::burst}) {
        CAPTURE(workers);
        CAPTURE(policy_name(policy));
        CHECK(run_until(workers, policy, busy_100ms, 350ms) ==
              "s0@0 e0@100 s1@100 e1@200 s2@200 e2@300 s3@300 c3@350");
      }
    }
  }

  TEST_CASE("stopping cancels the running ticks, waits until they ended, and starts no more") {
    // Every tick would take a second, but cleans up for 70 ms after its cancel and then
    // returns: the stop at 1020 waits for that cleanup.
    const plan_fn plan = [](int /*tick*/) -> tick_plan {
      return {.busy = 1000ms, .cleanup = 70ms};
    };
    struct expected {
      timer_delay_policy policy;
      const char* log;
      long long stopped_ms;
    };
    const expected cases[] = {
        {timer_delay_policy::accumulate,
         "s0@0 s1@100 s2@200 s3@300 s4@400 s5@500 s6@600 s7@700 s8@800 s9@900 e0@1000 "
         "s10@1000 c1@1020 c2@1020 c3@1020 c4@1020 c5@1020 c6@1020 c7@1020 c8@1020 c9@1020 "
         "c10@1020 e1@1090 e2@1090 e3@1090 e4@1090 e5@1090 e6@1090 e7@1090 e8@1090 e9@1090 "
         "e10@1090",
         1090},
        // Tick 9, cut at 1000, is still cleaning up when the stop comes: no tick 10.
        {timer_delay_policy::cancel,
         "s0@0 d0@100 e0@170 s1@170 d1@200 e1@270 s2@270 d2@300 e2@370 s3@370 d3@400 e3@470 "
         "s4@470 d4@500 e4@570 s5@570 d5@600 e5@670 s6@670 d6@700 e6@770 s7@770 d7@800 "
         "e7@870 s8@870 d8@900 e8@970 s9@970 d9@1000 e9@1070",
         1070},
        {timer_delay_policy::skip, "s0@0 e0@1000 s1@1000 c1@1020 e1@1090", 1090},
        {timer_delay_policy::delay, "s0@0 e0@1000 s1@1000 c1@1020 e1@1090", 1090},
        {timer_delay_policy::burst, "s0@0 e0@1000 s1@1000 c1@1020 e1@1090", 1090},
    };
    for (const std::size_t workers : worker_counts) {
      for (const expected& want : cases) {
        CAPTURE(workers);
        CAPTURE(policy_name(want.policy));
        const run_result run = run_timer_until(workers, want.policy, plan, 1020ms);
        CHECK(run.log == want.log);
        CHECK(run.result.error == -1);
        CHECK(run.result.stopped_ms == want.stopped_ms);
        CHECK(run.result.ended_ms == want.stopped_ms + 1000);  // and nothing ran meanwhile
      }
    }
  }

  TEST_CASE("a failing tick stops the timer: the others are cancelled, its handle fails") {
    // Ticks of 150 ms; tick 2 fails 30 ms after its start.
    const plan_fn plan = [](int tick) -> tick_plan {
      if (tick == 2) {
        return {.busy = 30ms, .fails = true};
      }
      return {.busy = 150ms};
    };
    struct expected {
      timer_delay_policy policy;
      const char* log;
      long long failed_ms;
    };
    const expected cases[] = {
        // Tick 1, still running, is cancelled by the failure.
        {timer_delay_policy::accumulate, "s0@0 s1@100 e0@150 s2@200 c1@230 f2@230", 230},
        {timer_delay_policy::cancel, "s0@0 d0@100 s1@100 d1@200 s2@200 f2@230", 230},
        {timer_delay_policy::skip, "s0@0 e0@150 s1@150 e1@300 s2@300 f2@330", 330},
        {timer_delay_policy::delay, "s0@0 e0@150 s1@150 e1@300 s2@300 f2@330", 330},
        {timer_delay_policy::burst, "s0@0 e0@150 s1@150 e1@300 s2@300 f2@330", 330},
    };
    for (const std::size_t workers : worker_counts) {
      for (const expected& want : cases) {
        CAPTURE(workers);
        CAPTURE(policy_name(want.policy));
        std::atomic<int> ticks{0};
        tick_log log;
        corun::runtime rt(with_virtual_time(workers));
        log.set_start(rt.now());
        const outcome result = rt.block_on(timer_until_failure(log, ticks, want.policy, plan));
        CHECK(result.error == 2);
        CHECK(result.stopped_ms == want.failed_ms);
        CHECK(result.ended_ms == want.failed_ms + 1000);  // the timer stopped for good
        CHECK(log.str() == want.log);
      }
    }
  }

  TEST_CASE(
      "a timer that failed before its stop: cancel_and_await rethrows the error, which counts "
      "as observed") {
    const plan_fn plan = [](int tick) -> tick_plan { return {.busy = 30ms, .fails = tick == 1}; };
    for (const timer_delay_policy policy : all_policies) {
      CAPTURE(policy_name(policy));
      std::atomic<int> ticks{0};
      tick_log log;
      corun::runtime rt(with_virtual_time(2));
      log.set_start(rt.now());
      const int error = rt.block_on([&]() -> task<int> {
        corun::join_handle<void> timer =
            corun::create_timer(logged_tick{&log, &ticks, plan}, 100ms, policy);
        co_await corun::sleep_until(log.start() + 500ms);
        // Already done with a failure: "any other exception of the task propagates" (API.md
        // section 2), and having been thrown, it no longer fails this task when the handle goes.
        int thrown = 0;
        try {
          task<void> stopping = corun::cancel_and_await(timer);
          co_await std::move(stopping);
        } catch (const test_error& e) {
          thrown = e.id();
        }
        CHECK(timer.failed());
        co_return thrown;
      }());
      CHECK(error == 1);
      CHECK(log.str() == "s0@0 e0@30 s1@100 f1@130");
    }
  }

  TEST_CASE("a timer failure nobody looked at fails the task that owns the timer") {
    const plan_fn plan = [](int tick) -> tick_plan { return {.busy = 30ms, .fails = tick == 1}; };
    std::atomic<int> ticks{0};
    tick_log log;
    corun::runtime rt(with_virtual_time(2));
    log.set_start(rt.now());
    // The controller only sleeps past the failure and drops the handle without looking.
    CHECK_THROWS_AS(rt.block_on([&]() -> task<void> {
      corun::join_handle<void> timer = corun::create_timer(logged_tick{&log, &ticks, plan}, 100ms,
                                                           timer_delay_policy::accumulate);
      co_await corun::sleep_until(log.start() + 500ms);
    }()),
                    test_error);
    CHECK(log.str() == "s0@0 e0@30 s1@100 f1@130");
  }

  TEST_CASE("the callable is moved into the timer, its captures live until the last tick ended") {
    for (const std::size_t workers : worker_counts) {
      for (const timer_delay_policy policy : all_policies) {
        CAPTURE(workers);
        CAPTURE(policy_name(policy));
        std::atomic<int> live{0};
        std::atomic<int> started{0};
        std::atomic<int> intact{0};
        corun::time_point start{};
        {
          corun::runtime rt(with_virtual_time(workers));
          start = rt.now();
          rt.block_on([&]() -> task<void> {
            corun::join_handle<void> timer;
            {
              // A move-only coroutine lambda, destroyed (with the probe it was moved from) at
              // the end of this scope, while its ticks still run.
              capture_probe probe(live);
              auto tick = [probe = std::move(probe), &started, &intact]() -> task<void> {
                started.fetch_add(1);
                try {
                  co_await corun::sleep_for(250ms);
                } catch (const corun::cancelled&) {
                  intact.fetch_add(probe.value() == 42 ? 1 : 0);
                  throw;
                }
                intact.fetch_add(probe.value() == 42 ? 1 : 0);
              };
              timer = corun::create_timer(std::move(tick), 100ms, policy);
            }
            co_await corun::sleep_until(start + 1020ms);
            CHECK(live.load() == 1);  // the timer's own instance
            task<void> stopping = corun::cancel_and_await(timer);
            co_await std::move(stopping);
          }());
        }
        CHECK(started.load() > 0);
        CHECK(intact.load() == started.load());  // every tick saw its capture alive
        CHECK(live.load() == 0);                 // and the timer destroyed it
      }
    }
  }

  TEST_CASE("from outside a task: create_timer(runtime&, ...) starts a root timer") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> go{false};
      std::atomic<int> ticks{0};
      tick_log log;
      corun::runtime rt(with_virtual_time(workers));
      log.set_start(rt.now());
      // A busy task holds virtual time still until the controller below sleeps.
      auto spinner = rt.spawn(yield_until(go));
      corun::join_handle<void> timer = corun::create_timer(
          rt, logged_tick{&log, &ticks, busy_250ms}, 100ms, timer_delay_policy::accumulate);
      auto controller = rt.spawn(stop_timer_at(log, timer, 1020ms));
      go.store(true);
      spinner.get();
      const outcome result = controller.get();
      CHECK(result.error == -1);
      CHECK(result.stopped_ms == 1020);
      CHECK(log.str() ==
            "s0@0 s1@100 s2@200 e0@250 s3@300 e1@350 s4@400 e2@450 s5@500 e3@550 s6@600 "
            "e4@650 s7@700 e5@750 s8@800 e6@850 s9@900 e7@950 s10@1000 c8@1020 c9@1020 "
            "c10@1020");
      CHECK(timer.done());
    }
  }

  TEST_CASE(
      "create_timer: a non-positive interval is an invalid_argument, outside a task a "
      "logic_error") {
    std::atomic<int> ticks{0};
    tick_log log;
    corun::runtime rt(with_virtual_time(1));
    log.set_start(rt.now());
    const logged_tick fn{&log, &ticks, busy_30ms};
    CHECK_THROWS_AS(static_cast<void>(corun::create_timer(fn, 100ms)), std::logic_error);
    CHECK_THROWS_AS(static_cast<void>(corun::create_timer(rt, fn, 0ms)), std::invalid_argument);
    CHECK_THROWS_AS(static_cast<void>(corun::create_timer(rt, fn, -1s)), std::invalid_argument);
    rt.block_on([&]() -> task<void> {
      CHECK_THROWS_AS(static_cast<void>(corun::create_timer(fn, 0ms)), std::invalid_argument);
      CHECK_THROWS_AS(static_cast<void>(corun::create_timer(fn, -5ms, timer_delay_policy::skip)),
                      std::invalid_argument);
      co_return;
    }());
    CHECK(ticks.load() == 0);
  }
}

/// `create_timer` takes callables that make a `task<void>`, and nothing else.
template <class F>
concept timer_accepts = requires(F fn) { corun::create_timer(fn, 100ms); };
static_assert(timer_accepts<logged_tick>);
static_assert(timer_accepts<task<void> (*)()>);
static_assert(!timer_accepts<task<int> (*)()>);
static_assert(!timer_accepts<void (*)()>);
