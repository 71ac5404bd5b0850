/// \file
/// The rows of API.md section 2 (Cancellation) and section 3 (Structured concurrency), each
/// checked against the tests: what no other test checks directly is tested here.
///
/// Coverage (file: test case; "here:" = this file, suite "api_rows"; "seeds:" =
/// seeds_cancellation.cpp, suite "seeds"):
///
/// §2 `cancelled`
///   - thrown into a task at a suspension point: cancel_basics.cpp: "cancel makes the task see
///     cancelled at its next suspension point"; at a join: "cancel wakes a task suspended in a
///     join"; at yield/checkpoint: "checkpoint throws cancelled once the task is cancelled",
///     "co_await checkpoint throws cancelled too"; at sleep: cancel_tokens.cpp: "sleep_forever:
///     suspends until cancelled, then throws cancelled"; at a group join: group_task_group.cpp:
///     "task_group in a cancelled task cancels its children and join throws cancelled"; at a
///     lock, semaphore, event or channel: sync_async_mutex.cpp: "async_mutex: a cancelled waiter
///     throws cancelled and leaves the queue", sync_async_semaphore.cpp: "async_semaphore: a
///     cancelled waiter ...", sync_async_event.cpp: "async_event: a cancelled waiter ...",
///     sync_channel.cpp: "channel: a cancelled waiting sender ...", "... receiver ...".
///   - not a std::exception: cancel_basics.cpp: static_assert, "catch std::exception does not catch
///     cancelled"; here: "cancelled and task_cancelled: catch (const std::exception&) takes the
///     child's cancellation, not the task's own".
///   - carries message(): cancel_basics.cpp: "cancelled carries its message and copies cheaply".
///   - catching it without rethrowing ignores the request: cancel_basics.cpp: "a task that catches
///     cancelled and returns completes with its value", "a swallowed cancellation is raised again
///     at the next suspension point".
/// §2 `task_cancelled`
///   - derived from std::exception: cancel_basics.cpp: static_assert; here: the std::exception test
///     above.
///   - thrown to the awaiter of a task that ended cancelled: cancel_basics.cpp: "the awaiter of a
///     cancelled task gets task_cancelled"; seeds: "seed 003 cancel_me: ...".
///   - own cancellation as `cancelled`, a child's as `task_cancelled`: cancel_basics.cpp: "a
///     cancelled task awaiting a cancelled child sees its own cancelled", "cancelling a child does
///     not cancel its parent"; seeds: "seed 003 detect_cancel: ..." (three cases).
/// §2 `cancel_source`, `cancel_token`
///   - hierarchical, request_cancel(msg), cancel_requested(): cancel_tokens.cpp: "cancel_source:
///     request_cancel is kept once, with the first message", "cancel_source: a derived source is
///     cancelled with its parent, not the reverse", "cancel_token: a default token is never
///     cancelled".
///   - callback registration: cancel_tokens.cpp: the seven "cancel_callback: ..." cases.
///   - every task's token derives from its spawner's: cancel_tokens.cpp: "this_task::token is
///     cancelled with its task and fires callbacks", "this_task::token of a child is cancelled when
///     its parent is"; from its group's: here: "cancel_token: a group child's token is cancelled by
///     the group's cancel and by the group owner's"; sources derived from a task's token: here:
///     "cancel_token: a cancel_source derived from a task's token is cancelled with the task".
///   - a token keeps its node (and parents) alive: cancel_tokens.cpp: "cancel_source: a derived
///     token keeps its parent alive"; for a group child: here: "cancel_token: a group child's token
///     stays usable after its group is gone".
/// §2 `shield`
///   - immune to outside cancellation, children too: cancel_shield.cpp: "shield: the shielded task
///     finishes although its awaiter is cancelled", "shield: children of the shielded task are not
///     cancelled from outside"; seeds: "seed 003 shield: ...", "seed 003 shield yourself: ...".
///   - still cancellable by scopes opened inside it: cancel_shield.cpp: "shield: cancellation from
///     inside the shielded task still works" (a child's handle); here: "shield: groups and sources
///     opened inside the shielded task still cancel, the outside cancel does not reach them".
///   - value, failure, task_cancelled: cancel_shield.cpp: "shield: a failure of the shielded
///     task is rethrown"; here: "shield: the awaiter gets task_cancelled when the shielded task
///     ends cancelled".
/// §2 `cancel_and_await`
///   - cancels and waits; at once if done; only its own cancellation suppressed; the caller's
///     `cancelled` and other failures propagate: cancel_shield.cpp: the six "cancel_and_await:
///     ..." cases of a `join_handle` (an already failed task rethrows, an already cancelled one
///     returns quietly); here: "cancel_and_await: a task that ignores the cancel and returns a
///     value ends it quietly".
///   - the `(task_handle&)` overload: here: the three "cancel_and_await: a task_handle ..." cases
///     and "task_handle::wait: many waiters, ..."; cancel_shield.cpp: "cancel_and_await: a
///     task_handle whose task already failed rethrows the failure, ...".
/// §2 completion beats cancellation
///   - a delivered value is returned to a cancelled joiner: cancel_tokens.cpp: "a cancelled joiner
///     still gets a value that was already delivered"; seeds: "seed 003 wait(fut): ...".
///   - then `cancelled` at the next suspension point: here: "completion beats cancellation: the
///     joiner gets the value, then cancelled at its next suspension point".
///   - nothing is lost when the cancel races completion: seeds: "seed 003 wrapper_data: ...".
///   - task_group::start: here: "completion beats cancellation: start returns the started value to
///     a caller cancelled while it waited".
///   - channel recv / lock grant: sync_channel.cpp: "channel: a waiter the channel claimed
///     completes although cancelled at once"; sync_async_mutex.cpp: "async_mutex: a waiter
///     handed the lock as it is cancelled keeps the lock"; seeds: "seed 003 queue put race: ...";
///     stress: sync_channel_cancel.cpp, sync_lock_races.cpp.
/// §2 not-yet-started tasks
///   - cancel_basics.cpp: "a task cancelled before it first runs still starts and sees cancelled",
///     "a child cancelled before it first runs still starts and runs its handlers";
///     group_task_group .cpp: "task_group spawn into a cancelled group starts the child cancelled
///     and runs its cleanup"; seeds: "seed 004 differences with asyncio: ...".
/// §3 `task_group`
///   - spawn(task, opts), join(), size(): group_task_group.cpp: "task_group join waits for every
///     child and spawn returns working handles", "task_group size counts the children still
///     running"; spawn(options, fn, args...): here: "task_group: spawn with options and a callable
///     names the child and keeps its arguments".
///   - cancel(msg): group_task_group.cpp: "task_group children cancelled by the group do not appear
///     in join", "task_group spawn into a cancelled group ..." (message).
///   - fail-fast, join throws every non-cancellation failure: group_task_group.cpp: "task_group
///     cancels the other children when one fails", "task_group join throws an exception_group of
///     exactly the failures"; seeds: "seed 004 fail fast: ...", "seed 003 producer/consumer: in one
///     task group ..."; the siblings' provenance: here: "task_group: siblings cancelled by a
///     failure say which sibling failed".
///   - children cancelled by the group do not appear: group_task_group.cpp (above); children that
///     end cancelled on their own neither: here: "task_group: a child cancelled through its own
///     handle does not appear in join nor cancel its siblings".
///   - join waits for all even when the owner is cancelled: here: "task_group: join waits for
///     children that ignore their cancellation, then throws the owner's cancelled".
///   - spawning into a cancelled group / after join: group_task_group.cpp: "task_group spawn into a
///     cancelled group starts the child cancelled and runs its cleanup", "task_group spawn after
///     join throws logic_error".
///   - destroying an un-joined group: group_task_group.cpp: "task_group destroyed without join
///     cancels its children and the task waits for them", "... hands its children's failures to
///     its task", "... is logged on stderr in debug builds, ...".
/// §3 `with_task_group`
///   - group_task_group.cpp: the seven "with_task_group ..." cases; seeds: "seed 004 task group:
///     ...", "seed 003 cleanup on interrupt: ...".
/// §3 `task_group::start`
///   - value once started, child keeps running: group_task_group.cpp: "task_group start returns the
///     value passed to started while the child keeps running", "task_group start of void returns
///     once started is called"; seeds: "seed 004 start: the caller resumes once ...".
///   - failure before started goes to the caller: group_task_group.cpp: "task_group start throws a
///     failure before started to its caller, not to the group"; seeds: "seed 004 start: a failure
///     during initialisation ...".
///   - returning without started: group_task_group.cpp: "task_group start throws logic_error when
///     the task returns without started"; seeds: "seed 004 start: a task that never calls started
///     ...".
///   - ending cancelled before started: group_task_group.cpp: "task_group start of a child
///     cancelled before started throws task_cancelled"; with the caller cancelled: here:
///     "task_group::start: a caller cancelled while its child ends cancelled before started gets
///     its own cancelled".
/// §3 `exception_group`
///   - exceptions(), leaves(), split<E>(), split(pred), what(): errors_exception_group.cpp (the
///     eleven "exception_group: split..." cases), group_when_all.cpp: "exception_group flattens
///     nested groups in leaves and lists members in what"; a std::exception: here:
///     "exception_group: a task group's failures can be caught as a std::exception whose what()
///     lists them".
///   - catch_each: errors_exception_group.cpp (the six "exception_group: catch_each ..." cases);
///     seeds: "seed 004 multiple errors: ...".
/// §3 `task_local<T>`
///   - default, get, set, copied from the spawner: task_local.cpp (all six cases).
///   - the spawner's values, not the group host's: seeds: "seed 004 context propagation: ...";
///     with_task_group's body and start()'s function: here: "task_local: with_task_group's body and
///     start's function begin with the caller's values".
/// §3 `task_status<T>`
///   - started(value) / started(): group_task_group.cpp: the start cases above, "task_group start:
///     calling started twice throws logic_error in the child".
#include "support.hpp"

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

