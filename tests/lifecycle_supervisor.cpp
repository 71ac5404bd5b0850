/// \file
/// `supervisor`: restart policies x strategies, group restarts (cancel and await first, in
/// order), restart intensity and giving up, backoff and jitter, cancellation, provenance, and
/// the frequenz example of restarting a failing task. Everything runs on virtual time, so every
/// time asserted is exact.
#include "corun/supervisor.hpp"

#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corun::restart_policy;
using corun::restart_strategy;
using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {

constexpr std::size_t sweep[] = {1, 2, 4};

/// What the children of a test did: starts (with their time since `origin`), cancellations
/// (with the `cancelled` they saw), factory calls, and live bodies. Thread-safe.
class probe {
 public:
  void set_origin() { m_origin = corun::now(); }

  void note(const std::string& line) {
    const std::lock_guard<std::mutex> lock(m_lock);
    m_journal.push_back(line);
  }
  void started(const std::string& name) {
    const nanoseconds at = corun::now() - m_origin;
    const std::lock_guard<std::mutex> lock(m_lock);
    m_starts[name].push_back(at);
  }
  void cancelled(const std::string& name, const corun::cancelled& why) {
    const std::lock_guard<std::mutex> lock(m_lock);
    m_cancels[name].push_back(why);
  }
  [[nodiscard]] nanoseconds elapsed() const { return corun::now() - m_origin; }

  [[nodiscard]] std::vector<std::string> journal() const {
    const std::lock_guard<std::mutex> lock(m_lock);
    return m_journal;
  }
  [[nodiscard]] int starts(const std::string& name) const {
    const std::lock_guard<std::mutex> lock(m_lock);
    auto it = m_starts.find(name);
    return it == m_starts.end() ? 0 : static_cast<int>(it->second.size());
  }
  [[nodiscard]] std::vector<nanoseconds> start_times(const std::string& name) const {
    const std::lock_guard<std::mutex> lock(m_lock);
    auto it = m_starts.find(name);
    return it == m_starts.end() ? std::vector<nanoseconds>{} : it->second;
  }
  [[nodiscard]] std::vector<corun::cancelled> cancels(const std::string& name) const {
    const std::lock_guard<std::mutex> lock(m_lock);
    auto it = m_cancels.find(name);
    return it == m_cancels.end() ? std::vector<corun::cancelled>{} : it->second;
  }

  std::atomic<int> alive{0};

 private:
  mutable std::mutex m_lock;
  corun::time_point m_origin{};
  std::vector<std::string> m_journal;
  std::map<std::string, std::vector<nanoseconds>> m_starts;
  std::map<std::string, std::vector<corun::cancelled>> m_cancels;
};

/// Runs until cancelled.
task<void> forever(probe& p, std::string name) {
  const alive_guard guard(p.alive);
  p.started(name);
  try {
    co_await corun::this_task::sleep_forever();
  } catch (const corun::cancelled& why) {
    p.cancelled(name, why);
    throw;
  }
}

/// Sleeps `d`, then fails with `test_error(id)`, or returns if `id` is 0.
task<void> end_after(probe& p, std::string name, nanoseconds d, int id) {
  const alive_guard guard(p.alive);
  p.started(name);
  try {
    co_await corun::sleep_for(d);
  } catch (const corun::cancelled& why) {
    p.cancelled(name, why);
    throw;
  }
  if (id != 0) {
    throw test_error(id);
  }
}

task<void> sleep_task(nanoseconds d) { co_await corun::sleep_for(d); }

/// Runs until cancelled, then takes `cleanup` (shielded) before it ends cancelled.
task<void> slow_to_stop(probe& p, std::string name, nanoseconds cleanup) {
  const alive_guard guard(p.alive);
  p.started(name);
  std::optional<corun::cancelled> why;
  try {
    co_await corun::this_task::sleep_forever();
  } catch (const corun::cancelled& c) {
    p.cancelled(name, c);
    why = c;
  }
  auto clean = corun::shield(sleep_task(cleanup));
  co_await std::move(clean);
  p.note("stopped " + name + " at " + std::to_string((p.elapsed() / 1ms)) + " ms");
  throw *why;
}

/// The supervisor's run, cut short after `d`: true if it returned on its own first.
task<bool> run_for(corun::supervisor& sup, nanoseconds d) {
  auto run = corun::move_on_after(d, sup.run());
  co_return co_await std::move(run);
}

std::vector<int> ids_in_order(const corun::exception_group& group) {
  std::vector<int> ids;
  for (const std::exception_ptr& member : group.exceptions()) {
    ids.push_back(test_error_id(member));
  }
  return ids;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const char* strategy_name(restart_strategy s) {
  switch (s) {
    case restart_strategy::one_for_one:
      return "one_for_one";
    case restart_strategy::one_for_all:
      return "one_for_all";
    case restart_strategy::rest_for_one:
      return "rest_for_one";
  }
  return "?";
}

const char* policy_name(restart_policy p) {
  switch (p) {
    case restart_policy::permanent:
      return "permanent";
    case restart_policy::transient:
      return "transient";
    case restart_policy::temporary:
      return "temporary";
  }
  return "?";
}

}  // namespace

TEST_SUITE("lifecycle_supervisor") {
  TEST_CASE("each restart policy and strategy restarts exactly the children it should") {
    const restart_strategy strategies[] = {restart_strategy::one_for_one,
                                           restart_strategy::one_for_all,
                                           restart_strategy::rest_for_one};
    const restart_policy policies[] = {restart_policy::permanent, restart_policy::transient,
                                       restart_policy::temporary};
    for (const std::size_t workers : sweep) {
      for (const restart_strategy strategy : strategies) {
        for (const restart_policy policy : policies) {
          for (const bool fails : {true, false}) {
            CAPTURE(workers);
            CAPTURE(strategy_name(strategy));
            CAPTURE(policy_name(policy));
            CAPTURE(fails);
            probe p;
            bool group_thrown = false;
            std::vector<int> group_ids;
            std::uint64_t restarts = 0;
            {
              corun::runtime rt(with_virtual_time(workers));
              rt.block_on([&]() -> task<void> {
                p.set_origin();
                corun::supervisor sup({.strategy = strategy, .max_restarts = 10, .period = 1h});
                sup.add("a", [&p] { return forever(p, "a"); });
                // "x" ends once at 1 s (failing or returning), and runs forever when restarted.
                sup.add(
                    "x",
                    [&p, fails, made = 0]() mutable {
                      return ++made == 1 ? end_after(p, "x", 1s, fails ? 1 : 0) : forever(p, "x");
                    },
                    policy);
                sup.add("c", [&p] { return forever(p, "c"); });
                try {
                  const bool returned = co_await run_for(sup, 10s);
                  CHECK_FALSE(returned);
                } catch (const corun::exception_group& group) {
                  group_thrown = true;
                  group_ids = ids_in_order(group);
                }
                restarts = sup.restarts();
              }());
            }
            const bool restarted = policy == restart_policy::permanent ||
                                   (policy == restart_policy::transient && fails);
            CHECK(restarts == (restarted ? 1U : 0U));
            CHECK(p.starts("x") == (restarted ? 2 : 1));
            CHECK(p.starts("a") ==
                  (restarted && strategy == restart_strategy::one_for_all ? 2 : 1));
            CHECK(p.starts("c") ==
                  (restarted && strategy != restart_strategy::one_for_one ? 2 : 1));
            // A temporary child's failure is not lost: the stopped supervisor throws it.
            CHECK(group_thrown == (policy == restart_policy::temporary && fails));
            if (group_thrown) {
              CHECK(group_ids == std::vector<int>{1});
            }
            CHECK(p.alive.load() == 0);
            if (restarted && strategy != restart_strategy::one_for_one) {
              // The sibling restarted with "x" was cancelled by the supervisor, with provenance.
              const std::vector<corun::cancelled> cancels = p.cancels("c");
              REQUIRE(cancels.size() == 2);  // by the restart, then by the deadline
              const corun::cancelled& why = cancels.front();
              CHECK(why.origin() == (fails ? corun::cancel_origin::sibling_failed
                                           : corun::cancel_origin::scope_exit));
              CHECK(contains(why.culprit(), "'x'"));
              CHECK(contains(why.message(), "is restarting its children"));
              if (!fails) {
                CHECK(contains(why.message(), "'x' returned"));
              }
              CHECK(why.requested_on().empty());  // cancelled itself, not through a parent
              CHECK(p.start_times("c").back() == 1s);
            }
          }
        }
      }
    }
  }

  TEST_CASE("one_for_all cancels the other children and waits until they ended before restarting") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      probe p;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.name = "all", .strategy = restart_strategy::one_for_all});
        sup.add("slow", [&p] { return slow_to_stop(p, "slow", 2s); });
        sup.add("x", [&p, made = 0]() mutable {
          return ++made == 1 ? end_after(p, "x", 1s, 4) : forever(p, "x");
        });
        sup.add("fast", [&p] { return forever(p, "fast"); });
        const bool returned = co_await run_for(sup, 10s);
        CHECK_FALSE(returned);
      }());
      // "x" failed at 1 s; "slow" took 2 s to stop; nobody was restarted before 3 s.
      CHECK(p.start_times("x") == std::vector<nanoseconds>{0s, 3s});
      CHECK(p.start_times("slow") == std::vector<nanoseconds>{0s, 3s});
      CHECK(p.start_times("fast") == std::vector<nanoseconds>{0s, 3s});
      const std::vector<std::string> journal = p.journal();
      REQUIRE(journal.size() == 2);  // the restart's stop, then the deadline's
      CHECK(journal.front() == "stopped slow at 3000 ms");
      const corun::cancelled why = p.cancels("fast").front();
      CHECK(why.origin() == corun::cancel_origin::sibling_failed);
      CHECK(contains(why.culprit(), "'all:x'"));
      CHECK(contains(why.describe(), "cancelled because sibling task #"));
      CHECK(contains(why.describe(), "supervisor 'all' is restarting its children (one_for_all)"));
      CHECK(p.alive.load() == 0);
    }
  }

  TEST_CASE("rest_for_one restarts the failed child and those added after it, in order") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      probe p;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.strategy = restart_strategy::rest_for_one});
        for (int i = 0; i < 5; ++i) {
          const std::string name = numbered_name("c", i);
          sup.add(name, [&p, name, made = 0]() mutable {
            p.note("make " + name);
            if (name == "c2" && ++made == 1) {
              return end_after(p, name, 1s, 2);
            }
            return forever(p, name);
          });
        }
        const bool returned = co_await run_for(sup, 5s);
        CHECK_FALSE(returned);
      }());
      CHECK(p.journal() == std::vector<std::string>{"make c0", "make c1", "make c2", "make c3",
                                                    "make c4", "make c2", "make c3", "make c4"});
      CHECK(p.starts("c0") == 1);
      CHECK(p.starts("c1") == 1);
      for (const char* name : {"c2", "c3", "c4"}) {
        CAPTURE(name);
        CHECK(p.start_times(name) == std::vector<nanoseconds>{0s, 1s});
      }
      for (const char* name : {"c3", "c4"}) {
        CAPTURE(name);
        CHECK(contains(p.cancels(name).front().culprit(), "'c2'"));
      }
      CHECK(p.cancels("c0").size() == 1);  // only by the deadline
      CHECK(p.alive.load() == 0);
    }
  }

  TEST_CASE(
      "past the restart intensity the supervisor cancels its children and fails with the "
      "recent errors") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      probe p;
      std::optional<corun::exception_group> error;
      nanoseconds gave_up_at{};
      std::uint64_t restarts = 0;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.name = "app", .max_restarts = 2, .period = 10s});
        sup.add("bystander", [&p] { return forever(p, "bystander"); });
        sup.add("bad", [&p, made = 0]() mutable { return end_after(p, "bad", 1s, ++made); });
        try {
          const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
          CHECK(returned);
        } catch (const corun::exception_group& e) {
          error = e;
        }
        gave_up_at = p.elapsed();
        restarts = sup.restarts();
      }());
      REQUIRE(error.has_value());
      CHECK(ids_in_order(*error) == std::vector<int>{1, 2, 3});  // oldest first
      CHECK(contains(error->what(),
                     "supervisor 'app' gave up: more than 2 restarts within "
                     "10000 ms"));
      CHECK(gave_up_at == 3s);
      CHECK(restarts == 2);
      CHECK(p.start_times("bad") == std::vector<nanoseconds>{0s, 1s, 2s});
      const std::vector<corun::cancelled> cancels = p.cancels("bystander");
      REQUIRE(cancels.size() == 1);
      CHECK(cancels[0].origin() == corun::cancel_origin::sibling_failed);
      CHECK(contains(cancels[0].culprit(), "'app:bad'"));
      CHECK(contains(cancels[0].message(), "gave up"));
      CHECK(p.alive.load() == 0);
    }
  }

  TEST_CASE("restarts older than the period do not count, restarts exactly one period apart do") {
    SUBCASE("failures 6 s apart never exceed 1 restart within 5 s") {
      probe p;
      std::uint64_t restarts = 0;
      corun::runtime rt(with_virtual_time(2));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.max_restarts = 1, .period = 5s});
        sup.add("bad", [&p, made = 0]() mutable { return end_after(p, "bad", 6s, ++made); });
        const bool returned = co_await run_for(sup, 57s);
        CHECK_FALSE(returned);
        restarts = sup.restarts();
      }());
      CHECK(restarts == 9);  // failures at 6, 12, ..., 54 s
      CHECK(p.starts("bad") == 10);
    }
    SUBCASE("failures 5 s apart are 2 restarts within 5 s: give up at the second") {
      probe p;
      std::vector<int> ids;
      nanoseconds gave_up_at{};
      corun::runtime rt(with_virtual_time(2));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.max_restarts = 1, .period = 5s});
        sup.add("bad", [&p, made = 0]() mutable { return end_after(p, "bad", 5s, ++made); });
        try {
          const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
          CHECK(returned);
        } catch (const corun::exception_group& e) {
          ids = ids_in_order(e);
        }
        gave_up_at = p.elapsed();
      }());
      CHECK(ids == std::vector<int>{1, 2});
      CHECK(gave_up_at == 10s);
    }
    SUBCASE("max_restarts = 0 gives up at the first restart") {
      std::vector<int> ids;
      probe p;
      corun::runtime rt(with_virtual_time(1));
      rt.block_on([&]() -> task<void> {
        corun::supervisor sup({.max_restarts = 0});
        sup.add("bad", [&p] { return end_after(p, "bad", 1s, 9); });
        try {
          const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
          CHECK(returned);
        } catch (const corun::exception_group& e) {
          ids = ids_in_order(e);
        }
      }());
      CHECK(ids == std::vector<int>{9});
      CHECK(p.starts("bad") == 1);
    }
  }

  TEST_CASE("backoff delays grow by the multiplier up to the maximum, exactly, on virtual time") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      probe p;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.max_restarts = 100,
                               .period = 1h,
                               .backoff = {.initial = 1s, .max = 5s, .multiplier = 2.0}});
        // Fails at once six times, then runs.
        sup.add("bad", [&p, made = 0]() mutable {
          return ++made <= 6 ? end_after(p, "bad", 0s, made) : forever(p, "bad");
        });
        const bool returned = co_await run_for(sup, 100s);
        CHECK_FALSE(returned);
      }());
      // Delays 1, 2, 4, 5 (capped), 5, 5 s.
      CHECK(p.start_times("bad") == std::vector<nanoseconds>{0s, 1s, 3s, 7s, 12s, 17s, 22s});
    }
  }

  TEST_CASE("a child that ran for at least the period starts its backoff over") {
    probe p;
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      p.set_origin();
      corun::supervisor sup(
          {.max_restarts = 100, .period = 10s, .backoff = {.initial = 1s, .multiplier = 3.0}});
      // Fails at once, at once, then after running 10 s, then at once; then runs.
      sup.add("bad", [&p, made = 0]() mutable {
        ++made;
        if (made == 3) {
          return end_after(p, "bad", 10s, made);
        }
        return made <= 4 ? end_after(p, "bad", 0s, made) : forever(p, "bad");
      });
      const bool returned = co_await run_for(sup, 100s);
      CHECK_FALSE(returned);
    }());
    // Starts at 0; +1 s; +3 s (=4); ran 10 s to 14, reset: +1 s (=15); fails at once: +3 s (=18).
    CHECK(p.start_times("bad") == std::vector<nanoseconds>{0s, 1s, 4s, 15s, 18s});
  }

  TEST_CASE("jitter takes at most its fraction off a delay, and a seed reproduces the delays") {
    auto delays_with = [](std::uint64_t seed) {
      probe p;
      corun::runtime rt(with_virtual_time(1));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup(
            {.max_restarts = 1000,
             .period = 1h,
             .backoff = {.initial = 1s, .max = 1s, .multiplier = 1.0, .jitter = 0.5},
             .seed = seed});
        sup.add("bad", [&p, made = 0]() mutable {
          return ++made <= 40 ? end_after(p, "bad", 0s, made) : forever(p, "bad");
        });
        const bool returned = co_await run_for(sup, 1h);
        CHECK_FALSE(returned);
      }());
      const std::vector<nanoseconds> starts = p.start_times("bad");
      std::vector<nanoseconds> delays;
      for (std::size_t i = 1; i < starts.size(); ++i) {
        delays.push_back(starts[i] - starts[i - 1]);
      }
      return delays;
    };
    const std::vector<nanoseconds> first = delays_with(7);
    REQUIRE(first.size() == 40);
    for (const nanoseconds d : first) {
      CHECK(d > 500ms);
      CHECK(d <= 1s);
    }
    const std::set<nanoseconds> distinct(first.begin(), first.end());
    CHECK(distinct.size() > 30);  // the jitter is applied at all
    const auto [low, high] = std::minmax_element(first.begin(), first.end());
    CHECK(*low < 600ms);  // and spreads over its range
    CHECK(*high > 900ms);
    CHECK(delays_with(7) == first);
    CHECK(delays_with(8) != first);
  }

  TEST_CASE("cancelling the supervisor stops every child, also those waiting out a backoff") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      probe p;
      std::atomic<int> grandchild_cancelled{0};
      std::uint64_t restarts = 0;
      bool saw_task_cancelled = false;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup({.backoff = {.initial = 1h, .max = 1h}});
        sup.add("runner", [&p] { return forever(p, "runner"); });
        sup.add("backing-off", [&p] { return end_after(p, "backing-off", 0s, 1); });
        sup.add("parent", [&p, &grandchild_cancelled]() -> task<void> {
          const alive_guard guard(p.alive);
          p.started("parent");
          auto grandchild = corun::spawn([&grandchild_cancelled]() -> task<void> {
            try {
              co_await corun::this_task::sleep_forever();
            } catch (const corun::cancelled&) {
              grandchild_cancelled.fetch_add(1);
              throw;
            }
          });
          try {
            co_await corun::this_task::sleep_forever();
          } catch (const corun::cancelled& why) {
            p.cancelled("parent", why);
            throw;
          }
        });
        auto running = corun::spawn(sup.run(), {.name = "the-supervisor"});
        co_await corun::sleep_for(5s);
        running.cancel("stop it");
        try {
          co_await running;
        } catch (const corun::task_cancelled&) {
          saw_task_cancelled = true;
        }
        restarts = sup.restarts();
      }());
      CHECK(saw_task_cancelled);
      CHECK(restarts == 1);                 // "backing-off" was waiting out its hour
      CHECK(p.starts("backing-off") == 1);  // and never started again
      CHECK(grandchild_cancelled.load() == 1);
      CHECK(p.alive.load() == 0);
      for (const char* name : {"runner", "parent"}) {
        CAPTURE(name);
        const std::vector<corun::cancelled> cancels = p.cancels(name);
        REQUIRE(cancels.size() == 1);
        CHECK(cancels[0].message() == "stop it");  // the supervisor's own cancellation
        CHECK(contains(cancels[0].requested_on(), "'the-supervisor'"));
      }
    }
  }

  TEST_CASE("the frequenz example: a failing task is restarted every 5 s beside two printers") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      std::atomic<int> prints_1{0};
      std::atomic<int> prints_11{0};
      std::atomic<int> fail_starts{0};
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        auto print_every = [](nanoseconds period, std::atomic<int>& prints) -> task<void> {
          for (;;) {
            co_await corun::sleep_for(period);
            prints.fetch_add(1);
          }
        };
        auto fail_after = [](nanoseconds delay, std::atomic<int>& starts) -> task<void> {
          starts.fetch_add(1);
          co_await corun::sleep_for(delay);
          throw std::runtime_error("I failed");
        };
        // The example itself: three children, the failing one restarted on every failure
        // (permanent), and at most 2 restarts within 5 s before the supervisor gives up.
        corun::supervisor sup({.max_restarts = 2, .period = 5s});
        sup.add("print_1", [&] { return print_every(1s, prints_1); });
        sup.add("print_11", [&] { return print_every(11s, prints_11); });
        sup.add("fail_5", [&] { return fail_after(5s, fail_starts); });
        const bool returned = co_await run_for(sup, 31500ms);  // "runs forever": until stopped
        CHECK_FALSE(returned);
        CHECK(sup.restarts() == 6);
      }());
      CHECK(prints_1.load() == 31);
      CHECK(prints_11.load() == 2);
      CHECK(fail_starts.load() == 7);  // at 0, 5, ..., 30 s
    }
  }

  TEST_CASE("run returns once every child ended for good") {
    probe p;
    nanoseconds ended_at{};
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      p.set_origin();
      corun::supervisor sup;
      sup.add(
          "job", [&p] { return end_after(p, "job", 2s, 0); }, restart_policy::transient);
      sup.add(
          "once", [&p] { return end_after(p, "once", 1s, 0); }, restart_policy::temporary);
      const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
      CHECK(returned);
      ended_at = p.elapsed();
      corun::supervisor empty;
      co_await empty.run();  // no children: returns at once
      CHECK(p.elapsed() == ended_at);
    }());
    CHECK(ended_at == 2s);
    CHECK(p.starts("job") == 1);
    CHECK(p.starts("once") == 1);
  }

  TEST_CASE("a temporary child's failure is not restarted, and run throws it when it ends") {
    std::vector<int> ids;
    probe p;
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      p.set_origin();
      corun::supervisor sup;
      sup.add(
          "t", [&p] { return end_after(p, "t", 1s, 5); }, restart_policy::temporary);
      sup.add(
          "job", [&p] { return end_after(p, "job", 3s, 0); }, restart_policy::transient);
      try {
        const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
        CHECK(returned);
      } catch (const corun::exception_group& e) {
        ids = ids_in_order(e);
        CHECK(p.elapsed() == 3s);
      }
    }());
    CHECK(ids == std::vector<int>{5});
    CHECK(p.starts("t") == 1);
  }

  TEST_CASE("a child that ends cancelled on its own ended abnormally") {
    SUBCASE("a transient one is restarted") {
      int made = 0;
      std::uint64_t restarts = 0;
      corun::runtime rt(with_virtual_time(2));
      rt.block_on([&]() -> task<void> {
        corun::supervisor sup;
        sup.add(
            "quitter",
            [&made]() -> task<void> {
              if (++made == 1) {
                throw corun::cancelled("by itself");
              }
              co_return;
            },
            restart_policy::transient);
        const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
        CHECK(returned);
        restarts = sup.restarts();
      }());
      CHECK(made == 2);
      CHECK(restarts == 1);
    }
    SUBCASE("its error is a task_cancelled saying why") {
      std::optional<corun::exception_group> error;
      corun::runtime rt(with_virtual_time(2));
      rt.block_on([&]() -> task<void> {
        corun::supervisor sup({.max_restarts = 0});
        sup.add("quitter", []() -> task<void> {
          throw corun::cancelled("by itself");
          co_return;
        });
        try {
          const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
          CHECK(returned);
        } catch (const corun::exception_group& e) {
          error = e;
        }
      }());
      REQUIRE(error.has_value());
      REQUIRE(error->exceptions().size() == 1);
      try {
        std::rethrow_exception(error->exceptions().front());
      } catch (const corun::task_cancelled& e) {
        CHECK(contains(e.what(), "'quitter'"));
        CHECK(contains(e.what(), "by itself"));
      } catch (...) {
        FAIL("not a task_cancelled");
      }
    }
  }

  TEST_CASE("a failed child's own children are cancelled before it is restarted") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      probe p;
      std::atomic<int> leftovers_cancelled{0};
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        p.set_origin();
        corun::supervisor sup;
        sup.add("spawner", [&p, &leftovers_cancelled, made = 0]() mutable -> task<void> {
          p.started("spawner");
          if (++made > 1) {
            co_await corun::this_task::sleep_forever();
          }
          auto leftover = corun::spawn([&leftovers_cancelled]() -> task<void> {
            try {
              co_await corun::this_task::sleep_forever();
            } catch (const corun::cancelled&) {
              leftovers_cancelled.fetch_add(1);
              throw;
            }
          });
          co_await corun::sleep_for(1s);
          throw test_error(1);
        });
        const bool returned = co_await run_for(sup, 10s);
        CHECK_FALSE(returned);
      }());
      CHECK(leftovers_cancelled.load() == 1);
      CHECK(p.start_times("spawner") == std::vector<nanoseconds>{0s, 1s});  // not held up
    }
  }

  TEST_CASE("a factory that throws is a failure of its child") {
    std::vector<int> ids;
    int calls = 0;
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      corun::supervisor sup({.max_restarts = 1});
      sup.add("broken", [&calls]() -> task<void> {
        ++calls;
        throw test_error(7);
      });
      try {
        const bool returned = co_await run_for(sup, 1h);  // bounded: a bug must not hang
        CHECK(returned);
      } catch (const corun::exception_group& e) {
        ids = ids_in_order(e);
      }
    }());
    CHECK(ids == std::vector<int>{7, 7});
    CHECK(calls == 2);
  }

  TEST_CASE("a factory's captures live as long as the supervisor") {
    std::atomic<int> seen{0};
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      corun::supervisor sup({.max_restarts = 10});
      // A coroutine lambda reads its captures through the lambda object, which the supervisor
      // keeps; the moved-in string would dangle if the spec's callable were a temporary.
      sup.add("reader", [text = std::string(64, 'x'), &seen, runs = 0]() mutable -> task<void> {
        co_await corun::sleep_for(1s);
        seen.fetch_add(static_cast<int>(text.size()));
        if (++runs == 3) {
          co_await corun::this_task::sleep_forever();
        }
        throw test_error(runs);
      });
      const bool returned = co_await run_for(sup, 10s);
      CHECK_FALSE(returned);
    }());
    CHECK(seen.load() == 3 * 64);
  }

  TEST_CASE("misuse: add after run, run twice, bad options") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      corun::supervisor sup;
      co_await sup.run();
      CHECK_THROWS_AS(sup.add("late", [] { return sleep_task(1s); }), std::logic_error);
      bool second_run_failed = false;
      try {
        co_await sup.run();
      } catch (const std::logic_error&) {
        second_run_failed = true;
      }
      CHECK(second_run_failed);
    }());
    CHECK_THROWS_AS(corun::supervisor({.period = -1s}), std::invalid_argument);
    CHECK_THROWS_AS(corun::supervisor({.backoff = {.multiplier = 0.5}}), std::invalid_argument);
    CHECK_THROWS_AS(corun::supervisor({.backoff = {.jitter = 1.5}}), std::invalid_argument);
    CHECK_THROWS_AS(corun::supervisor({.backoff = {.initial = -1s}}), std::invalid_argument);
    corun::child_spec spec("x", [] { return sleep_task(1s); });
    corun::supervisor sup;
    sup.add(std::move(spec));
    CHECK_THROWS_AS(sup.add(std::move(spec)), std::logic_error);  // NOLINT(bugprone-use-after-move)
    CHECK(sup.size() == 1);
  }
}
