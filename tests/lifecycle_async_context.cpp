/// \file
/// `async_context`, `with` and `with_all` (aiotools' actxmgr and actxgroup): the order of setup,
/// body and teardown; the body's exception rethrown at `co_yield` and what the context does with
/// it (pass it on, swallow it, replace it); failing and misused contexts; cancellation before
/// entering and during the body (the teardown runs shielded); and `with_all`'s concurrent enter
/// and exit with its failures gathered, in both forms (variadic, and over a vector of contexts
/// known at run time). Time is virtual, so "concurrent" is checked exactly.
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corun::async_context;
using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t context_workers[] = {1, 2, 4};

/// What the contexts and bodies did, in order, from any worker.
class event_log {
 public:
  void add(std::string event) {
    const std::lock_guard<std::mutex> lock(m_lock);
    m_events.push_back(std::move(event));
  }
  [[nodiscard]] std::vector<std::string> events() const {
    const std::lock_guard<std::mutex> lock(m_lock);
    return m_events;
  }
  [[nodiscard]] bool has(const std::string& event) const {
    const std::lock_guard<std::mutex> lock(m_lock);
    for (const std::string& e : m_events) {
      if (e == event) {
        return true;
      }
    }
    return false;
  }

 private:
  mutable std::mutex m_lock;
  std::vector<std::string> m_events;
};

/// What a context does with the body's exception at `co_yield`.
enum class on_error : std::uint8_t { pass_on, swallow, replace };

/// A context around an int: sets it to `initial`, hands it over, and logs the value it finds at
/// the end (so the body's changes are seen by the teardown). Logs "<name>:caught <id>" when the
/// body's exception reaches it.
async_context<int> counter(event_log& log, std::string name, int initial,
                           on_error policy = on_error::pass_on) {
  log.add(name + ":setup");
  int value = initial;
  try {
    co_yield value;
  } catch (...) {
    log.add(name + ":caught " + std::to_string(test_error_id(std::current_exception())));
    if (policy == on_error::pass_on) {
      throw;
    }
    if (policy == on_error::replace) {
      throw test_error(100);
    }
  }
  log.add(name + ":teardown " + std::to_string(value));
}

/// Sleeps `setup` before yielding and `teardown` after (virtual time), logging both ends.
async_context<int> slow(event_log& log, std::string name, std::chrono::seconds setup,
                        std::chrono::seconds teardown, int value) {
  co_await corun::sleep_for(setup);
  log.add(name + ":entered");
  std::exception_ptr failed;
  try {
    co_yield value;
  } catch (...) {
    failed = std::current_exception();
    log.add(name + ":caught " + std::to_string(test_error_id(failed)));
  }
  co_await corun::sleep_for(teardown);  // shielded: runs to its end even when cancelled
  log.add(name + ":closed");
  if (failed) {
    std::rethrow_exception(failed);
  }
}

async_context<int> failing_setup(event_log& log, std::chrono::seconds after, int id) {
  co_await corun::sleep_for(after);
  log.add("failing:setup throws");
  throw test_error(id);
  co_yield id;  // never reached; makes this a context coroutine
}

async_context<int> failing_teardown(event_log& log, int id) {
  int value = id;
  try {
    co_yield value;
  } catch (...) {
    log.add("failing:caught " + std::to_string(test_error_id(std::current_exception())));
  }
  throw test_error(id);
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// Both forms of `with_all` with contexts "a" (enters at 1 s), a setup failing at 2 s with id 7
/// and "c" (enters at once): `make(log, body_ran)` returns the `with_all` task under test. The
/// body must not run, and the two entered contexts see the failure at `co_yield` and close.
template <class Make>
void check_failing_setup(Make make) {
  for (const std::size_t workers : context_workers) {
    CAPTURE(workers);
    corun::runtime rt(with_virtual_time(workers));
    event_log log;
    bool body_ran = false;
    try {
      rt.block_on(make(log, body_ran));
      FAIL("with_all returned");
    } catch (const corun::exception_group& group) {
      CHECK(member_ids(group) == std::multiset<int>{7});
    }
    CHECK_FALSE(body_ran);
    CHECK(log.has("a:caught 7"));
    CHECK(log.has("a:closed"));
    CHECK(log.has("c:caught 7"));
    CHECK_FALSE(log.has("c:teardown 3"));
  }
}

}  // namespace

