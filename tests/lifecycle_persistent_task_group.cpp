/// \file
/// `persistent_task_group`: frequenz-core's PersistentTaskGroup suite translated (construction,
/// names, cancel, as_completed with and without timeout, join and stop with success, error and
/// cancellation, the context-manager forms), plus what C++ adds: where the group lives in the
/// task tree, its destruction, logging, stop with a task whose cleanup fails, the
/// `task_creator` concept, and `current_spawner()` at run time (children of the running task,
/// a group's creator, misuse). All on virtual time.
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using corun::persistent_task_group;
using corun::task;
using corun::task_handle;
using namespace corun_test;
using namespace std::chrono_literals;

// The task creators of API.md §5.
static_assert(corun::task_creator<corun::runtime>);
static_assert(corun::task_creator<corun::task_group>);
static_assert(corun::task_creator<corun::persistent_task_group>);
static_assert(corun::task_creator<corun::service_base>);
static_assert(corun::task_creator<corun::current_task_spawner>);
static_assert(corun::task_creator<const corun::current_task_spawner>);
static_assert(!corun::task_creator<int>);
static_assert(!corun::task_creator<corun::task_handle>);
static_assert(!std::is_copy_constructible_v<persistent_task_group>);
static_assert(!std::is_move_constructible_v<persistent_task_group>);

namespace {

/// Worker counts swept where scheduling matters.
constexpr std::size_t lifecycle_workers[] = {1, 2, 4};

std::string shown(const persistent_task_group& group) {
  std::ostringstream out;
  out << group;
  return out.str();
}

task<void> nap(std::chrono::nanoseconds d) { co_await corun::sleep_for(d); }

task<void> boom_after(std::chrono::nanoseconds d, int id) {
  co_await corun::sleep_for(d);
  throw test_error(id);
}

/// Ends cancelled on its own (asyncio's `self.cancel()` in the frequenz test).
task<void> cancel_self_after(std::chrono::nanoseconds d) {
  co_await corun::sleep_for(d);
  throw corun::cancelled("bye bye");
}

/// Sleeps until cancelled; records that its cancellation handler ran.
task<void> until_cancelled(std::atomic<bool>& cleaned) {
  try {
    co_await corun::this_task::sleep_forever();
  } catch (const corun::cancelled&) {
    cleaned = true;
    throw;
  }
}

/// Sleeps until cancelled, then spends `cleanup` (shielded) before ending cancelled.
task<void> sleeps_then_cleans(std::chrono::nanoseconds cleanup, std::atomic<bool>& cleaned) {
  try {
    co_await corun::sleep_for(24h);
  } catch (const corun::cancelled&) {
  }
  task<void> rest = nap(cleanup);
  task<void> shielded = corun::shield(std::move(rest));
  co_await std::move(shielded);
  cleaned = true;
  throw corun::cancelled("cleaned up");
}

task<void> nap_then_set(std::chrono::nanoseconds d, std::atomic<bool>& done) {
  co_await corun::sleep_for(d);
  done = true;
}

/// Sleeps until cancelled, then spends `cleanup` (shielded) and fails the cleanup with a
/// `std::runtime_error`: a cancelled task that ends with another error.
task<void> cleanup_fails(std::chrono::nanoseconds cleanup, std::atomic<bool>& cleaned) {
  try {
    co_await corun::this_task::sleep_forever();
  } catch (const corun::cancelled&) {
  }
  task<void> rest = nap(cleanup);
  task<void> shielded = corun::shield(std::move(rest));
  co_await std::move(shielded);
  cleaned = true;
  throw std::runtime_error("cleanup failed");
}

/// The message of a `std::runtime_error` held by `error`, else empty.
std::string runtime_error_message(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (...) {
    return {};
  }
}

bool is_task_cancelled(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const corun::task_cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool is_lower_hex(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0 || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

TEST_SUITE("lifecycle_persistent_task_group") {
  TEST_CASE("persistent_task_group constructed with defaults gets a generated unique hex id") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      persistent_task_group a;
      persistent_task_group b;
      CHECK(is_lower_hex(a.unique_id()));
      CHECK(a.unique_id() != b.unique_id());
      CHECK(a.tasks().empty());
      CHECK_FALSE(a.is_running());
      CHECK(shown(a) ==
            "persistent_task_group<unique_id=" + a.unique_id() + ", running=0, waiting_ack=0>");
      co_return;
    }());
  }

