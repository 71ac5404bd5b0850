/// \file
/// The examples of two seed documents, rewritten on corun, each asserting the answer corun gives:
///   seed 003 (shared/seeds/003_c8dc3bfb81cf9d24.txt): asyncio cancellation Q&A;
///   seed 004 (shared/seeds/004_a26864cd03471946.txt): anyio's "Creating and managing tasks".
///
/// The seeds time their examples with `asyncio.sleep`/`anyio.sleep`. Here nothing depends on
/// time: a task that "sleeps an hour" uses `this_task::sleep_forever()` (it waits until it is
/// cancelled), and "give the other task a chance to start" is a flag the other task sets. Waits
/// on flags are bounded (a minute) so that a lost wake-up fails instead of hanging.
#include "support.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using corun::task_group;
using corun::task_status;
using namespace corun_test;

namespace {

/// The context variable of seed 004's "Context propagation".
corun::task_local<std::string> g_context{"unset"};

/// Yields inside a task until `flag` is set, for at most a minute; false if it never was.
task<bool> yield_until_set(const std::atomic<bool>& flag) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() >= give_up) {
      co_return false;
    }
    co_await corun::this_task::yield();
  }
  co_return true;
}

/// Sets a flag when destroyed: the `finally:` block of a seed example.
class finally_flag {
 public:
  explicit finally_flag(std::atomic<bool>& flag) noexcept : m_flag(flag) {}
  finally_flag(const finally_flag&) = delete;
  finally_flag& operator=(const finally_flag&) = delete;
  ~finally_flag() { m_flag.store(true, std::memory_order_release); }

 private:
  std::atomic<bool>& m_flag;
};

/// Seed 003's `cancel_me()`: "sleeps an hour" (until cancelled); its `finally:` records that it
/// ran.
task<void> cancel_me(std::atomic<bool>& asleep, std::atomic<bool>& after_sleep) {
  const finally_flag finally{after_sleep};
  asleep.store(true, std::memory_order_release);
  co_await corun::this_task::sleep_forever();
}

/// Seed 003's exchange `close()` coroutine: asynchronous cleanup that needs a few suspensions.
task<void> close_exchange(std::atomic<int>& closed) {
  co_await yield_times(3);
  closed.fetch_add(1);
}

/// Seed 003's broker: runs until interrupted, then closes its exchange (asynchronously, so in a
/// shield: it is cancelled and every unshielded suspension point would throw) and ends cancelled.
task<void> broker(std::atomic<int>& running, std::atomic<int>& closed) {
  std::optional<corun::cancelled> interrupted;
  try {
    running.fetch_add(1);
    co_await corun::this_task::sleep_forever();  // execute_strategies() forever
  } catch (const corun::cancelled& why) {
    interrupted = why;
  }
  co_await corun::shield(close_exchange(closed));  // `await safe_exit(self.exchange)`
  throw *interrupted;
}

/// Seed 003's second "lost data" example: the store (`data`) holds at most one item.
struct data_race_round {
  std::atomic<bool> item_in_store{false};
  std::atomic<bool> wrapper_waiting{false};
};

/// Seed 003's `get_data()`: waits for the item, takes it and returns it. No suspension point
/// lies between taking and returning, so once taken the item is this task's result.
task<std::string> get_data(data_race_round& round) {
  while (!round.item_in_store.exchange(false, std::memory_order_acq_rel)) {
    co_await corun::this_task::yield();
  }
  co_return std::string("data");
}

/// Seed 003's `wrapper_data()`, written as the accepted answer advises: shield the wait, then let
/// the outcome of the wrapped task decide. The wrapped task is our child, so our cancellation
/// reaches it; we wait for it without being woken by that cancellation: if it already took the
/// item it returns it and so do we (ignoring the cancel, as the answer does); otherwise it ends
/// cancelled, the item stays in the store, and we report our own `cancelled`.
task<std::string> wrapper_data(data_race_round& round) {
  auto inner = corun::spawn(get_data(round));
  round.wrapper_waiting.store(true, std::memory_order_release);
  co_return co_await inner.wait_uncancellable();
}

}  // namespace

