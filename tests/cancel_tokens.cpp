/// \file
/// `cancel_source`, `cancel_token`, `cancel_callback`, `this_task::token()`, and the cancel
/// wake-ups of suspended joins.
#include "support.hpp"

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

TEST_SUITE("cancel_tokens") {
  TEST_CASE("cancel_source: request_cancel is kept once, with the first message") {
    corun::cancel_source source;
    CHECK_FALSE(source.cancel_requested());
    CHECK_FALSE(source.token().reason().has_value());
    CHECK(source.request_cancel("first"));
    CHECK_FALSE(source.request_cancel("second"));
    CHECK(source.cancel_requested());
    CHECK(source.token().cancel_requested());
    REQUIRE(source.token().reason().has_value());
    CHECK(*source.token().reason() == "first");
  }

  TEST_CASE("cancel_token: a default token is never cancelled") {
    const corun::cancel_token token;
    CHECK_FALSE(token.can_be_cancelled());
    CHECK_FALSE(token.cancel_requested());
    CHECK_FALSE(token.reason().has_value());
    int calls = 0;
    {
      const corun::cancel_callback callback(token, [&]() noexcept { ++calls; });
    }
    CHECK(calls == 0);
  }

  TEST_CASE("cancel_source: a derived source is cancelled with its parent, not the reverse") {
    corun::cancel_source parent;
    corun::cancel_source child(parent.token());
    corun::cancel_source grandchild(child.token());
    CHECK(grandchild.request_cancel("only me"));
    CHECK(grandchild.cancel_requested());
    CHECK_FALSE(child.cancel_requested());
    CHECK_FALSE(parent.cancel_requested());

    corun::cancel_source other(parent.token());
    CHECK(parent.request_cancel("parent"));
    CHECK(child.cancel_requested());
    CHECK(other.cancel_requested());
    CHECK(*other.token().reason() == "parent");
    CHECK(*grandchild.token().reason() == "only me");  // its own request came first
  }

  TEST_CASE("cancel_source: a derived token keeps its parent alive") {
    std::optional<corun::cancel_source> parent(std::in_place);
    corun::cancel_source child(parent->token());
    const corun::cancel_token parent_token = parent->token();
    parent.reset();  // the child still refers to the parent's node
    CHECK_FALSE(child.cancel_requested());
    CHECK(parent_token.can_be_cancelled());
    CHECK_FALSE(parent_token.cancel_requested());
  }

  TEST_CASE("cancel_callback: runs once, on the cancelling thread") {
    corun::cancel_source source;
    std::atomic<int> calls{0};
    std::thread::id ran_on;
    const corun::cancel_callback callback(source.token(), [&]() noexcept {
      calls.fetch_add(1);
      ran_on = std::this_thread::get_id();
    });
    CHECK(calls.load() == 0);
    std::thread canceller([&] { source.request_cancel("go"); });
    const std::thread::id canceller_id = canceller.get_id();
    canceller.join();
    CHECK(calls.load() == 1);
    CHECK(ran_on == canceller_id);
    source.request_cancel("again");
    CHECK(calls.load() == 1);
  }

  TEST_CASE("cancel_callback: runs at once, inline, on an already cancelled token") {
    corun::cancel_source source;
    source.request_cancel();
    int calls = 0;
    const corun::cancel_callback callback(source.token(), [&]() noexcept { ++calls; });
    CHECK(calls == 1);
  }

  TEST_CASE("cancel_callback: a deregistered callback never runs") {
    corun::cancel_source source;
    int calls = 0;
    {
      const corun::cancel_callback callback(source.token(), [&]() noexcept { ++calls; });
    }
    source.request_cancel();
    CHECK(calls == 0);
  }

  TEST_CASE("cancel_callback: fires for a cancel of an ancestor") {
    corun::cancel_source parent;
    const corun::cancel_source child(parent.token());
    int calls = 0;
    const corun::cancel_callback callback(child.token(), [&]() noexcept { ++calls; });
    parent.request_cancel();
    CHECK(calls == 1);
  }

  TEST_CASE("cancel_callback: all callbacks of a request run, also on other threads' shards") {
    corun::cancel_source source;
    std::atomic<int> calls{0};
    std::vector<std::thread> registrants;
    std::atomic<int> registered{0};
    std::atomic<bool> done{false};
    for (int t = 0; t < 6; ++t) {
      registrants.emplace_back([&] {
        const corun::cancel_callback callback(source.token(),
                                              [&]() noexcept { calls.fetch_add(1); });
        registered.fetch_add(1);
        wait_for_flag(done);
      });
    }
    while (registered.load() < 6) {
      std::this_thread::yield();
    }
    source.request_cancel();
    CHECK(calls.load() == 6);
    done.store(true);
    for (std::thread& t : registrants) {
      t.join();
    }
  }

  TEST_CASE("cancel_callback: destroying it from inside its own function does not wait") {
    corun::cancel_source source;
    std::optional<corun::cancel_callback<std::function<void()>>> callback;
    bool ran = false;
    callback.emplace(source.token(), std::function<void()>([&] {
                       ran = true;
                       callback.reset();  // deregistration from inside: must not self-deadlock
                     }));
    source.request_cancel();
    CHECK(ran);
    CHECK_FALSE(callback.has_value());
  }

  TEST_CASE("cancel_callback: destruction on another thread waits for the running function") {
    corun::cancel_source source;
    std::atomic<bool> entered{false};
    std::atomic<bool> release{false};
    std::atomic<bool> finished{false};
    auto* callback = new corun::cancel_callback(source.token(), [&]() noexcept {
      entered.store(true);
      wait_for_flag(release);
      finished.store(true);
    });
    std::thread canceller([&] { source.request_cancel(); });
    wait_for_flag(entered);
    std::atomic<bool> destroying{false};
    std::atomic<bool> saw_finished{false};
    std::thread destroyer([&] {
      destroying.store(true);
      delete callback;  // must wait for the function, which waits for `release`
      saw_finished.store(finished.load());
    });
    wait_for_flag(destroying);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let it reach the wait
    release.store(true);
    destroyer.join();
    canceller.join();
    CHECK(saw_finished.load());
  }

  TEST_CASE("this_task::token is cancelled with its task and fires callbacks") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> armed{false};
      std::atomic<int> fired{0};
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn(
          [](std::atomic<bool>& a, std::atomic<int>& f) -> task<bool> {
            const corun::cancel_token token = corun::this_task::token();
            CHECK(token.can_be_cancelled());
            CHECK_FALSE(token.cancel_requested());
            const corun::cancel_callback callback(token, [&f]() noexcept { f.fetch_add(1); });
            a.store(true);
            co_await yield_forever();  // ends with `cancelled`
            co_return token.cancel_requested();
          },
          std::ref(armed), std::ref(fired));
      wait_for_flag(armed);
      h.cancel("stop");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(fired.load() == 1);
    }
  }

  TEST_CASE("this_task::token of a child is cancelled when its parent is") {
    std::atomic<bool> ready{false};
    corun::runtime rt(with_workers(2));
    std::optional<corun::cancel_token> child_token;
    auto h = rt.spawn(
        [](std::atomic<bool>& r, std::optional<corun::cancel_token>& out) -> task<void> {
          auto child = corun::spawn(
              [](std::atomic<bool>& r2, std::optional<corun::cancel_token>& out2) -> task<void> {
                out2 = corun::this_task::token();
                r2.store(true);
                co_await yield_forever();
              },
              std::ref(r), std::ref(out));
          co_await child;
        },
        std::ref(ready), std::ref(child_token));
    wait_for_flag(ready);
    CHECK_FALSE(child_token->cancel_requested());
    h.cancel("parent stops");
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(child_token->cancel_requested());
    CHECK(*child_token->reason() == "parent stops");
    child_token.reset();  // the last reference to the child's node
  }

  TEST_CASE("cancel wakes a task joining a task that is not its child") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> release{false};
      std::atomic<bool> joining{false};
      corun::runtime rt(with_workers(workers));
      auto target = rt.spawn(stubborn_until(release, 7));
      auto joiner = rt.spawn(
          [](corun::join_handle<int> t, std::atomic<bool>& j) -> task<int> {
            j.store(true);
            co_return co_await t;  // `t` ignores cancellation and is not our child
          },
          std::move(target), std::ref(joining));
      wait_for_flag(joining);
      joiner.cancel("enough");
      CHECK_THROWS_AS(joiner.get(), corun::task_cancelled);
      CHECK_FALSE(release.load());  // the joiner left while the target still ran
      release.store(true);
    }
  }

  TEST_CASE("a cancelled joiner still gets a value that was already delivered") {
    std::atomic<bool> child_done{false};
    std::atomic<bool> was_cancelled{false};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(
        [](std::atomic<bool>& done, std::atomic<bool>& cancelled_now) -> task<int> {
          auto child = corun::spawn(value_of(5));
          while (!child.done()) {
            co_await corun::this_task::yield();
          }
          done.store(true);
          wait_for_flag(cancelled_now);  // no suspension point: the cancel lands meanwhile
          co_return co_await child;      // completion beats cancellation: 5, not `cancelled`
        },
        std::ref(child_done), std::ref(was_cancelled));
    wait_for_flag(child_done);
    h.cancel();
    was_cancelled.store(true);
    CHECK(h.get() == 5);
  }

  TEST_CASE("a joiner cancelled while its inline child ignores cancellation is woken") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> release{false};
      std::atomic<bool> joining{false};
      std::atomic<bool> woke{false};
      corun::runtime rt(with_workers(workers));
      auto parent = rt.spawn(
          [](std::atomic<bool>& r, std::atomic<bool>& j, std::atomic<bool>& w) -> task<int> {
            // Spawned last, so the join runs it inline on this stack.
            auto child = corun::spawn(stubborn_until(r, 3));
            j.store(true);
            try {
              co_return co_await child;
            } catch (const corun::cancelled&) {
              w.store(true);
              throw;
            }
          },
          std::ref(release), std::ref(joining), std::ref(woke));
      wait_for_flag(joining);
      parent.cancel();
      // The child ignores the cancel, so the parent can only leave the join through its
      // wake-up. Waiting is bounded so that a missing wake-up fails instead of hanging.
      const bool woken = wait_until_set(woke);
      release.store(true);
      CHECK(woken);
      CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
    }
  }
}