TEST_SUITE("lifecycle_async_context") {
  TEST_CASE("with runs setup, body and teardown in order, sharing the yielded object") {
    corun::runtime rt(with_workers(1));
    event_log log;
    const int result = rt.block_on([&]() -> task<int> {
      // Named before co_await: see the README on g++ 12 and temporaries in co_await.
      task<int> run = corun::with(counter(log, "c", 5), [&](int& value) -> task<int> {
        log.add("body " + std::to_string(value));
        co_await corun::this_task::yield();
        value = 7;
        co_return value * 6;
      });
      co_return co_await std::move(run);
    }());
    CHECK(result == 42);
    CHECK(log.events() == std::vector<std::string>{"c:setup", "body 5", "c:teardown 7"});
  }

  TEST_CASE("an async_context<void> yields nothing and the body takes no argument") {
    corun::runtime rt(with_workers(2));
    event_log log;
    rt.block_on([&]() -> task<void> {
      auto scope = [&]() -> async_context<void> {
        log.add("open");
        co_yield {};
        co_await corun::this_task::yield();
        log.add("close");
      };
      task<void> run = corun::with(scope(), [&]() -> task<void> {
        log.add("body");
        co_return;
      });
      co_await std::move(run);
    }());
    CHECK(log.events() == std::vector<std::string>{"open", "body", "close"});
  }

  TEST_CASE("the body's exception is rethrown at co_yield and leaves with unless swallowed") {
    corun::runtime rt(with_workers(2));
    SUBCASE("passed on") {
      event_log log;
      CHECK_THROWS_AS(rt.block_on(corun::with(counter(log, "c", 1),
                                              [](int& /*value*/) -> task<void> {
                                                co_await corun::this_task::yield();
                                                throw test_error(1);
                                              })),
                      test_error);
      // The context saw the exception and did not reach its normal teardown.
      CHECK(log.events() == std::vector<std::string>{"c:setup", "c:caught 1"});
    }
    SUBCASE("swallowed by the context: a void body's with returns normally") {
      event_log log;
      rt.block_on(
          corun::with(counter(log, "c", 1, on_error::swallow), [](int& value) -> task<void> {
            value = 3;
            throw test_error(2);
            co_return;
          }));
      CHECK(log.events() == std::vector<std::string>{"c:setup", "c:caught 2", "c:teardown 3"});
    }
    SUBCASE("swallowed by the context: a body with a value has none, so its exception leaves") {
      event_log log;
      try {
        (void)rt.block_on(
            corun::with(counter(log, "c", 1, on_error::swallow), [](int& /*value*/) -> task<int> {
              throw test_error(3);
              co_return 0;
            }));
        FAIL("with returned a value its body never produced");
      } catch (const test_error& e) {
        CHECK(e.id() == 3);
      }
      CHECK(log.has("c:caught 3"));
    }
    SUBCASE("replaced by the context") {
      event_log log;
      try {
        rt.block_on(
            corun::with(counter(log, "c", 1, on_error::replace), [](int& /*value*/) -> task<void> {
              throw test_error(4);
              co_return;
            }));
        FAIL("with returned");
      } catch (const test_error& e) {
        CHECK(e.id() == 100);
      }
      CHECK(log.events() == std::vector<std::string>{"c:setup", "c:caught 4"});
    }
  }

  TEST_CASE("a teardown that throws after a body that returned fails with") {
    corun::runtime rt(with_workers(1));
    event_log log;
    bool body_ran = false;
    try {
      rt.block_on(corun::with(failing_teardown(log, 9), [&](int& value) -> task<void> {
        body_ran = value == 9;
        co_return;
      }));
      FAIL("with returned");
    } catch (const test_error& e) {
      CHECK(e.id() == 9);
    }
    CHECK(body_ran);
    CHECK_FALSE(log.has("failing:caught 9"));  // the body did not throw: nothing at co_yield
  }

  TEST_CASE("a setup that throws fails with before the body and the teardown") {
    corun::runtime rt(with_virtual_time(2));
    event_log log;
    bool body_ran = false;
    try {
      rt.block_on(corun::with(failing_setup(log, 1s, 5), [&](int& /*value*/) -> task<void> {
        body_ran = true;
        co_return;
      }));
      FAIL("with returned");
    } catch (const test_error& e) {
      CHECK(e.id() == 5);
    }
    CHECK_FALSE(body_ran);
    CHECK(log.events() == std::vector<std::string>{"failing:setup throws"});
  }

  TEST_CASE("misused contexts are logic errors: empty, no co_yield, two co_yields") {
    corun::runtime rt(with_workers(1));
    bool body_ran = false;
    auto body = [&]() -> task<void> {
      body_ran = true;
      co_return;
    };
    SUBCASE("empty") {
      CHECK_THROWS_AS(rt.block_on(corun::with(async_context<void>{}, body)), std::logic_error);
      async_context<void> moved = []() -> async_context<void> { co_yield {}; }();
      async_context<void> taker = std::move(moved);
      CHECK(taker.valid());
      CHECK_FALSE(moved.valid());  // NOLINT(bugprone-use-after-move): what is tested
      CHECK_THROWS_AS(rt.block_on(corun::with(std::move(moved), body)), std::logic_error);
    }
    SUBCASE("ends without co_yield: the body does not run") {
      auto never_yields = [](bool yield) -> async_context<void> {
        if (yield) {
          co_yield {};
        }
        co_return;
      };
      try {
        rt.block_on(corun::with(never_yields(false), body));
        FAIL("with returned");
      } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("without co_yield") != std::string::npos);
      }
      CHECK_FALSE(body_ran);
    }
    SUBCASE("yields twice: the teardown ends with a logic error, after the body") {
      event_log log;
      auto twice = [&]() -> async_context<void> {
        co_yield {};
        co_yield {};
        log.add("unreachable");
      };
      try {
        rt.block_on(corun::with(twice(), body));
        FAIL("with returned");
      } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("more than once") != std::string::npos);
      }
      CHECK(body_ran);
      CHECK(log.events().empty());
    }
  }

  TEST_CASE("a task cancelled before it enters a context does not run its setup") {
    for (const std::size_t workers : context_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      event_log log;
      std::atomic<bool> go{false};
      rt.block_on([&]() -> task<void> {
        corun::join_handle<void> user = corun::spawn([&]() -> task<void> {
          (void)co_await stubborn_until(go, 0);  // ignores the cancel, then enters
          task<void> run = corun::with(counter(log, "c", 1), [&](int& /*value*/) -> task<void> {
            log.add("body");
            co_return;
          });
          co_await std::move(run);
        });  // the callable form: spawn keeps the lambda (and its captures) alive
        user.cancel("stop");
        go.store(true, std::memory_order_release);
        CHECK_THROWS_AS(co_await std::move(user), corun::task_cancelled);
      }());
      CHECK(log.events().empty());
    }
  }

  TEST_CASE("a cancelled body still gets its whole teardown, awaits included (shielded)") {
    for (const std::size_t workers : context_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      event_log log;
      corun::async_event in_body;  // not a busy wait: virtual time moves only while all idle
      rt.block_on([&]() -> task<void> {
        const corun::time_point start = corun::now();
        corun::join_handle<void> user =
            corun::spawn(corun::with(slow(log, "s", 1s, 5s, 0), [&](int& /*value*/) -> task<void> {
              in_body.set();
              co_await corun::sleep_for(1h);
            }));
        co_await in_body.wait();
        user.cancel("shutdown");
        CHECK_THROWS_AS(co_await std::move(user), corun::task_cancelled);
        // The teardown's 5 s sleep ran to its end although its task was cancelled.
        CHECK(corun::now() - start == 6s);
      }());
      CHECK(log.events() == std::vector<std::string>{"s:entered", "s:caught -1", "s:closed"});
    }
  }

  TEST_CASE("a context that swallows the body's cancellation leaves the caller cancelled") {
    corun::runtime rt(with_workers(2));
    event_log log;
    std::atomic<bool> in_body{false};
    std::atomic<bool> after_with{false};
    rt.block_on([&]() -> task<void> {
      corun::join_handle<void> user = corun::spawn([&]() -> task<void> {
        task<void> run =
            corun::with(counter(log, "c", 1, on_error::swallow), [&](int&) -> task<void> {
              in_body.store(true, std::memory_order_release);
              co_await yield_forever();
            });
        co_await std::move(run);
        after_with.store(true, std::memory_order_release);
        co_await corun::this_task::yield();  // the caller's cancellation is seen here
        log.add("not reached");
      });
      co_await yield_until(in_body);
      user.cancel();
      CHECK_THROWS_AS(co_await std::move(user), corun::task_cancelled);
    }());
    CHECK(after_with.load());
    CHECK_FALSE(log.has("not reached"));
    CHECK(log.has("c:teardown 1"));
  }

  TEST_CASE("with_all enters and exits concurrently and hands every value to the body") {
    for (const std::size_t workers : context_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      event_log log;
      rt.block_on([&]() -> task<void> {
        const corun::time_point start = corun::now();
        task<int> run =
            corun::with_all(slow(log, "a", 3s, 2s, 1), slow(log, "b", 1s, 4s, 20),
                            counter(log, "c", 300), [&](int& a, int& b, int& c) -> task<int> {
                              // Entered together: as long as the slowest setup, not the sum of
                              // them.
                              CHECK(corun::now() - start == 3s);
                              co_return a + b + c;
                            });
        const int sum = co_await std::move(run);
        CHECK(sum == 321);
        // Exited together: the slowest teardown (4 s) after the 3 s of entering.
        CHECK(corun::now() - start == 7s);
      }());
      CHECK(sorted(log.events()) == sorted({"a:entered", "b:entered", "c:setup", "a:closed",
                                            "b:closed", "c:teardown 300"}));
    }
  }

  TEST_CASE("with_all: a failing setup tears down the entered contexts with its error") {
    check_failing_setup([](event_log& log, bool& body_ran) {
      return corun::with_all(slow(log, "a", 1s, 1s, 1), failing_setup(log, 2s, 7),
                             counter(log, "c", 3),
                             [ran = &body_ran](int&, int&, int&) -> task<void> {
                               *ran = true;
                               co_return;
                             });
    });
  }

  TEST_CASE("with_all: several failing setups are grouped, with teardown failures after them") {
    corun::runtime rt(with_virtual_time(2));
    event_log log;
    try {
      rt.block_on(corun::with_all(failing_setup(log, 1s, 1), failing_setup(log, 2s, 2),
                                  failing_teardown(log, 3),
                                  [&](int&, int&, int&) -> task<void> { co_return; }));
      FAIL("with_all returned");
    } catch (const corun::exception_group& group) {
      CHECK(member_ids(group) == std::multiset<int>{1, 2, 3});
    }
    // The entered context got both setup failures at once, as a group (id -1).
    CHECK(log.has("failing:caught -1"));
  }

  TEST_CASE("with_all cancelled while entering propagates the cancellation, not a group") {
    for (const std::size_t workers : context_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      event_log log;
      bool body_ran = false;
      rt.block_on([&]() -> task<void> {
        corun::join_handle<void> user = corun::spawn(corun::with_all(
            slow(log, "a", 10s, 1s, 1), slow(log, "b", 20s, 1s, 2), [&](int&, int&) -> task<void> {
              body_ran = true;
              co_return;
            }));
        co_await corun::sleep_for(5s);
        user.cancel("enough");
        CHECK_THROWS_AS(co_await std::move(user), corun::task_cancelled);
      }());
      CHECK_FALSE(body_ran);
      CHECK(log.events().empty());  // neither setup got past its sleep
    }
  }

  TEST_CASE("with_all: the body's exception and the teardowns' failures") {
    corun::runtime rt(with_workers(2));
    auto failing_body = [](int&, int&) -> task<void> {
      throw test_error(1);
      co_return;
    };
    SUBCASE("every context passes it on: it leaves with_all unchanged") {
      event_log log;
      CHECK_THROWS_AS(
          rt.block_on(corun::with_all(counter(log, "a", 0), counter(log, "b", 0), failing_body)),
          test_error);
      CHECK(log.has("a:caught 1"));
      CHECK(log.has("b:caught 1"));
    }
    SUBCASE("one context swallows it, the other passes it on: it leaves with_all") {
      event_log log;
      CHECK_THROWS_AS(rt.block_on(corun::with_all(counter(log, "a", 0, on_error::swallow),
                                                  counter(log, "b", 0), failing_body)),
                      test_error);
      CHECK(log.has("a:teardown 0"));
    }
    SUBCASE("every context swallows it: with_all returns (void body)") {
      event_log log;
      rt.block_on(corun::with_all(counter(log, "a", 0, on_error::swallow),
                                  counter(log, "b", 0, on_error::swallow), failing_body));
      CHECK(log.has("a:teardown 0"));
      CHECK(log.has("b:teardown 0"));
    }
    SUBCASE("every context swallows it: a body with a value still fails") {
      event_log log;
      CHECK_THROWS_AS((void)rt.block_on(corun::with_all(counter(log, "a", 0, on_error::swallow),
                                                        counter(log, "b", 0, on_error::swallow),
                                                        [](int&, int&) -> task<int> {
                                                          throw test_error(1);
                                                          co_return 0;
                                                        })),
                      test_error);
    }
    SUBCASE("one passes it on, one replaces it: a group of both, the body's first") {
      event_log log;
      try {
        rt.block_on(corun::with_all(counter(log, "a", 0), counter(log, "b", 0, on_error::replace),
                                    failing_body));
        FAIL("with_all returned");
      } catch (const corun::exception_group& group) {
        REQUIRE(group.exceptions().size() == 2);
        CHECK(test_error_id(group.exceptions()[0]) == 1);
        CHECK(test_error_id(group.exceptions()[1]) == 100);
      }
    }
    SUBCASE("the body returned, a teardown threw: a group of that failure") {
      event_log log;
      try {
        rt.block_on(corun::with_all(counter(log, "a", 0), failing_teardown(log, 8),
                                    [](int&, int&) -> task<void> { co_return; }));
        FAIL("with_all returned");
      } catch (const corun::exception_group& group) {
        CHECK(member_ids(group) == std::multiset<int>{8});
      }
      CHECK(log.has("a:teardown 0"));
    }
  }

  TEST_CASE("with_all over a vector: an empty one runs the body with no values at once") {
    corun::runtime rt(with_virtual_time(2));
    std::size_t seen = 99;
    const int result = rt.block_on([&]() -> task<int> {
      const corun::time_point start = corun::now();
      task<int> run = corun::with_all(std::vector<async_context<int>>{},
                                      [&](std::vector<std::reference_wrapper<int>>& values) {
                                        seen = values.size();
                                        return value_of(42);
                                      });
      const int value = co_await std::move(run);
      CHECK(corun::now() == start);
      co_return value;
    }());
    CHECK(result == 42);
    CHECK(seen == 0);
  }

  TEST_CASE("with_all over a vector enters and exits concurrently, values in the vector's order") {
    for (const std::size_t workers : context_workers) {
      CAPTURE(workers);
      corun::runtime rt(with_virtual_time(workers));
      event_log log;
      constexpr int count = 5;
      rt.block_on([&]() -> task<void> {
        // Context i: setup takes 5 - i s (the last one enters first), teardown 1 + i s.
        std::vector<async_context<int>> ctxs;
        for (int i = 0; i < count; ++i) {
          ctxs.push_back(slow(log, numbered_name("s", i), std::chrono::seconds(count - i),
                              std::chrono::seconds(1 + i), 10 * i));
        }
        const corun::time_point start = corun::now();
        task<int> run = corun::with_all(
            std::move(ctxs), [&](std::vector<std::reference_wrapper<int>>& values) -> task<int> {
              // Entered together: as long as the slowest setup (5 s), not the sum (15 s).
              CHECK(corun::now() - start == 5s);
              REQUIRE(values.size() == static_cast<std::size_t>(count));
              int sum = 0;
              for (int i = 0; i < count; ++i) {
                CHECK(values[static_cast<std::size_t>(i)].get() == 10 * i);  // in order
                sum += values[static_cast<std::size_t>(i)];
              }
              co_await corun::sleep_for(1s);
              co_return sum;
            });
        const int sum = co_await std::move(run);
        CHECK(sum == 100);
        // Exited together: the slowest teardown (5 s) after 5 s of entering and 1 s of body.
        CHECK(corun::now() - start == 11s);
      }());
      const std::vector<std::string> events = log.events();
      CHECK(events.size() == 2 * static_cast<std::size_t>(count));
      // Each at its own instant: the setups ended last to first, the teardowns first to last.
      for (int i = 0; i < count; ++i) {
        CHECK(events[static_cast<std::size_t>(i)] ==
              numbered_name("s", count - 1 - i) + ":entered");
        CHECK(events[static_cast<std::size_t>(count + i)] == numbered_name("s", i) + ":closed");
      }
    }
  }

  TEST_CASE("with_all over a vector: the body and the teardowns share the yielded objects") {
    corun::runtime rt(with_workers(2));
    event_log log;
    rt.block_on([&]() -> task<void> {
      std::vector<async_context<int>> ctxs;
      ctxs.push_back(counter(log, "a", 1));
      ctxs.push_back(counter(log, "b", 2));
      task<void> run = corun::with_all(
          std::move(ctxs), [](std::vector<std::reference_wrapper<int>>& values) -> task<void> {
            for (int& value : values) {
              value *= 10;
            }
            co_return;
          });
      co_await std::move(run);
    }());
    CHECK(log.has("a:teardown 10"));
    CHECK(log.has("b:teardown 20"));
  }

  TEST_CASE("with_all over a vector: a failing setup tears down the entered contexts") {
    check_failing_setup([](event_log& log, bool& body_ran) {
      std::vector<async_context<int>> ctxs;
      ctxs.push_back(slow(log, "a", 1s, 1s, 1));
      ctxs.push_back(failing_setup(log, 2s, 7));
      ctxs.push_back(counter(log, "c", 3));
      return corun::with_all(
          std::move(ctxs),
          [ran = &body_ran](std::vector<std::reference_wrapper<int>>&) -> task<void> {
            *ran = true;
            co_return;
          });
    });
  }

  TEST_CASE("with_all over a vector: the body's exception reaches every context and leaves") {
    corun::runtime rt(with_workers(2));
    SUBCASE("passed on by every context: unchanged") {
      event_log log;
      std::vector<async_context<int>> ctxs;
      for (const char* name : {"a", "b", "c"}) {
        ctxs.push_back(counter(log, name, 0));
      }
      CHECK_THROWS_AS(
          rt.block_on(corun::with_all(std::move(ctxs),
                                      [](std::vector<std::reference_wrapper<int>>&) -> task<void> {
                                        co_await corun::this_task::yield();
                                        throw test_error(1);
                                      })),
          test_error);
      CHECK(log.has("a:caught 1"));
      CHECK(log.has("b:caught 1"));
      CHECK(log.has("c:caught 1"));
    }
    SUBCASE("replaced by one context: a group of both, the body's first") {
      event_log log;
      std::vector<async_context<int>> ctxs;
      ctxs.push_back(counter(log, "a", 0));
      ctxs.push_back(counter(log, "b", 0, on_error::replace));
      try {
        rt.block_on(corun::with_all(std::move(ctxs),
                                    [](std::vector<std::reference_wrapper<int>>&) -> task<void> {
                                      throw test_error(1);
                                      co_return;
                                    }));
        FAIL("with_all returned");
      } catch (const corun::exception_group& group) {
        REQUIRE(group.exceptions().size() == 2);
        CHECK(test_error_id(group.exceptions()[0]) == 1);
        CHECK(test_error_id(group.exceptions()[1]) == 100);
      }
    }
  }

  TEST_CASE("with_all over a vector holding an empty context enters none of them") {
    corun::runtime rt(with_workers(1));
    event_log log;
    std::vector<async_context<int>> ctxs;
    ctxs.push_back(counter(log, "a", 0));
    ctxs.emplace_back();
    CHECK_THROWS_AS(
        rt.block_on(corun::with_all(
            std::move(ctxs),
            [](std::vector<std::reference_wrapper<int>>&) -> task<void> { co_return; })),
        std::logic_error);
    CHECK(log.events().empty());
  }
}
