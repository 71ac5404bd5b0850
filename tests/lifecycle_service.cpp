/// \file
/// `service_base`, the `service` concept and `with_service`: frequenz-core's ServiceBase suite
/// translated (construction, start/wait, start/stop, crashes reported by wait and by stop, the
/// context-manager form), plus the seed's multi-task example and how with_service combines the
/// body's outcome with stop's, and a service as the task creator of a group and of another
/// service. All on virtual time.
#include "support.hpp"

#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

using corun::task;
using corun::task_handle;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t lifecycle_workers[] = {1, 2, 4};

/// frequenz's FakeService: `main` sleeps (if asked), then throws (if asked).
class fake_service final : public corun::service_base {
 public:
  explicit fake_service(std::string unique_id = {},
                        std::optional<std::chrono::nanoseconds> sleep = std::nullopt,
                        std::optional<int> error = std::nullopt)
      : service_base(std::move(unique_id)), m_sleep(sleep), m_error(error) {}

  std::atomic<int> mains{0};
  std::atomic<bool> main_cancelled{false};

 private:
  // clang-tidy 14 holds every function named `main` to the program's main's no-throw rule;
  // a service's main may throw by design (the failure is the service's).
  // NOLINTNEXTLINE(bugprone-exception-escape)
  task<void> main() override {
    mains.fetch_add(1);
    try {
      if (m_sleep) {
        co_await corun::sleep_for(*m_sleep);
      }
    } catch (const corun::cancelled&) {
      main_cancelled = true;
      throw;
    }
    if (m_error) {
      throw test_error(*m_error);
    }
  }

  std::optional<std::chrono::nanoseconds> m_sleep;
  std::optional<int> m_error;
};

/// The seed's multi-task service: prints every second and every 11 s, restarts a task that
/// fails every 5 s, and re-raises anything else.
class multi_task_service final : public corun::service_base {
 public:
  using service_base::service_base;

  std::atomic<int> ticks{0};
  std::atomic<int> slow_ticks{0};
  int restarts = 0;

 private:
  task<void> print_every(std::chrono::nanoseconds period, std::atomic<int>& counter) {
    for (;;) {
      co_await corun::sleep_for(period);
      counter.fetch_add(1);
    }
  }
  static task<void> fail_after(std::chrono::nanoseconds d) {
    co_await corun::sleep_for(d);
    throw test_error(5);
  }
  // clang-tidy 14 holds every function named `main` to the program's main's no-throw rule;
  // a service's main may throw by design (the failure is the service's).
  // NOLINTNEXTLINE(bugprone-exception-escape)
  task<void> main() override {
    (void)spawn(print_every(1s, ticks), {.name = "print_1"});
    (void)spawn(print_every(11s, slow_ticks), {.name = "print_11"});
    auto failing = spawn(fail_after(5s), {.name = "fail_5", .log_exception = false});
    auto done = task_group().as_completed();
    while (std::optional<task_handle> t = co_await done.next()) {
      if (t->id() == failing.id() && t->failed()) {
        ++restarts;
        failing = spawn(fail_after(5s), {.name = "fail_5", .log_exception = false});
      } else {
        t->rethrow();
      }
    }
  }
};

/// A service whose `main` sleeps until cancelled and reaches nothing of the object once it
/// runs, so it may outlive it. Lives in the runtime by default, or where `creator` puts it.
class sleeper_service final : public corun::service_base {
 public:
  sleeper_service(std::string unique_id, std::atomic<bool>& cleaned)
      : service_base(std::move(unique_id)), m_cleaned(&cleaned) {}
  template <class Creator>
  sleeper_service(std::string unique_id, Creator&& creator, std::atomic<bool>& cleaned)
      : service_base(std::move(unique_id), std::forward<Creator>(creator)), m_cleaned(&cleaned) {}

 private:
  task<void> main() override {
    std::atomic<bool>* cleaned = m_cleaned;  // read while the object is certainly alive
    try {
      co_await corun::this_task::sleep_forever();
    } catch (const corun::cancelled&) {
      cleaned->store(true);
      throw;
    }
  }

  std::atomic<bool>* m_cleaned;
};