TEST_SUITE("cancel_provenance") {
  TEST_CASE("provenance: a user cancel carries its message and says it was the task's own") {
    std::atomic<bool> ready{false};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(
        [](std::atomic<bool>& r) -> task<std::string> {
          CHECK_FALSE(corun::this_task::cancellation().has_value());
          r.store(true);
          try {
            co_await yield_forever();
          } catch (const corun::cancelled& c) {
            CHECK(c.origin() == corun::cancel_origin::user);
            CHECK(c.requested_on().empty());
            REQUIRE(corun::this_task::cancellation().has_value());
            CHECK(corun::this_task::cancellation()->message() == "maintenance");
            co_return c.describe();
          }
          co_return std::string();
        },
        std::ref(ready));
    wait_for_flag(ready);
    h.cancel("maintenance");
    CHECK(h.get() == "cancelled: maintenance");
  }

  TEST_CASE("provenance: a child cancelled with its parent names the parent") {
    std::atomic<bool> ready{false};
    corun::runtime rt(with_workers(2));
    std::string seen;
    auto h = rt.spawn(
        [](std::atomic<bool>& r, std::string& out) -> task<void> {
          auto child = corun::spawn(
              [](std::atomic<bool>& r2, std::string& out2) -> task<void> {
                r2.store(true);
                try {
                  co_await yield_forever();
                } catch (const corun::cancelled& c) {
                  out2 = c.describe();
                  throw;
                }
              },
              std::ref(r), std::ref(out));
          co_await child;
        },
        std::ref(ready), std::ref(seen));
    wait_for_flag(ready);
    const std::uint64_t parent_id = h.id();
    h.cancel("deploy");
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
    CHECK(seen == "cancelled: deploy (requested on task #" + std::to_string(parent_id) + ")");
  }

  TEST_CASE("provenance: an unobserved child failure says which child failed and why") {
    corun::runtime rt(with_workers(2));
    std::string seen;
    auto h = rt.spawn(
        [](std::string& out) -> task<void> {
          static_cast<void>(
              corun::spawn(fail_after(2, 5), corun::spawn_options{.name = "db-writer"}));
          try {
            co_await yield_forever();
          } catch (const corun::cancelled& c) {
            CHECK(c.origin() == corun::cancel_origin::child_failed);
            out = c.describe();
            throw;
          }
        },
        std::ref(seen));
    CHECK_THROWS_AS(h.get(), test_error);
    CHECK(seen.find("cancelled because child task #") == 0);
    CHECK(seen.find("'db-writer' failed: test_error 5") != std::string::npos);
  }

  TEST_CASE("provenance: the awaiter of a cancelled task reads the reason in task_cancelled") {
    std::atomic<bool> ready{false};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(
        [](std::atomic<bool>& r) -> task<void> {
          r.store(true);
          co_await yield_forever();
        },
        std::ref(ready));
    wait_for_flag(ready);
    h.cancel("too slow");
    try {
      h.get();
      FAIL("no exception");
    } catch (const corun::task_cancelled& e) {
      CHECK(std::string(e.what()).find("was cancelled: cancelled: too slow") != std::string::npos);
    }
  }

  TEST_CASE("provenance: runtime shutdown says so") {
    std::string seen;
    {
      std::atomic<bool> ready{false};
      corun::runtime rt(with_workers(1));
      auto h = rt.spawn(
          [](std::atomic<bool>& r, std::string& out) -> task<void> {
            r.store(true);
            try {
              co_await yield_forever();
            } catch (const corun::cancelled& c) {
              CHECK(c.origin() == corun::cancel_origin::shutdown);
              out = c.describe();
              throw;
            }
          },
          std::ref(ready), std::ref(seen));
      wait_for_flag(ready);
    }
    CHECK(seen == "cancelled: the runtime is shutting down (requested on runtime)");
  }
}