TEST_SUITE("seeds") {
  // ---- Seed 003: asyncio cancellation Q&A ------------------------------------------------------

  // Seed 003, first question: main() cancels cancel_me() and awaits it. "How do I know if `task`
  // has been cancelled, or I AM being cancelled?" corun: the awaited task's cancellation arrives
  // as `task_cancelled` (a std::exception), never as `cancelled`; and its finally ran first.
  TEST_CASE(
      "seed 003 cancel_me: the awaiter of a cancelled task gets task_cancelled and its "
      "finally ran") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> asleep{false};
      std::atomic<bool> after_sleep{false};
      std::atomic<int> outcome{0};  // 1: task_cancelled, 2: cancelled, 3: returned normally
      std::atomic<bool> finally_ran_first{false};
      std::atomic<bool> main_not_cancelled{false};
      std::uint64_t child_id = 0;
      std::uint64_t reported_id = 1;
      std::string reported;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        auto child = corun::spawn(cancel_me(asleep, after_sleep), {.name = "cancel_me"});
        child_id = child.id();
        CHECK(co_await yield_until_set(asleep));  // `await asyncio.sleep(1)`
        child.cancel("main is done waiting");
        try {
          co_await child;
          outcome = 3;
        } catch (const corun::task_cancelled& e) {
          outcome = 1;
          finally_ran_first = after_sleep.load();
          reported_id = e.task_id();
          reported = e.what();
        } catch (const corun::cancelled&) {
          outcome = 2;
        }
        corun::this_task::checkpoint();  // main itself was not cancelled
        main_not_cancelled = !corun::this_task::cancellation().has_value();
      }());
      CHECK(outcome.load() == 1);
      CHECK(finally_ran_first.load());
      CHECK(main_not_cancelled.load());
      CHECK(reported_id == child_id);
      CHECK(reported.find("'cancel_me' was cancelled") != std::string::npos);
      CHECK(reported.find("main is done waiting") != std::string::npos);
    }
  }

  // Seed 003, answer 1 (detect_cancel), `sys.argv[1] == 'parent'`: parent() awaits a task that is
  // not its own (both created by main). Cancelling parent() must reach parent() as its own
  // `cancelled` ("parent(): I am cancelled"), saying it was asked of parent() itself; as in the
  // seed, the awaited task, not being parent()'s child, keeps running.
  TEST_CASE("seed 003 detect_cancel: a cancelled parent sees its own cancelled, not the child's") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> asleep{false};
      std::atomic<bool> after_sleep{false};
      std::atomic<bool> parent_waiting{false};
      std::atomic<int> parent_saw{0};  // 1: "I am cancelled", 2: "child is cancelled now"
      std::string describe;
      std::string requested_on = "?";
      corun::runtime rt(with_workers(workers));
      auto child = rt.spawn(cancel_me(asleep, after_sleep), {.name = "cancel_me"});
      const corun::task_handle child_task = child;
      auto parent = rt.spawn(
          [&](corun::join_handle<void> awaited) -> task<void> {
            parent_waiting = true;
            try {
              co_await awaited;
            } catch (const corun::task_cancelled&) {
              parent_saw = 2;
              throw;
            } catch (const corun::cancelled& why) {
              parent_saw = 1;
              describe = why.describe();
              requested_on = why.requested_on();
              throw;
            }
          },
          std::move(child));
      REQUIRE(wait_until_set(asleep));
      REQUIRE(wait_until_set(parent_waiting));
      parent.cancel("stop parent");
      CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
      CHECK(parent_saw.load() == 1);
      CHECK(describe == "cancelled: stop parent");
      CHECK(requested_on.empty());  // asked of parent() itself, not of an ancestor
      CHECK_FALSE(child_task.done());
      CHECK_FALSE(after_sleep.load());
      child_task.cancel("main");
      REQUIRE(wait_until_done(child_task));
      CHECK(child_task.cancelled());
      CHECK(after_sleep.load());
    }
  }

  // Seed 003, answer 1 (detect_cancel), the other argument: the awaited task is cancelled. The
  // seed needs a done-callback and a ChildCancelled class to tell this apart; in corun parent()
  // simply gets `task_cancelled` naming the child, and is not cancelled itself.
  TEST_CASE(
      "seed 003 detect_cancel: a parent whose awaited task is cancelled gets "
      "task_cancelled and goes on") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> asleep{false};
      std::atomic<bool> after_sleep{false};
      std::atomic<int> parent_saw{0};  // 1: "I am cancelled", 2: "child is cancelled now"
      std::uint64_t reported_id = 0;
      corun::runtime rt(with_workers(workers));
      auto child = rt.spawn(cancel_me(asleep, after_sleep), {.name = "cancel_me"});
      const corun::task_handle child_task = child;
      auto parent = rt.spawn(
          [&](corun::join_handle<void> awaited) -> task<int> {
            try {
              co_await awaited;
            } catch (const corun::task_cancelled& e) {
              parent_saw = 2;
              reported_id = e.task_id();
            } catch (const corun::cancelled&) {
              parent_saw = 1;
              throw;
            }
            co_await yield_times(3);  // not cancelled: its suspension points do not throw
            co_return 7;
          },
          std::move(child));
      REQUIRE(wait_until_set(asleep));
      child_task.cancel("stop child");
      CHECK(parent.get() == 7);
      CHECK(parent_saw.load() == 2);
      CHECK(reported_id == child_task.id());
      CHECK(after_sleep.load());
    }
  }

  // Seed 003, answer 1, its closing note: "cancelling the outer task will not automatically
  // cancel the inner one" in asyncio. In corun's structured form the inner task is parent()'s own
  // child: cancelling parent() cancels it too, the child's finally runs before parent() ends, and
  // the child's `cancelled` says the request was made on parent().
  TEST_CASE(
      "seed 003 detect_cancel: cancelling a parent cancels its own child, which names the "
      "parent") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> child_asleep{false};
      std::atomic<bool> child_finally{false};
      std::atomic<int> parent_saw{0};  // 1: its own cancelled, 2: task_cancelled
      std::string child_describe;
      corun::runtime rt(with_workers(workers));
      auto parent = rt.spawn([&]() -> task<void> {
        auto child = corun::spawn([&]() -> task<void> {
          const finally_flag finally{child_finally};
          child_asleep = true;
          try {
            co_await corun::this_task::sleep_forever();
          } catch (const corun::cancelled& why) {
            child_describe = why.describe();
            throw;
          }
        });
        try {
          co_await child;
        } catch (...) {
          parent_saw = cancellation_kind(std::current_exception());
          throw;
        }
      });
      REQUIRE(wait_until_set(child_asleep));
      const std::uint64_t parent_id = parent.id();
      parent.cancel("deploy");
      CHECK_THROWS_AS(parent.get(), corun::task_cancelled);
      CHECK(child_finally.load());  // a task completes only after its children
      CHECK(parent_saw.load() == 1);
      CHECK(child_describe ==
            "cancelled: deploy (requested on task #" + std::to_string(parent_id) + ")");
    }
  }

  // Seed 003, answer 2, "Shield": `await asyncio.shield(callee_f)` — "I might die, but I won't take
  // callee down with me". corun's shield waits for the callee (trio's shielded scope): your_coro
  // gets the callee's value, and its own cancellation lands at its next suspension point.
  TEST_CASE("seed 003 shield: the callee finishes although your_coro is cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> callee_running{false};
      std::atomic<bool> release{false};
      std::atomic<bool> callee_finished{false};
      std::atomic<int> got{0};
      std::atomic<bool> cancelled_after{false};
      corun::runtime rt(with_workers(workers));
      auto your_coro = rt.spawn([&]() -> task<void> {
        got = co_await corun::shield([&]() -> task<int> {
          callee_running = true;
          CHECK(co_await yield_until_set(release));  // would throw were the cancel to reach it
          callee_finished = true;
          co_return 42;
        }());
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          cancelled_after = true;
          throw;
        }
      });
      REQUIRE(wait_until_set(callee_running));
      your_coro.cancel("caller2 cancelled");
      release = true;
      CHECK_THROWS_AS(your_coro.get(), corun::task_cancelled);
      CHECK(callee_finished.load());
      CHECK(got.load() == 42);
      CHECK(cancelled_after.load());
    }
  }

  // Seed 003, answer 2, "Shield yourself": `return asyncio.shield(inner())` when the caller is a
  // framework that cancels. The framework's cancel does not stop inner(), and your coroutine,
  // having no suspension point after it, completes with inner()'s value.
  TEST_CASE("seed 003 shield yourself: a framework's cancel does not stop your coroutine") {
    std::atomic<bool> inner_running{false};
    std::atomic<bool> release{false};
    corun::runtime rt(with_workers(2));
    auto framework_task = rt.spawn([&]() -> task<int> {
      co_return co_await corun::shield([&]() -> task<int> {
        inner_running = true;
        CHECK(co_await yield_until_set(release));
        co_return 5;
      }());
    });
    REQUIRE(wait_until_set(inner_running));
    framework_task.cancel("framework");
    release = true;
    CHECK(framework_task.get() == 5);
    CHECK_FALSE(framework_task.cancelled());
  }

  // Seed 003, answer 2, "Reverse shield": convert the callee's cancellation into a custom error so
  // that your coroutine continues. In corun the callee's cancellation already is an ordinary
  // exception (`task_cancelled`); converting it leaves your own `cancelled` untouched.
  TEST_CASE(
      "seed 003 reverse shield: the callee's cancellation becomes a custom error, yours "
      "stays a cancellation") {
    struct reverse {
      static task<int> shield(corun::join_handle<int>& awaitable) {
        try {
          co_return co_await awaitable;
        } catch (const corun::task_cancelled&) {
          throw std::runtime_error("custom");
        }
      }
    };
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> callee_exported{false};
      std::atomic<bool> waiting{false};
      std::atomic<int> saw{0};  // 1: custom error, 2: cancelled
      corun::task_handle callee_task;
      corun::runtime rt(with_workers(workers));
      // The callee dies: your_coro handles the custom error and continues.
      auto your_coro = rt.spawn([&]() -> task<int> {
        auto callee = corun::spawn([]() -> task<int> {
          co_await corun::this_task::sleep_forever();
          co_return 0;
        });
        callee_task = callee;
        callee_exported = true;
        try {
          co_return co_await reverse::shield(callee);
        } catch (const std::runtime_error& e) {
          saw = std::string(e.what()) == "custom" ? 1 : 3;
        }
        co_await yield_times(2);
        co_return -1;
      });
      REQUIRE(wait_until_set(callee_exported));
      callee_task.cancel("callee dies");
      CHECK(your_coro.get() == -1);
      CHECK(saw.load() == 1);
      // You die: the conversion does not apply, your cancellation propagates.
      saw = 0;
      auto doomed = rt.spawn([&]() -> task<int> {
        auto callee = corun::spawn([]() -> task<int> {
          co_await corun::this_task::sleep_forever();
          co_return 0;
        });
        waiting = true;
        try {
          co_return co_await reverse::shield(callee);
        } catch (const std::runtime_error&) {
          saw = 1;
          throw;
        } catch (const corun::cancelled&) {
          saw = 2;
          throw;
        }
      });
      REQUIRE(wait_until_set(waiting));
      doomed.cancel("you die");
      CHECK_THROWS_AS(doomed.get(), corun::task_cancelled);
      CHECK(saw.load() == 2);
    }
  }

  // Seed 003, "Related" (the book's all_tasks() snippet): after run_until_complete(main) tasks may
  // still be pending and must be cancelled and gathered by hand. corun: a task spawned inside
  // main() is main()'s child, so block_on(main) returns only after it completed (nothing is left
  // pending); a root task left running is cancelled by the runtime's destruction, which waits for
  // it, so its cleanup runs and says why.
  TEST_CASE(
      "seed 003 all_tasks: nothing is left pending after block_on, and the runtime cancels "
      "leftover root tasks") {
    std::atomic<int> children_finished{0};
    std::atomic<bool> longer_started{false};
    std::atomic<bool> longer_cleaned{false};
    std::atomic<bool> longer_done_at_block_on{true};
    std::optional<corun::cancel_origin> origin;
    {
      corun::runtime rt(with_workers(2));
      auto longer_task = rt.spawn([&]() -> task<void> {
        const finally_flag finally{longer_cleaned};
        longer_started = true;
        try {
          co_await corun::this_task::sleep_forever();
        } catch (const corun::cancelled& why) {
          origin = why.origin();
          throw;
        }
      });
      REQUIRE(wait_until_set(longer_started));
      rt.block_on([&]() -> task<void> {
        static_cast<void>(corun::spawn([&]() -> task<void> {
          co_await yield_times(20);  // outlives main()'s body
          children_finished.fetch_add(1);
        }));
        co_return;
      }());
      CHECK(children_finished.load() == 1);
      longer_done_at_block_on = longer_task.done();
    }
    CHECK_FALSE(longer_done_at_block_on.load());
    CHECK(longer_cleaned.load());
    REQUIRE(origin.has_value());
    CHECK(*origin == corun::cancel_origin::shutdown);
  }

  // Seed 003, "I need to wrap a coroutine that returns data", first version: the future got its
  // result, then the wrapping task was cancelled before it ran again, and asyncio lost the data.
  // corun: completion beats cancellation; the wrapper, with no suspension point left, returns it.
  TEST_CASE("seed 003 wait(fut): a result delivered before the cancel is returned, not lost") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> fut_done{false};
      std::atomic<bool> cancelled_now{false};
      std::atomic<bool> saw_cancel_request{false};
      corun::runtime rt(with_workers(workers));
      auto wrapper = rt.spawn([&]() -> task<std::string> {
        auto fut = corun::spawn([]() -> task<std::string> { co_return std::string("data"); });
        while (!fut.done()) {
          co_await corun::this_task::yield();
        }
        fut_done = true;
        CHECK(wait_until_set(cancelled_now));  // no suspension point: `task.cancel()` lands here
        saw_cancel_request = corun::this_task::token().cancel_requested();
        co_return co_await fut;
      });
      REQUIRE(wait_until_set(fut_done));
      wrapper.cancel("cancel races completion");
      cancelled_now = true;
      CHECK(wrapper.get() == "data");
      CHECK_FALSE(wrapper.cancelled());
      CHECK(saw_cancel_request.load());
    }
  }

  // Seed 003, same question, second version: get_data() takes the item from `data` while its
  // wrapper is being cancelled; asyncio's wrapper ends cancelled and the item is gone. Written as
  // the accepted answer advises (on its own cancellation, wait for the inner task and keep its
  // result), in corun the item is either returned by the wrapper or still in the store. Many
  // rounds: the cancel lands before, during or after the take.
  TEST_CASE(
      "seed 003 wrapper_data: an item taken by the wrapped task is returned or left in the "
      "store, never lost") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      const std::size_t rounds = scaled(400, 40);
      const std::unique_ptr<data_race_round[]> state(new data_race_round[rounds]);
      std::size_t returned = 0;
      std::size_t left = 0;
      corun::runtime rt(with_workers(workers));
      for (std::size_t i = 0; i < rounds; ++i) {
        data_race_round& round = state[i];
        auto wrapper = rt.spawn(wrapper_data(round));
        REQUIRE(wait_until_set(round.wrapper_waiting));
        round.item_in_store = true;  // data.append('data'); fut_data.set_result(None)
        wrapper.cancel("wrapper cancelled");
        std::optional<std::string> value;
        try {
          value = wrapper.get();
        } catch (const corun::task_cancelled&) {
          // the wrapper ended cancelled: then the item must still be in the store
        }
        if (value.has_value()) {
          CHECK(*value == "data");
          CHECK_FALSE(round.item_in_store.load());
          ++returned;
        } else {
          CHECK(round.item_in_store.load());
          ++left;
        }
      }
      CHECK(returned + left == rounds);
    }
  }

  // Seed 003, "ccxt ... close() is never awaited" on Ctrl+C: the interrupt must let every broker
  // close its exchange asynchronously. corun: cancel the main task (run_until_signal will do it
  // for a signal); each broker catches its `cancelled`, runs its async close() in a shield, and
  // ends cancelled. The seed's answer (run the loop again for close()) works too: block_on again.
  TEST_CASE(
      "seed 003 cleanup on interrupt: every broker awaits its async close() after the "
      "cancel") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      constexpr int brokers = 4;
      std::atomic<int> running{0};
      std::atomic<int> closed{0};
      std::atomic<int> main_saw{0};  // 1: cancelled, 2: something else
      std::atomic<int> closed_when_group_ended{0};
      corun::runtime rt(with_workers(workers));
      auto main_task = rt.spawn([&]() -> task<void> {
        try {
          // The body returns at once; the group then waits for the brokers, cancelled with us.
          co_await corun::with_task_group([&](task_group& g) -> task<void> {
            for (int i = 0; i < brokers; ++i) {
              (void)g.spawn(broker(running, closed));
            }
            co_return;
          });
          // The body's (void) value is returned although we are cancelled: our cancellation
          // lands at our next suspension point.
          closed_when_group_ended = closed.load();
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          main_saw = 1;
          throw;
        } catch (...) {
          main_saw = 2;
          throw;
        }
      });
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      while (running.load() < brokers && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::yield();
      }
      REQUIRE(running.load() == brokers);
      main_task.cancel("KeyboardInterrupt");
      CHECK_THROWS_AS(main_task.get(), corun::task_cancelled);
      CHECK(main_saw.load() == 1);
      CHECK(closed_when_group_ended.load() == brokers);
      rt.block_on(close_exchange(closed));  // loop.run_until_complete(close())
      CHECK(closed.load() == brokers + 1);
    }
  }

  // Seed 003, producer/consumer, "a third task that monitors the two and cancels one when the
  // other one finishes" (cancel_when_done). The consumer waits "on the queue" (sleeps until
  // cancelled); the producer fails with a division by zero; the monitor awaits the producer,
  // swallowing only its failure (`catch (const std::exception&)` cannot swallow the monitor's own
  // cancellation), and cancels the consumer, whose awaiter reads why.
  TEST_CASE("seed 003 producer/consumer: a monitor cancels the consumer when the producer fails") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> produced{0};
      std::atomic<bool> consumer_cleaned{false};
      std::atomic<bool> producer_failure_seen{false};
      std::string consumer_end;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        auto producer = corun::spawn([&]() -> task<void> {
          for (int i = 0;; ++i) {
            produced.fetch_add(1);
            co_await corun::this_task::yield();
            if (i == 7) {
              throw std::domain_error("division by zero");
            }
          }
        });
        auto consumer = corun::spawn([&]() -> task<void> {
          const finally_flag finally{consumer_cleaned};
          co_await corun::this_task::sleep_forever();  // `await q.get()` on a queue nobody fills
        });
        auto monitor = corun::spawn(
            [&](corun::join_handle<void> source, corun::task_handle target) -> task<void> {
              try {
                co_await source;
              } catch (const std::exception&) {
                producer_failure_seen = true;  // someone else's business; we only link the fates
              }
              target.cancel("the producer ended");
            },
            std::move(producer), corun::task_handle(consumer));
        try {
          co_await consumer;
        } catch (const corun::task_cancelled& e) {
          consumer_end = e.what();
        }
        co_await monitor;
      }());
      CHECK(produced.load() == 8);
      CHECK(producer_failure_seen.load());
      CHECK(consumer_cleaned.load());
      CHECK(consumer_end.find("the producer ended") != std::string::npos);
    }
  }

  // Seed 003, producer/consumer, Erlang's "links" done with structured concurrency: put both in
  // one task group, and the producer's failure cancels the consumer waiting on the queue; the
  // group reports the producer's failure only.
  TEST_CASE(
      "seed 003 producer/consumer: in one task group the producer's failure cancels the "
      "consumer") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> consumer_waiting{false};
      std::atomic<bool> consumer_cancelled{false};
      std::vector<std::string> failures;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& g) -> task<void> {
            (void)g.spawn([&]() -> task<void> {
              try {
                consumer_waiting = true;
                co_await corun::this_task::sleep_forever();
              } catch (const corun::cancelled&) {
                consumer_cancelled = true;
                throw;
              }
            });
            (void)g.spawn([&]() -> task<void> {
              CHECK(co_await yield_until_set(consumer_waiting));
              throw std::domain_error("division by zero");
            });
            co_return;
          });
        } catch (const corun::exception_group& group) {
          for (const auto& leaf : group.leaves()) {
            failures.push_back(corun::describe_exception(leaf));
          }
        }
      }());
      CHECK(consumer_cancelled.load());
      CHECK(failures == std::vector<std::string>{"division by zero"});
    }
  }

  // Seed 003, producer/consumer, "propagate the exception through the queue" (HellBrokeLoose):
  // the producer hands its error to the consumer through the queue. corun: the producer closes
  // the channel with its error (`close(std::exception_ptr)`); the consumer handles every item
  // sent before the failure, then its `recv` rethrows the error, also when it was already
  // waiting on the queue: it does not wait forever. As in the seed, the producer fails with
  // ValueError(3) (here `test_error(3)`) after producing 1 and 2.
  TEST_CASE(
      "seed 003 producer/consumer: the producer's error reaches the consumer through the "
      "queue") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::channel<int> queue(1);
      std::vector<int> handled;
      int caught = -1;
      bool ended_normally = false;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        auto producer = corun::spawn([&]() -> task<void> {
          for (int i = 1;; ++i) {
            try {
              if (i % 3 == 0) {
                // The consumer is waiting on the queue when the failure happens.
                while (queue.waiting_receivers() == 0) {
                  co_await corun::this_task::yield();
                }
                throw test_error(i);
              }
              co_await queue.send(i);  // `await queue.put(new_work)`
            } catch (const std::exception&) {
              queue.close(std::current_exception());  // `await queue.put(HellBrokeLoose(e))`
              break;
            }
          }
        });
        auto consumer = corun::spawn([&]() -> task<void> {
          for (;;) {
            try {
              const std::optional<int> work = co_await queue.recv();
              if (!work) {
                ended_normally = true;  // closed without an error: not what happens here
                break;
              }
              handled.push_back(*work);
            } catch (const test_error& e) {
              caught = e.id();  // "Consumer caught exception: ValueError: 3"
              break;
            }
          }
        });
        co_await producer;
        co_await consumer;
      }());
      CHECK(handled == std::vector<int>{1, 2});
      CHECK(caught == 3);
      CHECK_FALSE(ended_normally);
      CHECK(queue.is_closed());
    }
  }

  // Seed 003, asyncio.Queue.put: "Why does it add an except: to wake up the next in line?" Two
  // putters wait on a full queue; get_nowait() frees a slot and wakes putter 1, which is
  // cancelled before it runs; putter 2 must get the slot. corun's channel claims a waiter
  // before it hands it anything, and exactly one of the channel and the cancel claims it:
  //  - the cancel first (putter 1 is still queued): it throws `cancelled` without putting, and
  //    get_nowait() skips it and moves putter 2's item into the freed slot (asyncio's answer,
  //    with no `except:` needed in the putter);
  //  - get_nowait() first (the seed's order): putter 1's item is already in the queue when the
  //    cancel comes, so its put returns (completion beats cancellation; the cancel shows at its
  //    next suspension point) and putter 2 keeps waiting for the next free slot.
  // Either way the freed slot is taken at once and no item is lost or put twice.
  TEST_CASE("seed 003 queue put race: a putter woken and cancelled at once passes the slot on") {
    // Waits (on this thread) until `done()` holds, for at most a minute.
    auto wait_until_true = [](auto done) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      while (!done() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::yield();
      }
      return done();
    };

    SUBCASE("one worker, the cancel first: putter 2 gets the slot") {
      corun::channel<std::string> queue(1);
      std::atomic<bool> put1_returned{false};
      corun::runtime rt(with_workers(1));
      rt.block_on([&]() -> task<void> {
        CHECK(queue.try_send("A") == corun::try_send_result::sent);
        auto task1 = corun::spawn([&]() -> task<void> {
          co_await queue.send("B");
          put1_returned.store(true);
        });
        while (queue.waiting_senders() < 1) {
          co_await corun::this_task::yield();
        }
        auto task2 = corun::spawn([&]() -> task<void> { co_await queue.send("C"); });
        while (queue.waiting_senders() < 2) {
          co_await corun::this_task::yield();
        }
        // We hold the only worker, so nothing runs between these lines: putter 1 is claimed by
        // its cancel while still queued, and the get meets it there.
        task1.cancel("task1.cancel()");
        CHECK(queue.try_recv() == std::optional<std::string>("A"));  // print(get_nowait())
        CHECK(queue.size() == 1);  // the freed slot is taken at once, by putter 2
        CHECK_THROWS_AS(co_await task1, corun::task_cancelled);
        co_await task2;  // "Thankfully, the putter in task 2 has been notified"
        CHECK(co_await queue.recv() == std::optional<std::string>("C"));  // print 'C'
      }());
      CHECK_FALSE(put1_returned.load());
      CHECK(queue.size() == 0);
    }

    SUBCASE("one worker, the get first (the seed's order): putter 1's put completes") {
      corun::channel<std::string> queue(1);
      std::atomic<bool> put1_returned{false};
      std::atomic<bool> task1_saw_cancel{false};
      corun::runtime rt(with_workers(1));
      rt.block_on([&]() -> task<void> {
        CHECK(queue.try_send("A") == corun::try_send_result::sent);
        auto task1 = corun::spawn([&]() -> task<void> {
          co_await queue.send("B");
          put1_returned.store(true);
          try {
            co_await corun::this_task::yield();
          } catch (const corun::cancelled&) {
            task1_saw_cancel.store(true);
            throw;
          }
        });
        while (queue.waiting_senders() < 1) {
          co_await corun::this_task::yield();
        }
        auto task2 = corun::spawn([&]() -> task<void> { co_await queue.send("C"); });
        while (queue.waiting_senders() < 2) {
          co_await corun::this_task::yield();
        }
        CHECK(queue.try_recv() == std::optional<std::string>("A"));  // wakes putter 1...
        task1.cancel("task1.cancel()");                              // ...cancelled at once
        CHECK_THROWS_AS(co_await task1, corun::task_cancelled);
        CHECK(queue.waiting_senders() == 1);  // putter 2 waits for the next slot
        CHECK(co_await queue.recv() == std::optional<std::string>("B"));
        co_await task2;
        CHECK(co_await queue.recv() == std::optional<std::string>("C"));
      }());
      CHECK(put1_returned.load());
      CHECK(task1_saw_cancel.load());
    }

    SUBCASE("two workers, the get and the cancel racing: the slot is never lost") {
      const int rounds = static_cast<int>(scaled(300, 30));
      int slot_passed_on = 0;
      int put1_completed = 0;
      for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        corun::channel<std::string> queue(1);
        std::atomic<bool> put1_returned{false};
        std::atomic<bool> go{false};
        std::optional<std::string> got;
        corun::runtime rt(with_workers(2));
        REQUIRE(queue.try_send("A") == corun::try_send_result::sent);
        auto task1 = rt.spawn([&]() -> task<void> {
          co_await queue.send("B");
          put1_returned.store(true);
        });
        REQUIRE(wait_until_true([&] { return queue.waiting_senders() == 1; }));
        auto task2 = rt.spawn([&]() -> task<void> { co_await queue.send("C"); });
        REQUIRE(wait_until_true([&] { return queue.waiting_senders() == 2; }));
        std::thread getter([&] {
          wait_for_flag(go);
          got = queue.try_recv();
        });
        go.store(true);
        for (int spin = round % 8; spin > 0; --spin) {
          std::this_thread::yield();
        }
        task1.cancel("task1.cancel()");
        getter.join();
        CHECK(got == std::optional<std::string>("A"));
        CHECK(queue.size() == 1);  // whichever putter won, the freed slot was taken at once
        bool task1_cancelled = false;
        try {
          task1.get();
        } catch (const corun::task_cancelled&) {
          task1_cancelled = true;
        }
        if (put1_returned.load()) {
          ++put1_completed;
          CHECK_FALSE(task1_cancelled);
          CHECK(queue.try_recv() == std::optional<std::string>("B"));
          task2.get();
        } else {
          ++slot_passed_on;
          CHECK(task1_cancelled);
          task2.get();
        }
        CHECK(queue.try_recv() == std::optional<std::string>("C"));
        CHECK(queue.try_recv() == std::nullopt);
      }
      MESSAGE("slot passed on to putter 2: " << slot_passed_on
                                             << ", putter 1's put completed: " << put1_completed);
      CHECK(slot_passed_on + put1_completed == rounds);
    }
  }

  // ---- Seed 004: anyio, creating and managing tasks --------------------------------------------

  // Seed 004, the demonstration: five sometask()s started with start_soon; leaving the task
  // group waits for all of them ("All tasks finished!").
  TEST_CASE("seed 004 task group: leaving the group waits for every child") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> running{0};
      std::atomic<int> finished{0};
      int finished_at_exit = -1;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        co_await corun::with_task_group([&](task_group& tg) -> task<void> {
          for (int num = 0; num < 5; ++num) {
            (void)tg.spawn(
                [&](int n) -> task<void> {
                  running.fetch_add(1);             // print('Task', num, 'running')
                  co_await yield_times(n * 3 + 1);  // await sleep(1)
                  finished.fetch_add(1);            // print('Task', num, 'finished')
                },
                num);
          }
          co_return;
        });
        finished_at_exit = finished.load();  // print('All tasks finished!')
      }());
      CHECK(running.load() == 5);
      CHECK(finished_at_exit == 5);
    }
  }

  // Seed 004, "Starting and initializing tasks": `await tg.start(start_some_service, 5000)` returns
  // once the service listens (task_status.started()), and the service keeps serving in the group;
  // the client connects to a listening service. Ending the group (cancel) closes the listener.
  TEST_CASE(
      "seed 004 start: the caller resumes once the service is listening, and it keeps "
      "serving") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> listening{false};
      std::atomic<bool> listener_closed{false};
      std::atomic<bool> connected{false};
      int port = 0;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        co_await corun::with_task_group([&](task_group& tg) -> task<void> {
          auto start_some_service = [&](task_status<int>& task_status) -> task<void> {
            const finally_flag listener{listener_closed};  // `async with ... as listener`
            co_await corun::this_task::yield();            // create_tcp_listener(...)
            listening = true;
            task_status.started(5000);
            co_await corun::this_task::sleep_forever();  // `await listener.serve(handler)`
          };
          port = co_await tg.start<int>(start_some_service);
          connected = listening.load() && !listener_closed.load();  // connect_tcp(...)
          co_await yield_times(5);
          CHECK(tg.size() == 1);  // still serving
          tg.cancel("client done");
        });
      }());
      CHECK(port == 5000);
      CHECK(connected.load());
      CHECK(listener_closed.load());
    }
  }

  // Seed 004, same section: "if the socket bind fails ... the exception will be propagated to the
  // caller", not to the group (whose other children go on).
  TEST_CASE("seed 004 start: a failure during initialisation is thrown to the caller of start") {
    std::atomic<bool> sibling_cancelled{false};
    int caught = 0;
    bool group_quiet = false;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      task_group tg;
      (void)tg.spawn([&]() -> task<void> {
        try {
          co_await yield_times(20);
        } catch (const corun::cancelled&) {
          sibling_cancelled = true;
          throw;
        }
      });
      auto bind_fails = [](task_status<int>&) -> task<void> {
        co_await corun::this_task::yield();
        throw test_error(98);  // EADDRINUSE
      };
      try {
        (void)co_await tg.start<int>(bind_fails);
      } catch (const test_error& e) {
        caught = e.id();
      }
      co_await tg.join();
      group_quiet = true;
    }());
    CHECK(caught == 98);
    CHECK(group_quiet);
    CHECK_FALSE(sibling_cancelled.load());
  }

  // Seed 004, same section: "If the spawned task never calls it, then the TaskGroup.start() call
  // will raise a RuntimeError": corun throws std::logic_error.
  TEST_CASE("seed 004 start: a task that never calls started makes start throw logic_error") {
    bool threw = false;
    corun::runtime rt(with_workers(2));
    rt.block_on([&]() -> task<void> {
      co_await corun::with_task_group([&](task_group& tg) -> task<void> {
        auto forgetful = [](task_status<>&) -> task<void> { co_await yield_times(2); };
        try {
          co_await tg.start(forgetful);
        } catch (const std::logic_error&) {
          threw = true;
        }
      });
    }());
    CHECK(threw);
  }

  // Seed 004, "Handling multiple errors in a task group": some_task fails, and another_task,
  // cancelled because of it, raises in its exception handler; the group raises both, and
  // `except* ValueError` / `except* KeyError` (corun: catch_each) handle each kind, the handlers
  // setting the caller's locals ("nonlocal"). split() divides the group the same way, and a
  // catch_each without a handler for one kind rethrows that kind as a group.
  TEST_CASE(
      "seed 004 multiple errors: both failures reach the group and catch_each handles each "
      "kind") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<bool> another_waiting{false};
      std::optional<corun::exception_group> caught;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& tg) -> task<void> {
            (void)tg.spawn([&]() -> task<void> {  // some_task
              CHECK(co_await yield_until_set(another_waiting));
              throw std::invalid_argument("some_task: ValueError");
            });
            (void)tg.spawn([&]() -> task<void> {  // another_task
              another_waiting = true;
              try {
                co_await corun::this_task::sleep_forever();
              } catch (const corun::cancelled&) {
                throw std::out_of_range("another_task: KeyError in its handler");
              }
            });
            co_return;
          });
        } catch (const corun::exception_group& group) {
          caught = group;
        }
      }());
      REQUIRE(caught.has_value());
      CHECK(caught->leaves().size() == 2);
      std::vector<std::string> value_errors;
      std::vector<std::string> key_errors;
      CHECK_NOTHROW(corun::catch_each(
          *caught, [&](const std::invalid_argument& e) { value_errors.emplace_back(e.what()); },
          [&](const std::out_of_range& e) { key_errors.emplace_back(e.what()); }));
      CHECK(value_errors == std::vector<std::string>{"some_task: ValueError"});
      CHECK(key_errors == std::vector<std::string>{"another_task: KeyError in its handler"});

      const auto [values, rest] = caught->split<std::invalid_argument>();
      REQUIRE(values.has_value());
      REQUIRE(rest.has_value());
      CHECK(values->leaves().size() == 1);
      CHECK(rest->leaves().size() == 1);

      std::size_t rethrown_key_errors = 0;
      try {
        corun::catch_each(*caught, [](const std::invalid_argument&) {});
      } catch (const corun::exception_group& unhandled) {
        for (const auto& leaf : unhandled.leaves()) {
          try {
            std::rethrow_exception(leaf);
          } catch (const std::out_of_range&) {
            ++rethrown_key_errors;
          } catch (...) {
          }
        }
      }
      CHECK(rethrown_key_errors == 1);
    }
  }

  // Seed 004, "Context propagation": a new task gets a copy of the context of the task that
  // calls start()/start_soon(), not of the task group's host task.
  TEST_CASE(
      "seed 004 context propagation: a task copies its spawner's task_local values, not the "
      "group host's") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::string from_host_spawn;
      std::string from_child_spawn;
      std::string from_child_start;
      std::string host_after;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        g_context.set("host");
        task_group tg;
        auto read = []() -> task<std::string> { co_return g_context.get(); };
        auto direct = tg.spawn(read);
        auto spawner = tg.spawn([&]() -> task<void> {
          g_context.set("spawner");
          auto soon = tg.spawn(read);  // spawned into the host's group by this child
          from_child_spawn = co_await soon;
          auto report = [](task_status<std::string>& status) -> task<void> {
            status.started(g_context.get());
            co_return;
          };
          from_child_start = co_await tg.start<std::string>(report);
        });
        from_host_spawn = co_await direct;
        co_await spawner;
        co_await tg.join();
        host_after = g_context.get();  // the child's set did not leak into the host
      }());
      CHECK(from_host_spawn == "host");
      CHECK(from_child_spawn == "spawner");
      CHECK(from_child_start == "spawner");
      CHECK(host_after == "host");
    }
  }

  // Seed 004, the "cancellation of the group when a child fails" promise of its introduction ("If
  // a child task, or the code in the enclosed context block raises an exception, all child tasks
  // are cancelled"): the siblings and the body are cancelled, their cancellation says a sibling
  // failed, and only the failure is reported.
  TEST_CASE(
      "seed 004 fail fast: a failing child cancels its siblings and the body, which learn "
      "why") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> waiting{0};
      std::atomic<bool> all_waiting{false};
      std::atomic<int> cancelled_count{0};
      std::atomic<bool> body_cancelled{false};
      std::vector<std::string> reasons(2);
      std::vector<int> failures;
      corun::runtime rt(with_workers(workers));
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& tg) -> task<void> {
            for (std::size_t i = 0; i < 2; ++i) {
              (void)tg.spawn([&, i]() -> task<void> {
                try {
                  if (waiting.fetch_add(1) + 1 == 2) {
                    all_waiting = true;
                  }
                  co_await corun::this_task::sleep_forever();
                } catch (const corun::cancelled& why) {
                  reasons[i] = why.describe();
                  cancelled_count.fetch_add(1);
                  throw;
                }
              });
            }
            (void)tg.spawn(corun::spawn_options{.name = "db-writer"}, [&]() -> task<void> {
              CHECK(co_await yield_until_set(all_waiting));
              throw test_error(7);
            });
            try {
              co_await corun::this_task::sleep_forever();
            } catch (const corun::cancelled&) {
              body_cancelled = true;
              throw;
            }
          });
        } catch (const corun::exception_group& group) {
          for (const auto& member : group.exceptions()) {
            failures.push_back(test_error_id(member));
          }
        }
      }());
      CHECK(cancelled_count.load() == 2);
      CHECK(body_cancelled.load());
      CHECK(failures == std::vector<int>{7});
      for (const std::string& reason : reasons) {
        CHECK(reason.find("sibling") != std::string::npos);
      }
    }
  }

  // Seed 004, "Differences with asyncio.TaskGroup", where corun sides with anyio/trio: a task
  // cancelled before its coroutine started still handles its cancellation; tasks may still be
  // spawned after a failure triggered the shutdown (they start cancelled); and like asyncio's
  // create_task, spawn returns a handle that can be awaited or cancelled on its own, which neither
  // cancels the others nor fails the group.
  TEST_CASE(
      "seed 004 differences with asyncio: early cancels are handled, late spawns start "
      "cancelled, handles cancel one task") {
    std::atomic<bool> early_handled{false};
    std::atomic<bool> late_handled{false};
    std::atomic<bool> late_went_on{false};
    std::atomic<bool> other_finished{false};
    std::vector<int> failures;
    bool single_cancelled = false;
    corun::runtime rt(with_workers(1));  // one worker: nothing runs before the cancels below
    rt.block_on([&]() -> task<void> {
      task_group tg;
      auto single = tg.spawn([&]() -> task<void> {
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          early_handled = true;
          throw;
        }
      });
      auto other = tg.spawn([&]() -> task<void> {
        co_await yield_times(5);
        other_finished = true;
      });
      single.cancel("just this one");  // before it ever ran
      try {
        co_await single;
      } catch (const corun::task_cancelled&) {
        single_cancelled = true;
      }
      co_await other;
      (void)tg.spawn([]() -> task<void> {
        co_await corun::this_task::yield();
        throw test_error(1);
      });
      while (tg.size() != 0) {
        co_await corun::this_task::yield();  // the failure has shut the group down
      }
      (void)tg.spawn([&]() -> task<void> {
        try {
          co_await corun::this_task::yield();
          late_went_on = true;
        } catch (const corun::cancelled&) {
          late_handled = true;
          throw;
        }
      });
      try {
        co_await tg.join();
      } catch (const corun::exception_group& group) {
        for (const auto& member : group.exceptions()) {
          failures.push_back(test_error_id(member));
        }
      }
    }());
    CHECK(early_handled.load());
    CHECK(single_cancelled);
    CHECK(other_finished.load());
    CHECK(late_handled.load());
    CHECK_FALSE(late_went_on.load());
    CHECK(failures == std::vector<int>{1});
  }
}