/// A service written without service_base: anything with the members works with with_service.
class counting_service {
 public:
  void start() { ++starts; }
  void cancel(const std::string& /*message*/) {}
  task<void> stop(std::string /*message*/) {
    ++stops;
    co_return;
  }
  task<void> wait() { co_return; }
  [[nodiscard]] bool is_running() const { return starts > stops; }
  [[nodiscard]] std::string unique_id() const { return "counting"; }
  int starts = 0;
  int stops = 0;
};

std::string shown(const corun::service_base& svc) {
  std::ostringstream out;
  out << svc;
  return out.str();
}

bool is_lower_hex(const std::string& text) {
  if (text.empty()) {
    return false;
  }
  for (const char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0 && (c < 'a' || c > 'f')) {
      return false;
    }
  }
  return true;
}

}  // namespace

static_assert(corun::service<fake_service>);
static_assert(corun::service<corun::service_base>);
static_assert(corun::service<counting_service>);
static_assert(!corun::service<corun::persistent_task_group>);  // no start()
static_assert(!corun::service<int>);
static_assert(corun::task_creator<fake_service>);
static_assert(!std::is_copy_constructible_v<corun::service_base>);

TEST_SUITE("lifecycle_service") {
  TEST_CASE("service_base constructed with defaults gets a generated id shared with its group") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      fake_service svc;
      CHECK(is_lower_hex(svc.unique_id()));
      CHECK(svc.task_group().unique_id() == svc.unique_id());
      CHECK(svc.task_group().tasks().empty());
      CHECK_FALSE(svc.is_running());
      CHECK(shown(svc) == "service<unique_id=" + svc.unique_id() + ", running=false, tasks=0>");
      co_return;
    }());
  }

  TEST_CASE("service_base constructed with a unique id keeps it") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      fake_service svc("test");
      CHECK(svc.unique_id() == "test");
      CHECK(svc.task_group().unique_id() == "test");
      CHECK(svc.task_group().tasks().empty());
      CHECK_FALSE(svc.is_running());
      co_return;
    }());
  }

  TEST_CASE("service_base starts main in its group and can be waited for") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        fake_service svc("test", 1s);
        co_await svc.stop();  // a no-op: not running
        CHECK_FALSE(svc.is_running());
        const corun::time_point start = corun::now();
        svc.start();
        CHECK(svc.is_running());
        const std::vector<task_handle> tasks = svc.task_group().tasks();
        REQUIRE(tasks.size() == 1);
        CHECK(tasks.front().name() == "test:main");
        CHECK(shown(svc) == "service<unique_id=test, running=true, tasks=1>");
        co_await svc.wait();
        CHECK(corun::now() - start == 1s);
        CHECK_FALSE(svc.is_running());
        CHECK(svc.mains.load() == 1);
      }());
    }
  }

  TEST_CASE("service_base starts and stops, and stop is a no-op when not running") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        fake_service svc("test", 2s);
        co_await svc.stop();
        CHECK_FALSE(svc.is_running());
        svc.start();
        CHECK(svc.is_running());
        co_await corun::sleep_for(1s);
        CHECK(svc.is_running());
        co_await svc.stop();
        CHECK_FALSE(svc.is_running());
        CHECK(svc.main_cancelled.load());
        co_await svc.stop();
        CHECK_FALSE(svc.is_running());
        svc.start();  // a stopped service starts again
        CHECK(svc.is_running());
        co_await svc.stop("again");
        CHECK(svc.mains.load() == 2);
      }());
    }
  }

  TEST_CASE("service_base reports a crash through wait") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      fake_service svc("test", std::nullopt, 11);
      svc.start();
      std::optional<corun::exception_group> crash;
      try {
        co_await svc.wait();
      } catch (const corun::exception_group& failures) {
        crash = failures;
      }
      REQUIRE(crash);
      auto [errors, rest] = crash->split<test_error>();
      REQUIRE(errors);
      CHECK_FALSE(rest);
      CHECK(member_ids(*errors) == std::multiset<int>{11});
      co_await svc.stop();  // reported once
    }());
  }

  TEST_CASE("service_base reports a crash through stop") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      fake_service svc("test", std::nullopt, 12);
      svc.start();
      // Let it crash first, or stop() would cancel it before it could.
      co_await corun::sleep_for(1s);
      CHECK_FALSE(svc.is_running());
      std::optional<corun::exception_group> crash;
      try {
        co_await svc.stop();
      } catch (const corun::exception_group& failures) {
        crash = failures;
      }
      REQUIRE(crash);
      auto [errors, rest] = crash->split<test_error>();
      REQUIRE(errors);
      CHECK_FALSE(rest);
      CHECK(member_ids(*errors) == std::multiset<int>{12});
    }());
  }

  TEST_CASE("with_service starts the service, runs the body and stops it") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        fake_service svc("test", 1s);
        const int value = co_await corun::with_service(svc, [](fake_service& s) -> task<int> {
          CHECK(s.is_running());
          s.start();  // a no-op while running
          co_await corun::this_task::yield();
          CHECK(s.is_running());
          CHECK(s.task_group().tasks().size() == 1);
          co_return 42;
        });
        CHECK(value == 42);
        CHECK_FALSE(svc.is_running());
        CHECK(svc.mains.load() == 1);
        CHECK(svc.main_cancelled.load());  // stopped, not finished: it sleeps 1 s
      }());
    }
  }

  TEST_CASE("with_service stops the service when the body throws, and rethrows the body's error") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      fake_service svc("test", 1h);
      int id = 0;
      try {
        co_await corun::with_service(svc, []() -> task<void> {
          co_await corun::sleep_for(1s);
          throw test_error(21);
        });
      } catch (const test_error& e) {
        id = e.id();  // unchanged, not wrapped
      }
      CHECK(id == 21);
      CHECK_FALSE(svc.is_running());
      CHECK(svc.main_cancelled.load());
    }());
  }

  TEST_CASE("with_service stops the service when the caller is cancelled, and waits for it") {
    corun::runtime rt(with_virtual_time(2));
    std::atomic<bool> cleaned{false};
    bool cleaned_before_return = false;
    bool caller_cancelled = false;
    rt.block_on([&]() -> task<void> {
      auto caller = corun::spawn([&]() -> task<void> {
        fake_service svc("test");
        try {
          co_await corun::with_service(svc, [&](fake_service& s) -> task<void> {
            (void)s.spawn([&]() -> task<void> {
              try {
                co_await corun::this_task::sleep_forever();
              } catch (const corun::cancelled&) {
              }
              task<void> cleanup =
                  corun::shield([]() -> task<void> { co_await corun::sleep_for(2s); }());
              co_await std::move(cleanup);
              cleaned = true;
            });
            co_await corun::this_task::sleep_forever();
          });
        } catch (const corun::cancelled&) {
          cleaned_before_return = cleaned.load();
          throw;
        }
      });
      co_await corun::sleep_for(1s);
      caller.cancel("go away");
      try {
        co_await caller;
      } catch (const corun::task_cancelled&) {
        caller_cancelled = true;
      }
    }());
    CHECK(caller_cancelled);  // the body's cancellation came out as it was
    CHECK(cleaned_before_return);
  }

  TEST_CASE("with_service combines a failing body with the service's failures") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      fake_service svc("test", std::nullopt, 31);
      std::multiset<int> ids;
      std::string first;
      try {
        co_await corun::with_service(svc, []() -> task<void> {
          co_await corun::sleep_for(1s);  // main has crashed by now
          throw test_error(32);
        });
      } catch (const corun::exception_group& failures) {
        ids = member_ids(failures);
        first = std::to_string(test_error_id(failures.exceptions().front()));
      }
      CHECK(ids == std::multiset<int>{31, 32});
      CHECK(first == "32");  // the body's first
    }());
  }

  TEST_CASE("with_service reports the service's failures when the body succeeded") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      fake_service svc("test", std::nullopt, 41);
      std::multiset<int> ids;
      try {
        co_await corun::with_service(svc, []() -> task<void> { co_await corun::sleep_for(1s); });
      } catch (const corun::exception_group& failures) {
        ids = member_ids(failures);
      }
      CHECK(ids == std::multiset<int>{41});
    }());
  }

  TEST_CASE("with_service works with any service, not only service_base") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      counting_service svc;
      co_await corun::with_service(svc, [](counting_service& s) -> task<void> {
        CHECK(s.is_running());
        co_return;
      });
      CHECK(svc.starts == 1);
      CHECK(svc.stops == 1);
    }());
  }

  TEST_CASE("service_base with several tasks restarts the failing one (the seed example)") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      int ticks = 0;
      int slow_ticks = 0;
      int restarts = 0;
      rt.block_on([&]() -> task<void> {
        multi_task_service svc("multi");
        co_await corun::with_service(svc,
                                     []() -> task<void> { co_await corun::sleep_for(11500ms); });
        ticks = svc.ticks.load();
        slow_ticks = svc.slow_ticks.load();
        restarts = svc.restarts;
      }());
      CHECK(ticks == 11);
      CHECK(slow_ticks == 1);
      CHECK(restarts == 2);  // failures at 5 s and 10 s
    }
  }

  TEST_CASE("service_base destroyed while running cancels its tasks, and the creating task waits") {
    corun::runtime rt(with_virtual_time(2));
    std::atomic<bool> cleaned{false};
    bool running_at_destruction = false;
    bool cleaned_when_owner_done = false;
    std::string text;
    {
      stderr_capture capture;
      rt.block_on([&]() -> task<void> {
        auto owner = corun::spawn([&]() -> task<void> {
          sleeper_service svc("doomed", cleaned);
          svc.start();
          co_await corun::sleep_for(1s);
          running_at_destruction = svc.is_running();
        });  // destroyed running, without stop()
        co_await owner;
        cleaned_when_owner_done = cleaned.load();
      }());
      text = capture.finish();
    }
    CHECK(running_at_destruction);
    CHECK(cleaned_when_owner_done);
#ifndef NDEBUG
    CHECK(text.find("service 'doomed' destroyed while running") != std::string::npos);
#endif
  }

  TEST_CASE("service_base with the runtime as its task creator lives outside any task") {
    corun::runtime rt(with_virtual_time(2));
    {
      class rooted final : public corun::service_base {
       public:
        explicit rooted(corun::runtime& runtime) : service_base("rooted", runtime) {}
        std::atomic<bool> ran{false};

       private:
        task<void> main() override {
          ran = true;
          co_await corun::this_task::sleep_forever();
        }
      } svc(rt);
      svc.start();  // from a thread that is not a worker
      CHECK(svc.is_running());
      rt.block_on(svc.stop());
      CHECK(svc.ran.load());
      CHECK_FALSE(svc.is_running());
    }
    CHECK_THROWS_AS(fake_service("outside"), std::logic_error);
  }

  TEST_CASE("service_base as the task creator of a group and of a service: stop stops them") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        fake_service outer("outer", 1h);
        outer.start();
        std::atomic<bool> group_cleaned{false};
        std::atomic<bool> inner_cleaned{false};
        corun::persistent_task_group group("group", outer);
        sleeper_service inner("inner", outer, inner_cleaned);
        // Both hosts are tasks of the outer service, next to its main.
        std::multiset<std::string> names;
        for (const task_handle& t : outer.task_group().tasks()) {
          names.insert(t.name());
        }
        CHECK(names == std::multiset<std::string>{"outer:main", "outer:group", "outer:inner"});
        auto t = group.spawn([&]() -> task<void> {
          try {
            co_await corun::this_task::sleep_forever();
          } catch (const corun::cancelled&) {
            group_cleaned = true;
            throw;
          }
        });
        inner.start();
        CHECK(inner.task_group().tasks().front().name() == "inner:main");
        co_await corun::sleep_for(1s);
        const corun::time_point start = corun::now();
        co_await outer.stop();  // cancels both hosts, hence what runs in them, and waits
        CHECK(corun::now() == start);
        CHECK_FALSE(outer.is_running());
        CHECK(outer.main_cancelled.load());
        CHECK(group_cleaned.load());
        CHECK(inner_cleaned.load());
        CHECK(t.cancelled());
        CHECK_FALSE(group.is_running());
        CHECK_FALSE(inner.is_running());
        // Their hosts ended: both are closed for new tasks now.
        CHECK_THROWS_AS(inner.start(), std::logic_error);
        CHECK_THROWS_AS((void)group.spawn(value_of(1)), std::logic_error);
        co_await group.stop();
        co_await inner.stop();
      }());
    }
  }
}
