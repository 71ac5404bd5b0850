/// \file
/// The ownership tree (API.md, "Ownership"): a task completes only after its children; a child's
/// unobserved failure fails its parent; dropping a handle only detaches; a root's unobserved
/// failure goes to `on_unhandled_exception`.
#include "support.hpp"

#include <set>
#include <string>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

task<void> yield_then_set(int yields, std::atomic<bool>& flag) {
  co_await yield_times(yields);
  flag.store(true, std::memory_order_release);
}

task<void> leaf(std::atomic<int>& finished) {
  co_await yield_times(50);
  finished.fetch_add(1);
}

task<void> middle(std::atomic<int>& finished) {
  for (int i = 0; i < 4; ++i) {
    (void)corun::spawn(leaf(finished));
  }
  finished.fetch_add(1);
  co_return;
}

/// Spawns 4 children that spawn 4 children each, drops every handle and returns 7 at once.
task<int> fan_out_two_levels(std::atomic<int>& finished) {
  for (int i = 0; i < 4; ++i) {
    (void)corun::spawn(middle(finished));
  }
  co_return 7;
}

task<int> throw_at_start(int id) {
  throw test_error(id);
  co_return 0;
}

}  // namespace

TEST_SUITE("task_ownership") {
  TEST_CASE("a task does not complete until every child it spawned has completed") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      for (int round = 0; round < 20; ++round) {
        std::atomic<bool> child_finished{false};
        corun::task_handle child;
        rt.block_on([](std::atomic<bool>& flag, corun::task_handle& out) -> task<void> {
          auto h = corun::spawn(yield_then_set(200, flag));
          out = h;
          co_return;  // the join_handle is dropped unawaited
        }(child_finished, child));
        CHECK(child_finished.load());
        CHECK(child.done());
        CHECK_FALSE(child.failed());
        CHECK_FALSE(child.cancelled());
      }
    }
  }

  TEST_CASE("a parent's awaiter resumes only after its grandchildren completed") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> finished{0};
      const int value = rt.block_on([](std::atomic<int>& n) -> task<int> {
        auto parent = corun::spawn(fan_out_two_levels(n));
        const int v = co_await parent;
        // 4 middles + 16 leaves, all done before the parent's value was delivered.
        CHECK(n.load() == 20);
        co_return v;
      }(finished));
      CHECK(value == 7);
      CHECK(finished.load() == 20);
    }
  }

  TEST_CASE("a child kept in an unawaited handle still holds its parent open") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> flag{false};
      rt.block_on([](std::atomic<bool>& f) -> task<void> {
        auto kept = corun::spawn(yield_then_set(100, f));
        co_await yield_times(2);
        co_return;  // `kept` is destroyed with the frame's locals, never awaited
      }(flag));
      CHECK(flag.load());
    }
  }

  TEST_CASE("dropping a join_handle only detaches it and the task keeps running") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> go{false};
      std::atomic<bool> finished{false};
      {
        corun::task_handle observer;
        {
          auto h = rt.spawn(
              [](std::atomic<bool>& g, std::atomic<bool>& f) -> task<void> {
                co_await yield_until(g);
                f.store(true, std::memory_order_release);
              },
              std::ref(go), std::ref(finished));
          observer = h;
        }  // the join_handle is gone; the task is not
        CHECK_FALSE(observer.done());
        go.store(true, std::memory_order_release);
        wait_for_flag(finished);
        CHECK(finished.load());
      }
    }
  }

  TEST_CASE("a dropped child's failure fails its parent") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      try {
        (void)rt.block_on([]() -> task<int> {
          (void)corun::spawn(fail_after(10, 7));
          co_return 1;
        }());
        FAIL("the parent should have failed with its child's error");
      } catch (const test_error& e) {
        CHECK(e.id() == 7);
      }
    }
  }

  TEST_CASE("a dropped child's failure cancels its parent") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> parent_saw_cancel{false};
      try {
        rt.block_on([](std::atomic<bool>& saw) -> task<void> {
          (void)corun::spawn(fail_after(3, 8));
          try {
            co_await yield_forever();
          } catch (const corun::cancelled&) {
            saw = true;
            throw;
          }
        }(parent_saw_cancel));
        FAIL("the parent should have failed with its child's error");
      } catch (const test_error& e) {
        CHECK(e.id() == 8);
      }
      CHECK(parent_saw_cancel.load());
    }
  }

  TEST_CASE("a dropped child's failure cancels its siblings") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      corun::task_handle sibling;
      CHECK_THROWS_AS(rt.block_on([](corun::task_handle& out) -> task<void> {
        out = corun::spawn(yield_forever());
        (void)corun::spawn(fail_after(5, 9));
        co_return;
      }(sibling)),
                      test_error);
      REQUIRE(sibling.done());
      CHECK(sibling.cancelled());
    }
  }

  TEST_CASE("several dropped child failures surface as an exception_group") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      try {
        rt.block_on([]() -> task<void> {
          // They throw before any suspension point, so cancellation cannot pre-empt them.
          for (int id = 1; id <= 3; ++id) {
            (void)corun::spawn(throw_at_start(id));
          }
          co_return;
        }());
        FAIL("the parent should have failed");
      } catch (const corun::exception_group& group) {
        std::multiset<int> ids;
        for (const auto& leaf : group.leaves()) {
          ids.insert(test_error_id(leaf));
        }
        CHECK(ids == std::multiset<int>{1, 2, 3});
      }
    }
  }

  TEST_CASE("a single dropped child failure is rethrown as itself, not as a group") {
    corun::runtime rt(with_workers(2));
    CHECK_THROWS_AS(rt.block_on([]() -> task<void> {
      (void)corun::spawn(throw_at_start(1));
      co_return;
    }()),
                    test_error);
  }

  TEST_CASE("a child's failure observed through its handle does not fail the parent") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const int value = rt.block_on([]() -> task<int> {
        auto child = corun::spawn(fail_after(5, 1));
        try {
          co_await child;
        } catch (const test_error& e) {
          co_return 100 + e.id();
        }
        co_return 0;
      }());
      CHECK(value == 101);
    }
  }

  TEST_CASE("an awaited child's failure propagates like any exception") {
    corun::runtime rt(with_workers(2));
    CHECK_THROWS_AS(rt.block_on([]() -> task<int> {
      auto child = corun::spawn(fail_after(5, 1));
      co_return co_await child;
    }()),
                    test_error);
  }

  TEST_CASE("retrieving a failure with exception() counts as observing it") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const int id = rt.block_on([]() -> task<int> {
        auto child = corun::spawn(fail_after(2, 4));
        while (!child.done()) {
          co_await corun::this_task::yield();
        }
        co_return test_error_id(child.exception());
      }());
      CHECK(id == 4);
    }
  }

  TEST_CASE("rethrow() through a task_handle counts as observing the failure") {
    corun::runtime rt(with_workers(2));
    const int id = rt.block_on([]() -> task<int> {
      corun::task_handle child = corun::spawn(fail_after(2, 5));
      while (!child.done()) {
        co_await corun::this_task::yield();
      }
      try {
        child.rethrow();
      } catch (const test_error& e) {
        co_return e.id();
      }
      co_return -1;
    }());
    CHECK(id == 5);
  }

  TEST_CASE("a failure only checked with failed() is not observed and fails the parent") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      CHECK_THROWS_AS(rt.block_on([]() -> task<void> {
        auto child = corun::spawn(fail_after(2, 6));
        while (!child.done()) {
          co_await corun::this_task::yield();
        }
        CHECK(child.failed());
        co_return;  // the handle goes without anybody having looked at the error
      }()),
                      test_error);
    }
  }

  TEST_CASE("a root task's unobserved failure goes to on_unhandled_exception") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      failure_recorder recorder;
      std::uint64_t id = 0;
      {
        corun::runtime_options options = with_workers(workers);
        options.on_unhandled_exception = recorder.handler();
        corun::runtime rt(std::move(options));
        {
          auto h = rt.spawn(fail_after(3, 12), {.name = "doomed"});
          id = h.id();
        }  // dropped (most likely) while the task runs
        // Shutdown would cancel it before it fails: wait until it completed.
        wait_for_completed(rt, 1);
      }
      const auto failures = recorder.failures();
      REQUIRE(failures.size() == 1);
      CHECK(failures[0].task_name == "doomed");
      CHECK(failures[0].task_id == id);
      CHECK(test_error_id(failures[0].error) == 12);
    }
  }

  TEST_CASE("a root task's failure delivered by get() is not reported as unhandled") {
    failure_recorder recorder;
    {
      corun::runtime_options options = with_workers(2);
      options.on_unhandled_exception = recorder.handler();
      corun::runtime rt(std::move(options));
      auto h = rt.spawn(fail_after(3, 1));
      CHECK_THROWS_AS(h.get(), test_error);
      CHECK_THROWS_AS(rt.block_on(fail_after(0, 2)), test_error);
    }
    CHECK(recorder.count() == 0);
  }

  TEST_CASE("a failure in a root task's dropped child reaches on_unhandled_exception once") {
    failure_recorder recorder;
    {
      corun::runtime_options options = with_workers(2);
      options.on_unhandled_exception = recorder.handler();
      corun::runtime rt(std::move(options));
      (void)rt.spawn([]() -> task<void> {
        (void)corun::spawn(fail_after(2, 21));
        co_return;
      });
      wait_for_completed(rt, 2);
    }
    const auto failures = recorder.failures();
    REQUIRE(failures.size() == 1);
    CHECK(test_error_id(failures[0].error) == 21);
  }

  TEST_CASE("root tasks cancelled by shutdown are not reported as unhandled failures") {
    failure_recorder recorder;
    {
      corun::runtime_options options = with_workers(2);
      options.on_unhandled_exception = recorder.handler();
      corun::runtime rt(std::move(options));
      for (int i = 0; i < 100; ++i) {
        (void)rt.spawn(yield_forever());
      }
    }
    CHECK(recorder.count() == 0);
  }

  TEST_CASE("a failed child whose handle outlives its parent is reported when the handle goes") {
    failure_recorder recorder;
    {
      corun::runtime_options options = with_workers(2);
      options.on_unhandled_exception = recorder.handler();
      corun::runtime rt(std::move(options));
      corun::task_handle kept;
      rt.block_on([](corun::task_handle& out) -> task<void> {
        out = corun::spawn(fail_after(1, 31));
        co_return;
      }(kept));
      // The parent completed without the failure: a handle still existed, so nobody had given up
      // on observing it yet.
      REQUIRE(kept.done());
      CHECK(kept.failed());
      CHECK(recorder.count() == 0);
      kept = corun::task_handle{};
    }
    const auto failures = recorder.failures();
    REQUIRE(failures.size() == 1);
    CHECK(test_error_id(failures[0].error) == 31);
  }

  TEST_CASE("a failed task's handle may outlive the runtime") {
    corun::task_handle kept;
    {
      corun::runtime rt(with_workers(2));
      auto h = rt.spawn(fail_after(1, 41));
      CHECK_THROWS_AS(h.get(), test_error);  // observed: nothing to report later
      kept = h;
      corun::task_handle unobserved = rt.spawn(fail_after(1, 42));
      while (!unobserved.done()) {
        std::this_thread::yield();
      }
      CHECK(test_error_id(unobserved.exception()) == 42);
    }
    CHECK(kept.done());
    CHECK(kept.failed());
    CHECK_THROWS_AS(kept.rethrow(), test_error);
  }

  TEST_CASE("the default unhandled exception handler prints the task's name and error") {
    stderr_capture capture;
    {
      corun::runtime rt(with_workers(1));
      (void)rt.spawn(fail_after(1, 77), {.name = "loud-task"});
      wait_for_completed(rt, 1);
    }
    const std::string printed = capture.finish();
    CHECK(printed.find("loud-task") != std::string::npos);
    CHECK(printed.find("test_error 77") != std::string::npos);
  }

  TEST_CASE("terminate_on_unhandled_exception ends the process on an unobserved failure") {
    const std::string ending = in_child_process([] {
      corun::runtime_options options = with_workers(1);
      options.on_unhandled_exception = corun::terminate_on_unhandled_exception();
      corun::runtime rt(std::move(options));
      (void)rt.spawn(throw_at_start(5));
      wait_for_completed(rt, 1);
      return true;  // only reached if nothing terminated
    });
    CHECK(ending == "terminate");
  }
}