TEST_SUITE("cancel_sleep_forever") {
  TEST_CASE("sleep_forever: suspends until cancelled, then throws cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> asleep{false};
      std::atomic<bool> woke{false};
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn(
          [](std::atomic<bool>& a, std::atomic<bool>& w) -> task<void> {
            a.store(true);
            try {
              co_await corun::this_task::sleep_forever();
            } catch (const corun::cancelled& c) {
              CHECK(c.message() == "wake up");
              w.store(true);
              throw;
            }
          },
          std::ref(asleep), std::ref(woke));
      wait_for_flag(asleep);
      CHECK_FALSE(h.done());
      h.cancel("wake up");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(woke.load());
    }
  }

  TEST_CASE("sleep_forever: already cancelled, it throws at once, children sleep and wake") {
    std::atomic<int> sleeping{0};
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn(
        [](std::atomic<int>& n) -> task<void> {
          std::vector<corun::join_handle<void>> kids;
          for (int i = 0; i < 100; ++i) {
            kids.push_back(corun::spawn(
                [](std::atomic<int>& n2) -> task<void> {
                  n2.fetch_add(1);
                  co_await corun::this_task::sleep_forever();
                },
                std::ref(n)));
          }
          for (auto& k : kids) {
            try {
              co_await k;
            } catch (const corun::task_cancelled&) {
            }
          }
          co_await corun::this_task::sleep_forever();  // we are cancelled too by now
        },
        std::ref(sleeping));
    while (sleeping.load() < 100) {
      std::this_thread::yield();
    }
    h.cancel();
    CHECK_THROWS_AS(h.get(), corun::task_cancelled);
  }
}

TEST_SUITE("cancel_tokens") {
  TEST_CASE("cancel_token: a child's token stays usable after its parent task is gone") {
    std::optional<corun::cancel_token> token;
    corun::runtime rt(with_workers(2));
    rt.block_on([](std::optional<corun::cancel_token>& out) -> task<void> {
      auto child = corun::spawn(
          [](std::optional<corun::cancel_token>& o) -> task<void> {
            o = corun::this_task::token();
            co_return;
          },
          std::ref(out));
      co_await child;
    }(token));
    // The root and its child are gone; the token still holds the scopes it walks (ASan would
    // report a use-after-free here otherwise).
    REQUIRE(token.has_value());
    CHECK_FALSE(token->cancel_requested());
    corun::cancel_source derived(*token);
    CHECK_FALSE(derived.cancel_requested());
    derived.request_cancel();
    CHECK_FALSE(token->cancel_requested());
    token.reset();
  }
}
