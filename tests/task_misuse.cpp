/// \file
/// Misuse gets a clear error, not undefined behaviour (DESIGN.md section 6).
#include "support.hpp"

#include <stdexcept>
#include <string>
#include <utility>

using corun::task;
using namespace corun_test;

namespace {

template <class F>
bool throws_logic_error(F f) {
  try {
    f();
  } catch (const std::logic_error&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace

TEST_SUITE("task_misuse") {
  TEST_CASE("awaiting a moved-from task throws logic_error") {
    corun::runtime rt(with_workers(2));
    const bool threw = rt.block_on([]() -> task<bool> {
      auto t = value_of(1);
      auto other = std::move(t);
      bool caught = false;
      try {
        (void)co_await std::move(t);  // NOLINT(bugprone-use-after-move): the misuse under test
      } catch (const std::logic_error&) {
        caught = true;
      }
      co_return caught && (co_await std::move(other)) == 1;
    }());
    CHECK(threw);
  }

  TEST_CASE("awaiting a default-constructed task throws logic_error") {
    corun::runtime rt(with_workers(1));
    const bool threw = rt.block_on([]() -> task<bool> {
      task<void> empty;
      try {
        co_await std::move(empty);
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(threw);
  }

  TEST_CASE("spawn outside a task throws logic_error") {
    CHECK_THROWS_AS((void)corun::spawn(value_of(1)), std::logic_error);
    CHECK_THROWS_AS((void)corun::spawn(value_of(1), {.name = "x"}), std::logic_error);
    CHECK_THROWS_AS((void)corun::spawn([]() -> task<void> { co_return; }), std::logic_error);
  }

  TEST_CASE("spawning a moved-from task throws logic_error") {
    corun::runtime rt(with_workers(2));
    task<int> empty;
    CHECK_THROWS_AS((void)rt.spawn(std::move(empty)), std::logic_error);
    const bool threw = rt.block_on([]() -> task<bool> {
      task<int> none;
      try {
        (void)corun::spawn(std::move(none));
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(threw);
  }

  TEST_CASE("block_on on a worker thread throws logic_error") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const bool threw = rt.block_on([](corun::runtime& r) -> task<bool> {
        try {
          (void)r.block_on(value_of(1));
        } catch (const std::logic_error&) {
          co_return true;
        }
        co_return false;
      }(rt));
      CHECK(threw);
    }
  }

  TEST_CASE("block_on on a worker of another runtime throws logic_error") {
    corun::runtime a(with_workers(1));
    corun::runtime b(with_workers(1));
    const bool threw = a.block_on([](corun::runtime& other) -> task<bool> {
      try {
        (void)other.block_on(value_of(1));
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }(b));
    CHECK(threw);
  }

  TEST_CASE("join_handle get on a worker thread throws logic_error") {
    corun::runtime rt(with_workers(2));
    const bool threw = rt.block_on([]() -> task<bool> {
      auto h = corun::spawn(value_of(1));
      bool result = false;
      try {
        (void)h.get();
      } catch (const std::logic_error&) {
        result = true;
      }
      CHECK((co_await h) == 1);  // the handle is still usable
      co_return result;
    }());
    CHECK(threw);
  }

  TEST_CASE("awaiting a join_handle twice throws logic_error") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const int outcome = rt.block_on([]() -> task<int> {
        auto h = corun::spawn(value_of(5));
        const int first = co_await h;
        try {
          (void)co_await h;
        } catch (const std::logic_error&) {
          co_return first;
        }
        co_return -1;
      }());
      CHECK(outcome == 5);
    }
  }

  TEST_CASE("awaiting a join_handle again after it rethrew throws logic_error") {
    corun::runtime rt(with_workers(2));
    const bool ok = rt.block_on([]() -> task<bool> {
      auto h = corun::spawn(fail_after(1, 3));
      try {
        (void)co_await h;
      } catch (const test_error&) {
      }
      try {
        (void)co_await h;
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(ok);
  }

  TEST_CASE("get after the result was taken throws logic_error") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(value_of(8));
    CHECK(h.get() == 8);
    CHECK_THROWS_AS((void)h.get(), std::logic_error);
    CHECK_THROWS_AS((void)h.take_completed(), std::logic_error);
  }

  TEST_CASE("a join_handle whose result was taken stays spent when it is moved") {
    // The handle is one pointer: whether the result was taken is kept with the task, so a
    // move cannot lose it (nor a second handle object reset it).
    static_assert(sizeof(corun::join_handle<int>) == sizeof(void*));
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(value_of(8));
    CHECK(h.get() == 8);
    corun::join_handle<int> moved = std::move(h);
    CHECK(moved.done());
    CHECK_THROWS_AS((void)moved.get(), std::logic_error);
    corun::join_handle<int> assigned;
    assigned = std::move(moved);
    CHECK_THROWS_AS((void)assigned.take_completed(), std::logic_error);
    // A handle that took nothing yet still delivers after moves.
    auto fresh = rt.spawn(value_of(9));
    corun::join_handle<int> carried = std::move(fresh);
    CHECK(carried.get() == 9);
  }

  TEST_CASE("take_completed and rethrow on a running task throw logic_error") {
    corun::runtime rt(with_workers(2));
    std::atomic<bool> release{false};
    auto h = rt.spawn(
        [](std::atomic<bool>& r) -> task<int> {
          co_await yield_until(r);
          co_return 4;
        },
        std::ref(release));
    const corun::task_handle th = h;
    CHECK_THROWS_AS((void)h.take_completed(), std::logic_error);
    CHECK_THROWS_AS(th.rethrow(), std::logic_error);
    release.store(true, std::memory_order_release);
    CHECK(h.get() == 4);
    CHECK_NOTHROW(th.rethrow());
  }

  TEST_CASE("this_task functions outside a task throw logic_error") {
    CHECK(throws_logic_error([] { corun::this_task::checkpoint(); }));
    CHECK(throws_logic_error([] { (void)corun::this_task::yield().await_ready(); }));
    CHECK(throws_logic_error([] { (void)corun::this_task::id(); }));
    CHECK(throws_logic_error([] { (void)corun::this_task::name(); }));
  }

  TEST_CASE("using an empty join_handle throws logic_error") {
    corun::join_handle<int> empty;
    CHECK_FALSE(empty.valid());
    CHECK_THROWS_AS(empty.cancel(), std::logic_error);
    CHECK_THROWS_AS((void)empty.get(), std::logic_error);
    CHECK_THROWS_AS((void)empty.take_completed(), std::logic_error);
    CHECK_THROWS_AS((void)empty.id(), std::logic_error);
    CHECK_THROWS_AS((void)empty.name(), std::logic_error);
    CHECK_THROWS_AS((void)corun::task_handle(empty), std::logic_error);
  }

  TEST_CASE("using an empty task_handle throws logic_error") {
    const corun::task_handle empty;
    CHECK_FALSE(empty.valid());
    CHECK_THROWS_AS(empty.cancel(), std::logic_error);
    CHECK_THROWS_AS(empty.rethrow(), std::logic_error);
    CHECK_THROWS_AS((void)empty.name(), std::logic_error);
  }

  TEST_CASE("querying an empty handle's state throws logic_error instead of terminating") {
    // done(), cancelled(), failed(), exception() and task_handle::id() are declared noexcept but
    // check for an empty handle by throwing, which would call std::terminate. Run each in a child
    // process so that a terminate shows up as a failed check, not a dead test run.
    const auto join_query = [](auto query) {
      return in_child_process([query] {
        const corun::join_handle<int> empty;
        return throws_logic_error([&] { (void)query(empty); });
      });
    };
    const auto task_query = [](auto query) {
      return in_child_process([query] {
        const corun::task_handle empty;
        return throws_logic_error([&] { (void)query(empty); });
      });
    };
    CHECK(join_query([](const auto& h) { return h.done(); }) == "ok");
    CHECK(join_query([](const auto& h) { return h.cancelled(); }) == "ok");
    CHECK(join_query([](const auto& h) { return h.failed(); }) == "ok");
    CHECK(join_query([](const auto& h) { return h.exception() != nullptr; }) == "ok");
    CHECK(task_query([](const auto& h) { return h.done(); }) == "ok");
    CHECK(task_query([](const auto& h) { return h.cancelled(); }) == "ok");
    CHECK(task_query([](const auto& h) { return h.failed(); }) == "ok");
    CHECK(task_query([](const auto& h) { return h.exception() != nullptr; }) == "ok");
    CHECK(task_query([](const auto& h) { return h.id(); }) == "ok");
  }
}
