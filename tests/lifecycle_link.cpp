/// \file
/// `link` and `cancel_when_done`: the Q&A seed's producer and consumer (either one failing or
/// being cancelled cancels the other; a normal return does not, for `link`, and does, for
/// `cancel_when_done`), provenance, the monitor's lifetime, unlinking, misuse.
#include "corun/link.hpp"

#include "support.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t sweep[] = {1, 2, 4};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The seed's producer: sends 0, 1, 2, ... every 200 ms; fails with `test_error(i)` at
/// `fail_at` (never if negative); returns after `count` items (closing the channel) otherwise.
task<void> producer(corun::channel<int>& queue, int fail_at, int count) {
  for (int i = 0; i < count; ++i) {
    co_await queue.send(i);
    co_await corun::sleep_for(200ms);
    if (i == fail_at) {
      throw test_error(i);
    }
  }
  queue.close();
}

/// What a consumer saw.
struct consumer_log {
  std::mutex lock;
  std::vector<int> got;
  std::optional<corun::cancelled> why;
};

/// The seed's consumer: receives until the channel is closed; fails with `test_error(100)`
/// after `fail_after` items (never if negative).
task<void> consumer(corun::channel<int>& queue, consumer_log& log, int fail_after) {
  try {
    while (std::optional<int> item = co_await queue.recv()) {
      const std::lock_guard<std::mutex> guard(log.lock);
      log.got.push_back(*item);
      if (static_cast<int>(log.got.size()) == fail_after) {
        throw test_error(100);
      }
    }
  } catch (const corun::cancelled& why) {
    const std::lock_guard<std::mutex> guard(log.lock);
    log.why = why;
    throw;
  }
}

/// Runs until cancelled, keeping the `cancelled` it saw.
task<void> wait_for_cancel(std::optional<corun::cancelled>& why) {
  try {
    co_await corun::this_task::sleep_forever();
  } catch (const corun::cancelled& c) {
    why = c;
    throw;
  }
}

}  // namespace