using corun::task;
using corun::task_group;
using corun::task_status;
using namespace corun_test;

namespace {

corun::task_local<std::string> g_caller_value{"unset"};

/// `cancel_and_await` can be called with a `Handle&`.
template <class Handle>
concept cancel_and_await_accepts = requires(Handle& handle) { corun::cancel_and_await(handle); };

static_assert(cancel_and_await_accepts<corun::join_handle<int>>);
/// Whether `cancel_and_await` takes a `task_handle&` too (API.md section 2).
constexpr bool cancel_and_await_takes_task_handle = cancel_and_await_accepts<corun::task_handle>;

}  // namespace

TEST_SUITE("api_rows") {
  TEST_CASE(
      "cancelled and task_cancelled: catch (const std::exception&) takes the child's "
      "cancellation, not the task's own") {
    std::atomic<bool> waiting{false};
    std::atomic<bool> child_caught_as_std{false};
    std::atomic<bool> own_caught_as_std{false};
    std::atomic<bool> own_reached_outer{false};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([&]() -> task<void> {
      auto child = corun::spawn(yield_forever());
      child.cancel("child only");
      try {
        co_await child;
      } catch (const std::exception&) {
        child_caught_as_std = true;  // task_cancelled
      }
      try {
        try {
          waiting = true;
          co_await corun::this_task::sleep_forever();
        } catch (const std::exception&) {
          own_caught_as_std = true;
        }
      } catch (const corun::cancelled&) {
        own_reached_outer = true;
        throw;
      }
    });
    REQUIRE(wait_until_set(waiting));
    h.cancel("the task itself");
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(child_caught_as_std.load());
    CHECK_FALSE(own_caught_as_std.load());
    CHECK(own_reached_outer.load());
  }

  TEST_CASE(
      "cancel_token: a cancel_source derived from a task's token is cancelled with the task") {
    std::atomic<bool> ready{false};
    std::optional<corun::cancel_source> derived;
    std::optional<corun::cancel_source> independent;
    std::atomic<bool> ready2{false};
    std::optional<corun::cancel_source> derived2;
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([&]() -> task<void> {
      derived.emplace(corun::this_task::token());
      independent.emplace();
      // Cancelling the derived source does not cancel the task (the reverse direction).
      CHECK(derived->request_cancel("source only") == true);
      corun::this_task::checkpoint();
      ready = true;
      co_await corun::this_task::sleep_forever();
    });
    REQUIRE(wait_until_set(ready));
    h.cancel("task");
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    REQUIRE(derived.has_value());
    CHECK(derived->cancel_requested());
    CHECK(*derived->token().reason() == "source only");  // its own request came first
    CHECK_FALSE(independent->cancel_requested());

    // A second source, derived while the task runs, is cancelled by the task's cancellation.
    auto h2 = rt.spawn([&]() -> task<void> {
      derived2.emplace(corun::this_task::token());
      ready2 = true;
      co_await corun::this_task::sleep_forever();
    });
    REQUIRE(wait_until_set(ready2));
    CHECK_FALSE(derived2->cancel_requested());
    h2.cancel("task 2");
    CHECK_THROWS_AS(h2.get(), corun::task_cancelled);
    CHECK(derived2->cancel_requested());
    CHECK(*derived2->token().reason() == "task 2");
    derived.reset();
    derived2.reset();
    independent.reset();
  }

  // The tokens are read while their group still exists; the next case reads one after.
  TEST_CASE(
      "cancel_token: a group child's token is cancelled by the group's cancel and by the "
      "group owner's") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> ready{false};
      std::atomic<bool> child_ready{false};
      std::optional<corun::cancel_token> by_group;
      std::optional<corun::cancel_token> by_owner;
      bool clean_before = false;
      bool group_cancelled_it = false;
      std::string group_reason;
      std::atomic<bool> owner_cancelled_it{false};
      std::string owner_reason;
      corun::runtime rt(with_workers(workers));
      // The group's cancel.
      rt.block_on([&]() -> task<void> {
        task_group g;
        (void)g.spawn([&]() -> task<void> {
          by_group = corun::this_task::token();
          child_ready = true;
          co_await corun::this_task::sleep_forever();
        });
        co_await yield_until(child_ready);
        clean_before = !by_group->cancel_requested();
        g.cancel("group");
        co_await g.join();
        group_cancelled_it = by_group->cancel_requested();
        group_reason = by_group->reason().value_or("");
        by_group.reset();
      }());
      CHECK(clean_before);
      CHECK(group_cancelled_it);
      CHECK(group_reason == "group");
      // The owner's cancellation.
      auto owner = rt.spawn([&]() -> task<void> {
        task_group g;
        (void)g.spawn([&]() -> task<void> {
          by_owner = corun::this_task::token();
          ready = true;
          co_await corun::this_task::sleep_forever();
        });
        try {
          co_await g.join();
        } catch (const corun::cancelled&) {
          owner_cancelled_it = by_owner->cancel_requested();
          owner_reason = by_owner->reason().value_or("");
          by_owner.reset();
          throw;
        }
      });
      REQUIRE(wait_until_set(ready));
      CHECK_FALSE(by_owner->cancel_requested());
      owner.cancel("owner");
      CHECK_THROWS_AS(owner.get(), corun::task_cancelled);
      CHECK(owner_cancelled_it.load());
      CHECK(owner_reason == "owner");
    }
  }

  TEST_CASE("cancel_token: a group child's token stays usable after its group is gone") {
    std::optional<corun::cancel_token> token;
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      task_group g;
      (void)g.spawn([&]() -> task<void> {
        token = corun::this_task::token();
        co_return;
      });
      co_await g.join();
    }());
    REQUIRE(token.has_value());
    CHECK_FALSE(token->cancel_requested());
    token.reset();
  }

  TEST_CASE(
      "shield: groups and sources opened inside the shielded task still cancel, the outside "
      "cancel does not reach them") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> inside{false};
      std::atomic<bool> release{false};
      std::atomic<bool> token_clean{false};
      std::atomic<bool> source_clean{false};
      std::atomic<bool> group_child_cancelled{false};
      std::atomic<bool> source_follows_own_request{false};
      corun::runtime rt(with_workers(workers));
      auto outer = rt.spawn([&]() -> task<void> {
        co_await corun::shield([&]() -> task<void> {
          corun::cancel_source source(corun::this_task::token());
          inside = true;
          co_await yield_until(release);  // the outside cancel lands meanwhile
          token_clean = !corun::this_task::token().cancel_requested();
          source_clean = !source.cancel_requested();
          task_group g;
          (void)g.spawn([&]() -> task<void> {
            try {
              co_await corun::this_task::sleep_forever();
            } catch (const corun::cancelled& c) {
              group_child_cancelled = c.message() == "inner group";
              throw;
            }
          });
          co_await corun::this_task::yield();
          g.cancel("inner group");
          co_await g.join();
          source.request_cancel("inner source");
          source_follows_own_request = source.cancel_requested();
        }());
      });
      REQUIRE(wait_until_set(inside));
      outer.cancel("outside");
      release = true;
      CHECK_NOTHROW(outer.get());  // no suspension point after the shield: it completes
      CHECK(token_clean.load());
      CHECK(source_clean.load());
      CHECK(group_child_cancelled.load());
      CHECK(source_follows_own_request.load());
    }
  }

  TEST_CASE("shield: the awaiter gets task_cancelled when the shielded task ends cancelled") {
    corun::runtime rt(with_workers(2));
    const bool got_task_cancelled = rt.block_on([]() -> task<bool> {
      try {
        co_await corun::shield([]() -> task<void> {
          co_await corun::this_task::yield();
          throw corun::cancelled("gave up on its own");
        }());
      } catch (const corun::task_cancelled& e) {
        co_return std::string(e.what()).find("gave up on its own") != std::string::npos;
      }
      co_return false;
    }());
    CHECK(got_task_cancelled);
  }

  TEST_CASE(
      "cancel_and_await: a task that ignores the cancel and returns a value ends it quietly") {
    std::atomic<bool> started{false};
    std::atomic<bool> ignored{false};
    corun::runtime rt(with_workers(2));
    const bool quiet = rt.block_on([&]() -> task<bool> {
      auto stubborn = corun::spawn([&]() -> task<int> {
        started = true;
        try {
          co_await corun::this_task::sleep_forever();
        } catch (const corun::cancelled&) {
          ignored = true;
        }
        co_return 3;
      });
      co_await yield_until(started);
      co_await corun::cancel_and_await(stubborn);  // the value is discarded, nothing thrown
      co_return stubborn.done() && !stubborn.cancelled() && !stubborn.failed();
    }());
    CHECK(quiet);
    CHECK(ignored.load());
  }

  TEST_CASE("cancel_and_await: a task_handle overload, with several callers waiting at once") {
    static_assert(cancel_and_await_takes_task_handle);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> started{false};
      std::atomic<bool> cleanup_ran{false};
      std::atomic<int> returned{0};
      corun::runtime rt(with_workers(workers));
      auto target = rt.spawn([&]() -> task<void> {
        try {
          started.store(true);
          co_await corun::this_task::sleep_forever();
        } catch (const corun::cancelled&) {
          cleanup_ran.store(true);
          throw;
        }
      });
      const corun::task_handle shared = target;
      REQUIRE(wait_until_set(started));
      // Three tasks cancel and await the same task through copies of one handle; none of them
      // sees the cancellation it asked for, and each returns only once the target ended.
      std::vector<corun::join_handle<void>> callers;
      for (int i = 0; i < 3; ++i) {
        callers.push_back(rt.spawn([&, copy = shared]() mutable -> task<void> {
          co_await corun::cancel_and_await(copy);
          CHECK(copy.done());
          CHECK(cleanup_ran.load());
          returned.fetch_add(1);
        }));
      }
      for (auto& c : callers) {
        c.get();
      }
      CHECK(returned.load() == 3);
      CHECK(target.cancelled());
    }
  }

  TEST_CASE("cancel_and_await: a task_handle whose task failed rethrows the failure") {
    std::atomic<bool> go{false};
    corun::runtime rt(with_workers(2));
    auto failing = rt.spawn([&]() -> task<void> {
      // Ignores cancellation and fails once released.
      co_await stubborn_until(go, 0);
      throw test_error(9);
    });
    corun::task_handle handle = failing;
    auto caller = rt.spawn([&]() -> task<int> {
      try {
        co_await corun::cancel_and_await(handle);
      } catch (const test_error& e) {
        co_return e.id();
      }
      co_return -1;
    });
    go.store(true);
    CHECK(caller.get() == 9);
  }

  TEST_CASE("cancel_and_await: a task_handle waiter that is cancelled itself gets its own cancel") {
    std::atomic<bool> waiting{false};
    std::atomic<bool> release{false};
    std::string own_reason;
    corun::runtime rt(with_workers(2));
    auto stubborn = rt.spawn(stubborn_until(release, 1));
    corun::task_handle handle = stubborn;
    auto caller = rt.spawn([&]() -> task<void> {
      waiting.store(true);
      try {
        co_await corun::cancel_and_await(handle);
      } catch (const corun::cancelled& c) {
        own_reason = c.message();
        throw;
      }
    });
    REQUIRE(wait_until_set(waiting));
    caller.cancel("caller goes away");
    CHECK(wait_until_done(caller));
    CHECK_THROWS_AS(caller.get(), corun::task_cancelled);
    CHECK(own_reason == "caller goes away");
    CHECK_FALSE(stubborn.done());  // the caller did not wait for it once cancelled
    release.store(true);
    CHECK(stubborn.get() == 1);
  }

  TEST_CASE("task_handle::wait: many waiters, completion racing the waits, nothing lost") {
    const int rounds = static_cast<int>(scaled(300, 30));
    for (int round = 0; round < rounds; ++round) {
      CAPTURE(round);
      std::atomic<int> woke{0};
      std::atomic<bool> go{false};
      corun::runtime rt(with_workers(2));
      auto target = rt.spawn([&]() -> task<int> {
        co_await yield_until(go);
        co_return 5;
      });
      const corun::task_handle handle = target;
      std::vector<corun::join_handle<void>> waiters;
      for (int i = 0; i < 6; ++i) {
        waiters.push_back(rt.spawn([&, copy = handle]() -> task<void> {
          co_await copy.wait();
          CHECK(copy.done());
          woke.fetch_add(1);
        }));
        if (i == 2) {
          go.store(true);  // the target completes while the others are still arriving
        }
      }
      for (auto& w : waiters) {
        w.get();
      }
      CHECK(woke.load() == 6);
      CHECK(target.get() == 5);  // wait() did not take the result
    }
  }

  TEST_CASE(
      "completion beats cancellation: the joiner gets the value, then cancelled at its next "
      "suspension point") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> child_done{false};
      std::atomic<bool> cancelled_now{false};
      std::atomic<int> value{0};
      std::atomic<bool> then_cancelled{false};
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn([&]() -> task<void> {
        auto child = corun::spawn(value_of(5));
        while (!child.done()) {
          co_await corun::this_task::yield();
        }
        child_done = true;
        CHECK(wait_until_set(cancelled_now));  // no suspension point: the cancel lands here
        value = co_await child;
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          then_cancelled = true;
          throw;
        }
      });
      REQUIRE(wait_until_set(child_done));
      h.cancel();
      cancelled_now = true;
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(value.load() == 5);
      CHECK(then_cancelled.load());
    }
  }

  TEST_CASE(
      "completion beats cancellation: start returns the started value to a caller "
      "cancelled while it waited") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> child_waiting{false};
      std::atomic<int> got{0};
      std::atomic<bool> join_cancelled{false};
      corun::runtime rt(with_workers(workers));
      auto caller = rt.spawn([&]() -> task<void> {
        task_group g;
        auto fn = [&](task_status<int>& status) -> task<void> {
          try {
            child_waiting = true;
            co_await corun::this_task::sleep_forever();  // cancelled with the caller
          } catch (const corun::cancelled&) {
          }
          status.started(7);  // completes the start although both are cancelled
        };
        got = co_await g.start<int>(fn);
        try {
          co_await g.join();
        } catch (const corun::cancelled&) {
          join_cancelled = true;
          throw;
        }
      });
      REQUIRE(wait_until_set(child_waiting));
      caller.cancel("caller");
      CHECK_THROWS_AS(caller.get(), corun::task_cancelled);
      CHECK(got.load() == 7);
      CHECK(join_cancelled.load());
    }
  }

  TEST_CASE(
      "task_group::start: a caller cancelled while its child ends cancelled before started "
      "gets its own cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> child_waiting{false};
      std::atomic<int> saw{0};  // 1: cancelled (own), 2: task_cancelled, 3: a value
      std::string message;
      corun::runtime rt(with_workers(workers));
      auto caller = rt.spawn([&]() -> task<void> {
        task_group g;
        auto fn = [&](task_status<int>& status) -> task<void> {
          child_waiting = true;
          co_await corun::this_task::sleep_forever();
          status.started(1);
        };
        try {
          (void)co_await g.start<int>(fn);
          saw = 3;
        } catch (const corun::task_cancelled&) {
          saw = 2;
        } catch (const corun::cancelled& c) {
          saw = 1;
          message = c.message();
        }
        co_await g.join();
      });
      REQUIRE(wait_until_set(child_waiting));
      caller.cancel("caller stops");
      CHECK_THROWS_AS(caller.get(), corun::task_cancelled);
      CHECK(saw.load() == 1);
      CHECK(message == "caller stops");
    }
  }

  TEST_CASE(
      "task_group: a child cancelled through its own handle does not appear in join nor "
      "cancel its siblings") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> sibling_finished{false};
      bool join_quiet = false;
      bool victim_cancelled = false;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        task_group g;
        auto victim = g.spawn([]() -> task<void> { co_await corun::this_task::sleep_forever(); });
        (void)g.spawn([&]() -> task<void> {
          co_await yield_times(20);
          sibling_finished = true;
        });
        victim.cancel("just the victim");
        co_await g.join();
        join_quiet = true;
        victim_cancelled = victim.cancelled();
      }());
      CHECK(join_quiet);
      CHECK(victim_cancelled);
      CHECK(sibling_finished.load());
    }
  }

  TEST_CASE(
      "task_group: join waits for children that ignore their cancellation, then throws the "
      "owner's cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> inside{false};
      std::atomic<bool> child_finished{false};
      std::atomic<bool> finished_before_join_returned{false};
      std::atomic<int> saw{0};  // 1: cancelled, 2: something else
      corun::runtime rt(with_workers(workers));
      auto owner = rt.spawn([&]() -> task<void> {
        task_group g;
        (void)g.spawn([&]() -> task<void> {
          inside = true;
          try {
            co_await corun::this_task::sleep_forever();
          } catch (const corun::cancelled&) {
          }
          for (int i = 0; i < 50; ++i) {  // goes on after its cancellation: no suspension point
            std::this_thread::yield();
          }
          child_finished = true;
        });
        try {
          co_await g.join();
          saw = 2;
        } catch (const corun::cancelled&) {
          saw = 1;
          finished_before_join_returned = child_finished.load();
          throw;
        }
      });
      REQUIRE(wait_until_set(inside));
      owner.cancel("owner");
      CHECK_THROWS_AS(owner.get(), corun::task_cancelled);
      CHECK(saw.load() == 1);
      CHECK(finished_before_join_returned.load());
    }
  }

  TEST_CASE(
      "task_group: spawn with options and a callable names the child and keeps its "
      "arguments") {
    std::string name;
    int value = 0;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      task_group g;
      auto h = g.spawn(
          corun::spawn_options{.name = "adder"},
          [](std::string text, int n) -> task<int> {
            co_await corun::this_task::yield();  // the arguments outlive the spawn call
            co_return static_cast<int>(text.size()) + n;
          },
          std::string("four"), 3);
      name = h.name();
      value = co_await h;
      co_await g.join();
    }());
    CHECK(name == "adder");
    CHECK(value == 7);
  }

  TEST_CASE("task_group: siblings cancelled by a failure say which sibling failed") {
    std::atomic<bool> waiting{false};
    std::optional<corun::cancelled> seen;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      task_group g;
      (void)g.spawn([&]() -> task<void> {
        waiting = true;
        try {
          co_await corun::this_task::sleep_forever();
        } catch (const corun::cancelled& c) {
          seen = c;
          throw;
        }
      });
      (void)g.spawn(corun::spawn_options{.name = "db-writer"}, [&]() -> task<void> {
        co_await yield_until(waiting);
        throw std::runtime_error("disk full");
      });
      try {
        co_await g.join();
      } catch (const corun::exception_group&) {
      }
    }());
    REQUIRE(seen.has_value());
    CHECK(seen->origin() == corun::cancel_origin::sibling_failed);
    CHECK(seen->culprit().find("'db-writer'") != std::string::npos);
    CHECK(seen->describe().find("cancelled because sibling task #") == 0);
    CHECK(seen->describe().find("'db-writer' failed: disk full") != std::string::npos);
  }

  TEST_CASE(
      "exception_group: a task group's failures can be caught as a std::exception whose "
      "what() lists them") {
    std::string what;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      try {
        task_group g;
        (void)g.spawn(fail_after(0, 11));
        (void)g.spawn(fail_after(0, 12));
        co_await g.join();
      } catch (const std::exception& e) {
        what = e.what();
      }
    }());
    CHECK(what.find("test_error 11") != std::string::npos);
    CHECK(what.find("test_error 12") != std::string::npos);
  }

  TEST_CASE(
      "task_local: with_task_group's body and start's function begin with the caller's "
      "values") {
    std::string in_body;
    std::string in_start;
    std::string caller_after;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      g_caller_value.set("caller");
      co_await corun::with_task_group([&](task_group&) -> task<void> {
        in_body = g_caller_value.get();
        g_caller_value.set("body");  // the body's own copy
        co_return;
      });
      task_group g;
      auto report = [](task_status<std::string>& status) -> task<void> {
        status.started(g_caller_value.get());
        co_return;
      };
      in_start = co_await g.start<std::string>(report);
      co_await g.join();
      caller_after = g_caller_value.get();
    }());
    CHECK(in_body == "caller");
    CHECK(in_start == "caller");
    CHECK(caller_after == "caller");
  }
}