  TEST_CASE("persistent_task_group constructed with a unique id keeps it") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      CHECK(group.unique_id() == "test");
      CHECK(group.tasks().empty());
      CHECK_FALSE(group.is_running());
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=0, waiting_ack=0>");
      co_return;
    }());
  }

  TEST_CASE("persistent_task_group names its tasks unique_id:name") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto named = group.spawn(nap(1s), {.name = "sleep_1"});
      auto unnamed = group.spawn(nap(1s));
      CHECK(named.name() == "test:sleep_1");
      CHECK(unnamed.name() == "test:" + std::to_string(unnamed.id()));
      CHECK(group.tasks().size() == 2);
      CHECK(group.is_running());
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=2, waiting_ack=0>");
      co_await named;
      co_await unnamed;
      co_await group.stop();
    }());
  }

  TEST_CASE("persistent_task_group cancel cancels every running task") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        auto first = group.spawn(nap(1h), {.name = "sleep_1"});
        auto second = group.spawn(nap(2h), {.name = "sleep_2"});
        group.cancel("enough");
        co_await corun::sleep_for(1s);  // the tasks end cancelled
        CHECK_FALSE(group.is_running());
        CHECK(first.cancelled());
        CHECK(second.cancelled());
        co_await group.stop();  // their cancellations are not failures of stop
      }());
    }
  }

  TEST_CASE(
      "persistent_task_group as_completed with a timeout ends quietly when nothing finishes") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto sleeper = group.spawn(nap(1s), {.name = "sleep_1"});
      const corun::time_point start = corun::now();
      int yielded = 0;
      {
        auto done = group.as_completed(500ms);
        while (co_await done.next()) {
          ++yielded;
        }
      }
      CHECK(yielded == 0);
      CHECK(corun::now() - start == 500ms);  // one bounded wait, then the end
      CHECK(group.is_running());
      CHECK(group.tasks().size() == 1);
      co_await sleeper;
      co_await group.join();
    }());
  }

  TEST_CASE("persistent_task_group as_completed yields tasks in the order they finish") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        const corun::time_point start = corun::now();
        // Spawned out of order: completion order is 1 s, 2 s, 3 s.
        auto cancel_at_3 = group.spawn(cancel_self_after(3s), {.name = "cancel_at_3"});
        auto sleep_1 = group.spawn(nap(1s), {.name = "sleep_1"});
        auto boom_at_2 =
            group.spawn(boom_after(2s, 2), {.name = "boom_at_2", .log_exception = false});
        CHECK(group.tasks().size() == 3);
        std::vector<std::uint64_t> order;
        std::vector<std::chrono::nanoseconds> at;
        auto done = group.as_completed();
        while (std::optional<task_handle> t = co_await done.next()) {
          CHECK(t->done());
          order.push_back(t->id());
          at.push_back(corun::now() - start);
          if (t->id() == sleep_1.id()) {
            CHECK_FALSE(t->failed());
            CHECK_FALSE(t->cancelled());
          } else if (t->id() == boom_at_2.id()) {
            CHECK(test_error_id(t->exception()) == 2);
          } else if (t->id() == cancel_at_3.id()) {
            CHECK(t->cancelled());
          }
        }
        CHECK(order == std::vector<std::uint64_t>{sleep_1.id(), boom_at_2.id(), cancel_at_3.id()});
        CHECK(at == std::vector<std::chrono::nanoseconds>{1s, 2s, 3s});
        CHECK_FALSE(group.is_running());
        CHECK(group.tasks().empty());  // all acknowledged
        co_await group.join();         // nothing left to report
      }());
    }
  }

  TEST_CASE(
      "persistent_task_group shows running and waiting_ack as tasks finish and are acknowledged") {
    corun::runtime rt(with_virtual_time(1));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      (void)group.spawn(nap(0s), {.name = "sleep_1"});
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=1, waiting_ack=0>");
      (void)group.spawn(nap(0s), {.name = "sleep_2"});
      (void)group.spawn(nap(2s), {.name = "sleep_3"});
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=3, waiting_ack=0>");
      co_await corun::sleep_for(1s);  // two of them are done
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=1, waiting_ack=2>");
      auto done = group.as_completed();
      CHECK(co_await done.next());
      // Handed out, not acknowledged until the consumer asks for more.
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=1, waiting_ack=2>");
      CHECK(co_await done.next());
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=1, waiting_ack=1>");
      CHECK(co_await done.next());  // waits for sleep_3
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=0, waiting_ack=1>");
      CHECK_FALSE(co_await done.next());
      CHECK(shown(group) == "persistent_task_group<unique_id=test, running=0, waiting_ack=0>");
    }());
  }

  TEST_CASE("persistent_task_group as_completed hands a task out again when the consumer threw") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto quick = group.spawn(nap(1s));
      co_await corun::sleep_for(2s);
      bool threw = false;
      try {
        auto done = group.as_completed();
        std::optional<task_handle> first = co_await done.next();
        CHECK(first);
        throw test_error(9);  // the consumer's body fails with the task in hand
      } catch (const test_error&) {
        threw = true;
      }
      CHECK(threw);
      CHECK(group.tasks().size() == 1);
      auto again = group.as_completed();
      std::optional<task_handle> second = co_await again.next();
      REQUIRE(second);
      CHECK(second->id() == quick.id());
      CHECK_FALSE(co_await again.next());
      CHECK(group.tasks().empty());
    }());
  }

  TEST_CASE(
      "persistent_task_group join returns when its tasks succeed, and stop on an idle group is a "
      "no-op") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        co_await group.stop();  // nothing runs
        CHECK_FALSE(group.is_running());
        auto t = group.spawn(nap(1s), {.name = "sleep_1"});
        CHECK(group.is_running());
        co_await group.join();
        CHECK_FALSE(group.is_running());
        CHECK(t.done());
        CHECK_FALSE(t.cancelled());
        CHECK(t.exception() == nullptr);
        CHECK(group.tasks().empty());  // join acknowledged it
      }());
    }
  }

  TEST_CASE("persistent_task_group join throws an exception_group of the failures, once") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        auto boom = group.spawn(boom_after(1s, 4), {.name = "boom", .log_exception = false});
        CHECK(group.is_running());
        std::string message;
        std::multiset<int> ids;
        try {
          co_await group.join();
        } catch (const corun::exception_group& failures) {
          message = failures.message();
          ids = member_ids(failures);
        }
        CHECK(message == "corun: persistent_task_group 'test': 1 task failed");
        CHECK(ids == std::multiset<int>{4});
        CHECK_FALSE(group.is_running());
        CHECK(boom.done());
        CHECK_FALSE(boom.cancelled());
        CHECK(test_error_id(boom.exception()) == 4);
        co_await group.join();  // reported once: gone now
        co_await group.stop();
      }());
    }
  }

  TEST_CASE("persistent_task_group join counts a task cancelled on its own as a failure") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto t = group.spawn(nap(1s), {.name = "sleep_1"});
      CHECK(group.is_running());
      t.cancel("bye bye");
      std::size_t members = 0;
      bool cancelled_member = false;
      try {
        co_await group.join();
      } catch (const corun::exception_group& failures) {
        members = failures.exceptions().size();
        cancelled_member = is_task_cancelled(failures.exceptions().front());
      }
      CHECK(members == 1);
      CHECK(cancelled_member);
      CHECK_FALSE(group.is_running());
      CHECK(t.cancelled());
    }());
  }

  TEST_CASE("persistent_task_group join waits for tasks spawned while it waits") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        std::atomic<bool> second_done{false};
        (void)group.spawn([&]() -> task<void> {
          co_await corun::sleep_for(1s);
          (void)group.spawn([&]() -> task<void> {
            co_await corun::sleep_for(1s);
            second_done = true;
          });
        });
        const corun::time_point start = corun::now();
        co_await group.join();
        CHECK(second_done.load());
        CHECK(corun::now() - start == 2s);
      }());
    }
  }

  TEST_CASE("persistent_task_group a failing task does not cancel the others") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        auto steady = group.spawn(nap(10s), {.name = "steady"});
        auto boom = group.spawn(boom_after(1s, 7), {.name = "boom", .log_exception = false});
        co_await corun::sleep_for(2s);
        CHECK(boom.failed());
        CHECK_FALSE(steady.done());
        CHECK(group.is_running());
        co_await corun::sleep_for(9s);
        CHECK(steady.done());
        CHECK_FALSE(steady.cancelled());
        CHECK_FALSE(steady.failed());
        std::multiset<int> ids;
        try {
          co_await group.stop();
        } catch (const corun::exception_group& failures) {
          ids = member_ids(failures);
        }
        CHECK(ids == std::multiset<int>{7});
      }());
    }
  }

  TEST_CASE("persistent_task_group stop cancels and waits, and a second stop is a no-op") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        std::atomic<bool> cleaned{false};
        auto t = group.spawn(until_cancelled(cleaned), {.name = "sleep_1"});
        CHECK(group.is_running());
        co_await corun::sleep_for(1s);
        CHECK(group.is_running());
        co_await group.stop("shutting down");
        CHECK_FALSE(group.is_running());
        CHECK(cleaned.load());  // stop waited for the cleanup
        CHECK(t.cancelled());
        co_await group.stop();
        CHECK_FALSE(group.is_running());
      }());
    }
  }

  TEST_CASE("persistent_task_group stop throws the failures of tasks that failed before it, once") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto boom = group.spawn(boom_after(500ms, 3), {.name = "boom", .log_exception = false});
      CHECK(group.is_running());
      co_await corun::sleep_for(1s);
      CHECK_FALSE(group.is_running());
      std::string message;
      std::multiset<int> ids;
      try {
        co_await group.stop();
      } catch (const corun::exception_group& failures) {
        message = failures.message();
        ids = member_ids(failures);
      }
      CHECK(message == "corun: persistent_task_group 'test': 1 task failed");
      CHECK(ids == std::multiset<int>{3});
      CHECK(boom.failed());
      co_await group.stop();  // reported once
      CHECK_FALSE(group.is_running());
    }());
  }

  TEST_CASE("persistent_task_group stop leaves out a task that was cancelled before it") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto t = group.spawn(nap(1s), {.name = "sleep_1"});
      t.cancel("bye bye");
      co_await corun::sleep_for(500ms);
      CHECK_FALSE(group.is_running());
      co_await group.stop();  // no exception_group: cancellations are filtered
      CHECK(t.cancelled());
      CHECK(group.tasks().empty());
      co_await group.stop();
    }());
  }

  TEST_CASE(
      "persistent_task_group stop throws what a task it cancelled failed with, cancellations "
      "left out") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("test");
        std::atomic<bool> cleaned{false};
        std::atomic<bool> other_cleaned{false};
        auto failing =
            group.spawn(cleanup_fails(1s, cleaned), {.name = "failing", .log_exception = false});
        auto quiet = group.spawn(until_cancelled(other_cleaned), {.name = "quiet"});
        co_await corun::sleep_for(1s);
        const corun::time_point start = corun::now();
        std::optional<corun::exception_group> failures;
        try {
          co_await group.stop("shutting down");
        } catch (const corun::exception_group& e) {
          failures = e;
        }
        CHECK(corun::now() - start == 1s);  // stop waited for the failing cleanup
        CHECK(cleaned.load());
        CHECK(other_cleaned.load());
        REQUIRE(failures);
        CHECK(failures->message() == "corun: persistent_task_group 'test': 1 task failed");
        REQUIRE(failures->exceptions().size() == 1);  // not the other task's cancellation
        CHECK(runtime_error_message(failures->exceptions().front()) == "cleanup failed");
        CHECK(failing.failed());
        CHECK(quiet.cancelled());
        CHECK_FALSE(group.is_running());
        co_await group.stop();  // reported once
      }());
    }
  }

  TEST_CASE("persistent_task_group stop is not cut short by the caller's cancellation") {
    corun::runtime rt(with_virtual_time(2));
    std::atomic<bool> cleaned{false};
    std::atomic<bool> stop_returned{false};
    std::chrono::nanoseconds stop_took{};
    rt.block_on([&]() -> task<void> {
      auto stopper = corun::spawn([&]() -> task<void> {
        persistent_task_group group("test");
        (void)group.spawn(sleeps_then_cleans(1s, cleaned));
        co_await corun::sleep_for(1s);
        const corun::time_point start = corun::now();
        co_await group.stop();
        stop_took = corun::now() - start;
        stop_returned = true;
      });
      co_await corun::sleep_for(1500ms);  // the stopper waits in stop() now
      stopper.cancel("hurry");
      try {
        co_await stopper;
      } catch (const corun::task_cancelled&) {
      }
    }());
    CHECK(stop_returned.load());
    CHECK(cleaned.load());
    CHECK(stop_took == 1s);  // the whole cleanup, not the 500 ms until the cancel
  }

  // The context-manager forms of the frequenz suite: `async with group:` is the body followed
  // by `stop()` (C++ has no async destructor; with_service is the scoped form for services).
  TEST_CASE("persistent_task_group used as a scope ending in stop: tasks that succeeded") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      CHECK_FALSE(group.is_running());
      auto t = group.spawn(nap(1s), {.name = "sleep_1"});
      CHECK(group.is_running());
      CHECK_FALSE(t.done());
      co_await corun::sleep_for(2s);
      CHECK_FALSE(group.is_running());
      CHECK(t.done());
      CHECK(t.exception() == nullptr);
      co_await group.stop();
      CHECK_FALSE(group.is_running());
      CHECK_FALSE(t.cancelled());
    }());
  }

  TEST_CASE("persistent_task_group used as a scope ending in stop: a task that failed") {
    corun::runtime rt(with_virtual_time(2));
    bool body_finished = false;
    std::string message;
    std::multiset<int> ids;
    rt.block_on([&]() -> task<void> {
      try {
        persistent_task_group group("test");
        auto t = group.spawn(boom_after(500ms, 5), {.name = "boom", .log_exception = false});
        CHECK(group.is_running());
        co_await corun::sleep_for(1s);
        CHECK_FALSE(group.is_running());
        CHECK(test_error_id(t.exception()) == 5);
        body_finished = true;
        co_await group.stop();
      } catch (const corun::exception_group& failures) {
        message = failures.message();
        ids = member_ids(failures);
      }
    }());
    CHECK(body_finished);
    CHECK(message == "corun: persistent_task_group 'test': 1 task failed");
    CHECK(ids == std::multiset<int>{5});
  }

  TEST_CASE("persistent_task_group used as a scope ending in stop: a task cancelled inside") {
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([]() -> task<void> {
      persistent_task_group group("test");
      auto t = group.spawn(nap(1s), {.name = "sleep_1"});
      CHECK(group.is_running());
      t.cancel("bye bye");
      co_await group.stop();
      CHECK_FALSE(group.is_running());
      CHECK(t.cancelled());
    }());
  }

  TEST_CASE(
      "persistent_task_group destruction cancels its tasks and the creating task waits for them") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::atomic<bool> cleaned{false};
      bool cleaned_before_owner_ended = false;
      rt.block_on([&]() -> task<void> {
        auto owner = corun::spawn([&]() -> task<void> {
          persistent_task_group group("doomed");
          (void)group.spawn(sleeps_then_cleans(1s, cleaned));
          co_await corun::sleep_for(1s);
        });
        co_await owner;  // no failure: the cancellation at destruction is the group's own
        cleaned_before_owner_ended = cleaned.load();
      }());
      CHECK(cleaned_before_owner_ended);
    }
  }

  TEST_CASE(
      "persistent_task_group destroyed with an unacknowledged failure fails the creating task") {
    corun::runtime rt(with_virtual_time(2));
    std::multiset<int> ids;
    rt.block_on([&]() -> task<void> {
      auto owner = corun::spawn([&]() -> task<void> {
        persistent_task_group group("doomed");
        (void)group.spawn(boom_after(1s, 6), {.log_exception = false});
        (void)group.spawn(cancel_self_after(1s));  // cancellations are not reported
        co_await corun::sleep_for(2s);
      });
      try {
        co_await owner;
      } catch (const corun::exception_group& failures) {
        ids = leaf_ids(failures);
      }
    }());
    CHECK(ids == std::multiset<int>{6});
  }

  TEST_CASE("persistent_task_group tasks are cancelled with the task that created the group") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::atomic<bool> cleaned{false};
      bool task_cancelled = false;
      bool cleaned_first = false;
      rt.block_on([&]() -> task<void> {
        persistent_task_group* shared = nullptr;
        corun::async_event created;
        auto owner = corun::spawn([&]() -> task<void> {
          persistent_task_group group("owned");
          shared = &group;
          created.set();
          co_await corun::this_task::sleep_forever();
        });
        co_await created.wait();
        // Spawned by this task, but the group's, so the owner's cancellation reaches it.
        auto t = shared->spawn(until_cancelled(cleaned));
        co_await corun::sleep_for(1s);
        owner.cancel("owner goes");
        try {
          co_await owner;
        } catch (const corun::task_cancelled&) {
        }
        cleaned_first = cleaned.load();  // the owner ended only after the group's task
        task_cancelled = t.cancelled();
      }());
      CHECK(cleaned_first);
      CHECK(task_cancelled);
    }
  }

  TEST_CASE(
      "persistent_task_group refuses new tasks once its creator was cancelled and its tasks "
      "ended") {
    corun::runtime rt(with_virtual_time(2));
    bool refused = false;
    bool stop_worked = false;
    rt.block_on([&]() -> task<void> {
      auto owner = corun::spawn([&]() -> task<void> {
        persistent_task_group group("closing");
        try {
          co_await corun::this_task::sleep_forever();
        } catch (const corun::cancelled&) {
        }
        // Let the host notice (a shielded nap: we are cancelled).
        task<void> rest = nap(1s);
        task<void> shielded = corun::shield(std::move(rest));
        co_await std::move(shielded);
        try {
          (void)group.spawn(value_of(1));
        } catch (const std::logic_error&) {
          refused = true;
        }
        task<void> stopping = group.stop();
        co_await std::move(stopping);
        stop_worked = true;
      });
      co_await corun::sleep_for(1s);
      owner.cancel("closing time");
      co_await owner;
    }());
    CHECK(refused);
    CHECK(stop_worked);
  }

  TEST_CASE("persistent_task_group with the runtime as creator is usable from outside any task") {
    // Declared before the runtime: the task below may still run its handler, which writes it,
    // until the runtime's destruction has waited for it.
    std::atomic<bool> cleaned{false};
    {
      corun::runtime rt(with_virtual_time(2));
      {
        persistent_task_group group("rooted", rt);
        auto seven = group.spawn(value_of(7), {.name = "seven"});  // from a non-worker thread
        CHECK(seven.name() == "rooted:seven");
        CHECK(seven.get() == 7);
        rt.block_on(group.join());
        CHECK_FALSE(group.is_running());
        (void)group.spawn(until_cancelled(cleaned));
        CHECK(group.is_running());
      }  // cancels that task; the runtime's destruction waits for the host, which waits for it
      CHECK_THROWS_AS(persistent_task_group("outside"), std::logic_error);
    }
    CHECK(cleaned);  // the group's destruction cancelled the task, and its handler ran
  }

  TEST_CASE("persistent_task_group living in a task_group is joined, and fails it, with it") {
    corun::runtime rt(with_virtual_time(2));
    std::multiset<int> ids;
    rt.block_on([&]() -> task<void> {
      corun::task_group tg;
      {
        persistent_task_group group("in-tg", tg);
        (void)group.spawn(boom_after(1s, 3), {.log_exception = false});
        co_await corun::sleep_for(2s);
      }  // destroyed unacknowledged: its host fails, a member of tg
      try {
        co_await tg.join();
      } catch (const corun::exception_group& failures) {
        ids = leaf_ids(failures);
      }
    }());
    CHECK(ids == std::multiset<int>{3});
  }

  TEST_CASE("persistent_task_group nested in another is stopped with it") {
    corun::runtime rt(with_virtual_time(2));
    std::atomic<bool> cleaned{false};
    bool inner_refuses = false;
    rt.block_on([&]() -> task<void> {
      persistent_task_group outer("outer");
      persistent_task_group inner("inner", outer);
      CHECK(outer.tasks().size() == 1);  // inner's host
      CHECK(outer.tasks().front().name() == "outer:inner");
      (void)inner.spawn(until_cancelled(cleaned));
      co_await corun::sleep_for(1s);
      co_await outer.stop();  // cancels inner's host, hence inner's task, and waits for both
      CHECK(cleaned.load());
      CHECK_FALSE(inner.is_running());
      try {
        (void)inner.spawn(value_of(1));
      } catch (const std::logic_error&) {
        inner_refuses = true;
      }
      co_await inner.stop();
    }());
    CHECK(inner_refuses);
  }

  TEST_CASE("current_spawner spawns a child of the running task, which waits for it") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::atomic<bool> child_done{false};
      std::string child_name;
      rt.block_on([&]() -> task<void> {
        const corun::time_point start = corun::now();
        auto owner = corun::spawn([&]() -> task<void> {
          const corun::current_task_spawner spawner = corun::current_spawner();
          auto child = spawner.spawn(nap_then_set(2s, child_done), {.name = "kid"});
          child_name = child.name();
          co_return;
        });  // the owner's body returns at once, dropping the child's handle
        co_await owner;
        CHECK(child_done.load());  // the owner completed only after its child
        CHECK(corun::now() - start == 2s);
      }());
      CHECK(child_name == "kid");
    }
  }

  TEST_CASE("current_spawner's children are cancelled with the running task") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::atomic<bool> cleaned{false};
      std::atomic<bool> nested_cleaned{false};
      bool child_cancelled = false;
      bool nested_cancelled = false;
      rt.block_on([&]() -> task<void> {
        task_handle child;
        task_handle nested;
        corun::async_event spawned;
        auto owner = corun::spawn([&]() -> task<void> {
          const corun::current_task_spawner spawner = corun::current_spawner();
          child = spawner.spawn(until_cancelled(cleaned));
          // Awaited (not spawned) coroutines run in the same task: the spawner works there too.
          auto helper = [](const corun::current_task_spawner& s,
                           std::atomic<bool>& flag) -> task<task_handle> {
            co_return s.spawn(until_cancelled(flag));
          };
          task<task_handle> spawning = helper(spawner, nested_cleaned);
          nested = co_await std::move(spawning);
          spawned.set();
          co_await corun::this_task::sleep_forever();
        });
        co_await spawned.wait();
        co_await corun::sleep_for(1s);
        owner.cancel("owner goes");
        CHECK_THROWS_AS(co_await owner, corun::task_cancelled);
        child_cancelled = child.cancelled();
        nested_cancelled = nested.cancelled();
      }());
      CHECK(cleaned.load());
      CHECK(nested_cleaned.load());
      CHECK(child_cancelled);
      CHECK(nested_cancelled);
    }
  }

  TEST_CASE("current_spawner as the task creator of a persistent_task_group") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::atomic<bool> cleaned{false};
      bool cleaned_first = false;
      std::string host_name;
      rt.block_on([&]() -> task<void> {
        persistent_task_group* shared = nullptr;
        corun::async_event created;
        auto owner = corun::spawn([&]() -> task<void> {
          persistent_task_group group("spawned", corun::current_spawner());
          shared = &group;
          created.set();
          co_await corun::this_task::sleep_forever();
        });
        co_await created.wait();
        auto t = shared->spawn(until_cancelled(cleaned), {.name = "t"});
        CHECK(t.name() == "spawned:t");
        co_await corun::sleep_for(1s);
        owner.cancel("owner goes");
        CHECK_THROWS_AS(co_await owner, corun::task_cancelled);
        cleaned_first = cleaned.load();  // the owner ended only after the group's task
        CHECK(t.cancelled());
      }());
      CHECK(cleaned_first);
    }
  }

  TEST_CASE("current_spawner misused: outside a task, or by another task than its own") {
    std::string outside;
    try {
      static_cast<void>(corun::current_spawner());
    } catch (const std::logic_error& e) {
      outside = e.what();
    }
    CHECK(outside.find("corun::current_spawner called outside a corun task") != std::string::npos);
    corun::runtime rt(with_virtual_time(2));
    std::optional<corun::current_task_spawner> kept;
    bool child_refused = false;
    bool group_refused = false;
    rt.block_on([&]() -> task<void> {
      kept.emplace(corun::current_spawner());
      auto other = corun::spawn([&]() -> task<void> {
        try {
          (void)kept->spawn(value_of(1));
        } catch (const std::logic_error& e) {
          child_refused = std::string(e.what()).find("used by another task") != std::string::npos;
        }
        try {
          // The group's constructor spawns its host through the creator.
          persistent_task_group group("misplaced", *kept);
        } catch (const std::logic_error&) {
          group_refused = true;
        }
        co_return;
      });
      co_await other;
    }());
    CHECK(child_refused);
    CHECK(group_refused);
    // From a thread that is not a worker, after its task ended: refused as well.
    CHECK_THROWS_AS(static_cast<void>(kept->spawn(value_of(2))), std::logic_error);
  }

  TEST_CASE("persistent_task_group log_exception prints a failure when it happens") {
    std::string text;
    {
      stderr_capture capture;
      corun::runtime rt(with_virtual_time(1));
      rt.block_on([]() -> task<void> {
        persistent_task_group group("logs");
        (void)group.spawn(boom_after(1s, 1), {.name = "noisy"});
        (void)group.spawn(boom_after(1s, 2), {.name = "quiet", .log_exception = false});
        (void)group.spawn(cancel_self_after(1s), {.name = "cancelled"});
        co_await corun::sleep_for(2s);
        try {
          co_await group.stop();
        } catch (const corun::exception_group&) {
        }
      }());
      text = capture.finish();
    }
    CHECK(text.find("persistent_task_group 'logs': task #") != std::string::npos);
    CHECK(text.find("'logs:noisy' failed: test_error 1") != std::string::npos);
    CHECK(text.find("logs:quiet") == std::string::npos);
    CHECK(text.find("logs:cancelled") == std::string::npos);
  }

  TEST_CASE(
      "persistent_task_group restarts a failing task through as_completed (the seed example)") {
    for (const std::size_t workers : lifecycle_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      std::atomic<int> ticks{0};
      int failures = 0;
      rt.block_on([&]() -> task<void> {
        persistent_task_group group("seed");
        (void)group.spawn(corun::spawn_options{.name = "print_1"}, [&]() -> task<void> {
          for (;;) {
            co_await corun::sleep_for(1s);
            ticks.fetch_add(1);
          }
        });
        auto failing = group.spawn(boom_after(5s, 5), {.name = "fail_5", .log_exception = false});
        const corun::time_point start = corun::now();
        auto done = group.as_completed(5500ms);
        while (std::optional<task_handle> t = co_await done.next()) {
          if (t->id() == failing.id() && t->failed()) {
            ++failures;
            if (corun::now() - start < 12s) {  // restart it, twice
              failing = group.spawn(boom_after(5s, 5), {.name = "fail_5", .log_exception = false});
            }
          }
        }
        // Failures at 5, 10 and 15 s; then nothing finishes for 5.5 s and the iteration ends.
        CHECK(corun::now() - start == 20500ms);
        co_await group.stop();
      }());
      CHECK(failures == 3);
      CHECK(ticks.load() == 20);  // every second up to 20 s
    }
  }
}