TEST_SUITE("lifecycle_link") {
  TEST_CASE("link: the producer fails, so the consumer waiting on the queue is cancelled") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      consumer_log log;
      int producer_error = -1;
      bool consumer_cancelled = false;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        corun::channel<int> queue(1);
        auto p = corun::spawn(producer(queue, 7, 100), {.name = "producer"});
        auto c = corun::spawn(consumer(queue, log, -1), {.name = "consumer"});
        corun::link(p, c);
        try {
          co_await p;
        } catch (const test_error& e) {
          producer_error = e.id();  // the failure still goes to whoever awaits the producer
        }
        try {
          co_await c;
        } catch (const corun::task_cancelled&) {
          consumer_cancelled = true;
        }
      }());
      CHECK(producer_error == 7);
      CHECK(consumer_cancelled);
      CHECK(log.got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
      REQUIRE(log.why.has_value());
      CHECK(contains(log.why->message(), "linked task #"));
      CHECK(contains(log.why->message(), "'producer' failed"));
    }
  }

  TEST_CASE("link: the consumer fails, so the producer blocked on a full queue is cancelled") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      consumer_log log;
      std::optional<corun::cancelled> producer_why;
      bool producer_cancelled = false;
      int consumer_error = -1;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        corun::channel<int> queue(1);
        auto p = corun::spawn({.name = "producer"}, [&]() -> task<void> {
          try {
            co_await producer(queue, -1, 1000);
          } catch (const corun::cancelled& why) {
            producer_why = why;
            throw;
          }
        });
        auto c = corun::spawn(consumer(queue, log, 3), {.name = "consumer"});
        corun::link(c, p);  // the order of the two does not matter
        try {
          co_await c;
        } catch (const test_error& e) {
          consumer_error = e.id();
        }
        try {
          co_await p;
        } catch (const corun::task_cancelled&) {
          producer_cancelled = true;
        }
      }());
      CHECK(consumer_error == 100);
      CHECK(producer_cancelled);
      REQUIRE(producer_why.has_value());
      CHECK(contains(producer_why->message(), "'consumer' failed"));
    }
  }

  TEST_CASE("link: a cancelled task cancels its partner") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      std::optional<corun::cancelled> why_a;
      std::optional<corun::cancelled> why_b;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        auto a = corun::spawn(wait_for_cancel(why_a), {.name = "a"});
        auto b = corun::spawn(wait_for_cancel(why_b), {.name = "b"});
        corun::link(a, b);
        co_await corun::sleep_for(1s);
        a.cancel("enough");
        corun::task_handle b_handle = b;
        co_await b_handle.wait();
        CHECK(b.cancelled());
      }());
      REQUIRE(why_a.has_value());
      REQUIRE(why_b.has_value());
      CHECK(why_a->message() == "enough");
      CHECK(contains(why_b->message(), "linked task #"));
      CHECK(contains(why_b->message(), "'a' was cancelled"));
    }
  }

  TEST_CASE("link: a normal return cancels nothing, and the link ends with it") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      consumer_log log;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        corun::channel<int> queue(8);
        corun::async_event go_on;
        auto p = corun::spawn(producer(queue, -1, 5), {.name = "producer"});
        auto c = corun::spawn({.name = "consumer"}, [&]() -> task<void> {
          co_await go_on.wait();  // still running after the producer returned
          co_await consumer(queue, log, -1);
        });
        corun::task_handle monitor = corun::link(p, c);
        co_await p;
        co_await monitor.wait();  // the monitor ended with the producer
        CHECK_FALSE(monitor.cancelled());
        CHECK_FALSE(c.done());
        go_on.set();
        co_await c;  // not cancelled: it drains the queue and ends normally
      }());
      CHECK(log.got == std::vector<int>{0, 1, 2, 3, 4});
      CHECK_FALSE(log.why.has_value());
    }
  }

  TEST_CASE("cancel_when_done: any completion of the source cancels the target, a return too") {
    for (const std::size_t workers : sweep) {
      CAPTURE(workers);
      std::optional<corun::cancelled> why;
      corun::runtime rt(with_virtual_time(workers));
      rt.block_on([&]() -> task<void> {
        auto source =
            corun::spawn({.name = "source"}, []() -> task<void> { co_await corun::sleep_for(2s); });
        auto target = corun::spawn(wait_for_cancel(why), {.name = "target"});
        const corun::time_point start = corun::now();
        corun::cancel_when_done(source, target);
        co_await source;
        corun::task_handle target_handle = target;
        co_await target_handle.wait();
        CHECK(target.cancelled());
        CHECK(corun::now() - start == 2s);
      }());
      REQUIRE(why.has_value());
      CHECK(contains(why->message(), "cancel_when_done: task #"));
      CHECK(contains(why->message(), "'source' returned"));
    }
  }

  TEST_CASE("cancel_when_done: a target that ends first ends the monitor, the source runs on") {
    std::optional<corun::cancelled> source_why;
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      auto source = corun::spawn(wait_for_cancel(source_why), {.name = "source"});
      auto target = corun::spawn([]() -> task<void> { co_await corun::sleep_for(1s); });
      corun::task_handle monitor = corun::cancel_when_done(source, target);
      co_await target;
      co_await monitor.wait();
      CHECK_FALSE(monitor.cancelled());
      co_await corun::sleep_for(1s);
      CHECK_FALSE(source.done());
      source.cancel("by the test");
      corun::task_handle source_handle = source;
      co_await source_handle.wait();
    }());
    REQUIRE(source_why.has_value());
    CHECK(source_why->message() == "by the test");
  }

  TEST_CASE("the monitor does not keep the linking task from completing") {
    std::optional<corun::cancelled> why_b;
    corun::runtime rt(with_virtual_time(2));
    std::optional<corun::cancelled> why_a;
    auto a = rt.spawn(wait_for_cancel(why_a), {.name = "a"});
    auto b = rt.spawn(wait_for_cancel(why_b), {.name = "b"});
    corun::task_handle monitor = rt.block_on([&]() -> task<corun::task_handle> {
      co_return corun::link(a, b);  // returns while both run
    }());
    CHECK_FALSE(monitor.done());
    a.cancel("from outside");
    CHECK(wait_until_done(b));
    CHECK(b.cancelled());
    CHECK(wait_until_done(monitor));
    REQUIRE(why_b.has_value());
    CHECK(contains(why_b->message(), "'a' was cancelled"));
  }

  TEST_CASE("link from outside a task, with the runtime") {
    std::optional<corun::cancelled> why_a;
    corun::runtime rt(with_virtual_time(2));
    auto a = rt.spawn(wait_for_cancel(why_a), {.name = "a"});
    auto b = rt.spawn([]() -> task<void> {
      co_await corun::sleep_for(1s);
      throw test_error(3);
    });
    corun::task_handle monitor = corun::link(rt, a, b);
    CHECK_THROWS_AS(b.get(), test_error);
    CHECK(wait_until_done(a));
    CHECK(a.cancelled());
    CHECK(wait_until_done(monitor));
    REQUIRE(why_a.has_value());
    CHECK(contains(why_a->message(), "failed"));
  }

  TEST_CASE("unlinking: a cancelled monitor leaves both tasks alone") {
    std::optional<corun::cancelled> why_b;
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      auto a = corun::spawn([]() -> task<void> {
        co_await corun::sleep_for(2s);
        throw test_error(1);
      });
      auto b = corun::spawn(wait_for_cancel(why_b), {.name = "b"});
      corun::task_handle monitor = corun::link(a, b);
      monitor.cancel("unlink");
      co_await monitor.wait();
      CHECK(monitor.cancelled());
      try {
        co_await a;
      } catch (const test_error&) {
      }
      co_await corun::sleep_for(1s);
      CHECK_FALSE(b.done());  // a failed, but the link was gone
      b.cancel("by the test");
      corun::task_handle b_handle = b;
      co_await b_handle.wait();
    }());
    REQUIRE(why_b.has_value());
    CHECK(why_b->message() == "by the test");
  }

  TEST_CASE("a link to a task that already failed cancels the partner at once") {
    std::optional<corun::cancelled> why_b;
    corun::runtime rt(with_virtual_time(2));
    rt.block_on([&]() -> task<void> {
      auto a = corun::spawn([]() -> task<void> {
        throw test_error(1);
        co_return;
      });
      corun::task_handle a_handle = a;
      co_await a_handle.wait();
      auto b = corun::spawn(wait_for_cancel(why_b), {.name = "b"});
      corun::link(a, b);
      corun::task_handle b_handle = b;
      co_await b_handle.wait();
      CHECK(b.cancelled());
      CHECK(a.failed());
      try {
        co_await a;  // the link did not take the failure
      } catch (const test_error&) {
      }
    }());
    CHECK(why_b.has_value());
  }

  TEST_CASE("a linked failure nobody awaits still reaches the parent") {
    corun::runtime rt(with_virtual_time(2));
    std::optional<corun::cancelled> why_b;
    auto body = [&]() -> task<void> {
      auto b = corun::spawn(wait_for_cancel(why_b), {.name = "b"});
      {
        auto a = corun::spawn([]() -> task<void> {
          co_await corun::sleep_for(1s);
          throw test_error(2);
        });
        corun::link(a, b);
      }  // a's handle dropped: its failure is the parent's
      corun::task_handle b_handle = b;
      co_await b_handle.wait();
    };
    CHECK_THROWS_AS(rt.block_on(body()), test_error);
    CHECK(why_b.has_value());
  }

  TEST_CASE("misuse: link of an empty handle, link outside a task") {
    corun::runtime rt(with_virtual_time(1));
    auto a = rt.spawn([]() -> task<void> { co_return; });
    CHECK_THROWS_AS(corun::link(rt, corun::task_handle(), a), std::logic_error);
    CHECK_THROWS_AS(corun::cancel_when_done(rt, a, corun::task_handle()), std::logic_error);
    CHECK_THROWS_AS(corun::link(a, a), std::logic_error);  // not inside a task
    a.get();
  }
}
