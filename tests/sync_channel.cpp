/// \file
/// `channel<T>`: FIFO order, bounded and rendezvous capacities, try_send/try_recv, both forms of
/// close, move-only items, many producers and consumers, and the claim protocol against
/// cancellation (a cancelled send delivered nothing, a cancelled recv took nothing, a claimed
/// one completed).
///
/// "Blocked" is never inferred from time: a task is known to wait in `send` or `recv` when the
/// channel counts it (`waiting_senders()`, `waiting_receivers()`), and with one worker a task
/// that yields lets every other runnable task run up to its next suspension first.
#include "corun/channel.hpp"

#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using corun::try_send_result;
using namespace corun_test;

namespace {

/// Capacities the semantic tests sweep: rendezvous, one slot, a few slots.
constexpr std::size_t capacities[] = {0, 1, 3};

/// Yields (inside a task) until `done()` holds.
template <class Pred>
task<void> yield_until_true(Pred done) {
  while (!done()) {
    co_await corun::this_task::yield();
  }
}

/// Waits (on a foreign thread) until `done()` holds, for at most a minute; false if it never did.
template <class Pred>
bool wait_until_true(Pred done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}

/// Sends `count` numbers from `first` on, in order.
task<void> send_range(corun::channel<int>& ch, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    co_await ch.send(i);
  }
}

/// Receives until the channel is closed and drained; returns what it got, in order.
task<std::vector<int>> recv_all(corun::channel<int>& ch) {
  std::vector<int> got;
  while (std::optional<int> item = co_await ch.recv()) {
    got.push_back(*item);
  }
  co_return got;
}

std::vector<int> iota(int first, int count) {
  std::vector<int> values;
  for (int i = first; i < first + count; ++i) {
    values.push_back(i);
  }
  return values;
}

}  // namespace

TEST_SUITE("sync_channel") {
  TEST_CASE("channel: items come out in the order they went in") {
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : capacities) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<int> ch(capacity);
        corun::runtime rt(with_workers(workers));
        const std::vector<int> got = rt.block_on([&]() -> task<std::vector<int>> {
          auto consumer = corun::spawn(recv_all(ch));
          co_await send_range(ch, 0, 500);
          ch.close();
          co_return co_await consumer;
        }());
        CHECK(got == iota(0, 500));
        CHECK(ch.size() == 0);
        CHECK(ch.capacity() == capacity);
      }
    }
  }

  TEST_CASE("channel: a full channel blocks its senders until a receiver makes room") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::channel<int> ch(2);
      std::atomic<int> sent{0};
      corun::runtime rt(with_workers(workers));
      auto sender = rt.spawn([&]() -> task<void> {
        for (int i = 0; i < 4; ++i) {
          co_await ch.send(i);
          sent.fetch_add(1);
        }
      });
      // Two items fit; the third send waits, and nothing but a receive can let it go on.
      REQUIRE(wait_until_true([&] { return ch.waiting_senders() == 1; }));
      CHECK(sent.load() == 2);
      CHECK(ch.size() == 2);
      CHECK(ch.try_send(9) == try_send_result::full);  // no barging past the waiting sender
      CHECK_FALSE(sender.done());
      // Each receive moves the waiting sender's item into the freed slot and wakes it.
      CHECK(ch.try_recv() == std::optional<int>(0));
      CHECK(ch.size() == 2);
      REQUIRE(wait_until_true([&] { return ch.waiting_senders() == 1; }));
      CHECK(sent.load() == 3);
      CHECK(ch.try_recv() == std::optional<int>(1));
      sender.get();
      CHECK(sent.load() == 4);
      CHECK(ch.try_recv() == std::optional<int>(2));
      CHECK(ch.try_recv() == std::optional<int>(3));
      CHECK(ch.try_recv() == std::nullopt);
    }
  }

  TEST_CASE("channel: an empty channel blocks its receivers until a sender delivers") {
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : capacities) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<int> ch(capacity);
        corun::runtime rt(with_workers(workers));
        std::vector<corun::join_handle<std::optional<int>>> receivers;
        for (int i = 0; i < 3; ++i) {
          receivers.push_back(rt.spawn([](corun::channel<int>& c) -> task<std::optional<int>> {
            co_return co_await c.recv();
          }(ch)));
          // Queued one after the other, so the FIFO order of the wake-ups is known.
          REQUIRE(wait_until_true(
              [&, i] { return ch.waiting_receivers() == static_cast<std::size_t>(i) + 1; }));
        }
        for (auto& r : receivers) {
          CHECK_FALSE(r.done());
        }
        // A sender finding receivers hands the item over directly, even with capacity 0.
        for (int i = 0; i < 3; ++i) {
          CHECK(ch.try_send(10 + i) == try_send_result::sent);
        }
        CHECK(ch.size() == 0);
        for (int i = 0; i < 3; ++i) {
          CHECK(receivers[static_cast<std::size_t>(i)].get() == std::optional<int>(10 + i));
        }
      }
    }
  }

  TEST_CASE("channel: try_send and try_recv never wait and leave a refused item untouched") {
    corun::channel<std::unique_ptr<int>> ch(2);
    CHECK_FALSE(ch.try_recv().has_value());
    auto one = std::make_unique<int>(1);
    CHECK(ch.try_send(std::move(one)) == try_send_result::sent);
    CHECK(one == nullptr);  // NOLINT(bugprone-use-after-move): moved from because it was sent
    CHECK(ch.try_send(std::make_unique<int>(2)) == try_send_result::sent);
    auto three = std::make_unique<int>(3);
    CHECK(ch.try_send(std::move(three)) == try_send_result::full);
    REQUIRE(three != nullptr);  // NOLINT(bugprone-use-after-move): refused, so untouched
    CHECK(*three == 3);
    CHECK(ch.size() == 2);
    std::optional<std::unique_ptr<int>> got = ch.try_recv();
    REQUIRE(got.has_value());
    CHECK(**got == 1);
    CHECK(ch.try_send(std::move(three)) == try_send_result::sent);
    CHECK(ch.close());
    auto four = std::make_unique<int>(4);
    CHECK(ch.try_send(std::move(four)) == try_send_result::closed);
    CHECK(four != nullptr);  // NOLINT(bugprone-use-after-move): refused, so untouched
    CHECK(*ch.try_recv().value() == 2);
    CHECK(*ch.try_recv().value() == 3);
    CHECK_FALSE(ch.try_recv().has_value());

    // A copy for lvalues; a rendezvous channel takes an item only from a waiting receiver.
    corun::channel<std::string> rendezvous(0);
    const std::string text = "hello";
    CHECK(rendezvous.try_send(text) == try_send_result::full);
    CHECK_FALSE(rendezvous.try_recv().has_value());
    CHECK(rendezvous.size() == 0);
  }

  TEST_CASE("channel: a rendezvous send returns only once a receiver took its item") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::channel<std::unique_ptr<int>> ch(0);
      std::atomic<bool> returned{false};
      corun::runtime rt(with_workers(workers));
      auto sender = rt.spawn([&]() -> task<void> {
        co_await ch.send(std::make_unique<int>(7));
        returned.store(true);
      });
      REQUIRE(wait_until_true([&] { return ch.waiting_senders() == 1; }));
      CHECK_FALSE(returned.load());
      CHECK(ch.size() == 0);
      std::optional<std::unique_ptr<int>> got = ch.try_recv();
      REQUIRE(got.has_value());
      CHECK(**got == 7);
      sender.get();
      CHECK(returned.load());
    }
  }

  TEST_CASE("channel: move-only items pass through every capacity") {
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : capacities) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<std::unique_ptr<int>> ch(capacity);
        corun::runtime rt(with_workers(workers));
        const int sum = rt.block_on([&]() -> task<int> {
          auto producer = corun::spawn([&]() -> task<void> {
            for (int i = 1; i <= 100; ++i) {
              auto item = std::make_unique<int>(i);
              co_await ch.send(std::move(item));
            }
            ch.close();
          });
          int total = 0;
          int expected = 1;
          while (std::optional<std::unique_ptr<int>> item = co_await ch.recv()) {
            CHECK(**item == expected++);
            total += **item;
          }
          co_await producer;
          co_return total;
        }());
        CHECK(sum == 5050);
      }
    }
  }

  TEST_CASE("channel: close fails the waiting senders, drains, then ends the receivers") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::channel<int> ch(1);
      std::atomic<int> closed_sends{0};
      corun::runtime rt(with_workers(workers));
      CHECK(ch.try_send(1) == try_send_result::sent);
      std::vector<corun::join_handle<void>> senders;
      for (int i = 0; i < 3; ++i) {
        senders.push_back(rt.spawn([&, i]() -> task<void> {
          try {
            co_await ch.send(100 + i);
          } catch (const corun::channel_closed&) {
            closed_sends.fetch_add(1);
            throw;
          }
        }));
      }
      REQUIRE(wait_until_true([&] { return ch.waiting_senders() == 3; }));
      CHECK_FALSE(ch.is_closed());
      CHECK(ch.close());
      CHECK(ch.is_closed());
      CHECK_FALSE(ch.close());  // idempotent
      for (auto& s : senders) {
        CHECK_THROWS_AS(s.get(), corun::channel_closed);
      }
      CHECK(closed_sends.load() == 3);
      CHECK(ch.waiting_senders() == 0);
      // Their items were not delivered: only the one buffered before the close is there.
      CHECK(ch.size() == 1);
      rt.block_on([&]() -> task<void> {
        CHECK_THROWS_AS(co_await ch.send(5), corun::channel_closed);
        CHECK(co_await ch.recv() == std::optional<int>(1));
        CHECK(co_await ch.recv() == std::nullopt);
        CHECK(co_await ch.recv() == std::nullopt);
      }());
      CHECK(ch.try_send(6) == try_send_result::closed);
      CHECK(ch.try_recv() == std::nullopt);
    }
  }

  TEST_CASE("channel: close wakes every waiting receiver with an empty optional") {
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : capacities) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<int> ch(capacity);
        corun::runtime rt(with_workers(workers));
        std::vector<corun::join_handle<std::vector<int>>> receivers;
        for (int i = 0; i < 4; ++i) {
          receivers.push_back(rt.spawn(recv_all(ch)));
        }
        REQUIRE(wait_until_true([&] { return ch.waiting_receivers() == 4; }));
        ch.close();
        for (auto& r : receivers) {
          CHECK(r.get().empty());
        }
      }
    }
  }

  TEST_CASE("channel: close with an error rethrows it to every receiver after the items") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::channel<int> ch(4);
      corun::runtime rt(with_workers(workers));
      // A receiver waiting at the close gets the error too (the buffer was empty).
      auto early = rt.spawn([](corun::channel<int>& c) -> task<std::optional<int>> {
        co_return co_await c.recv();
      }(ch));
      REQUIRE(wait_until_true([&] { return ch.waiting_receivers() == 1; }));
      CHECK(ch.try_send(1) == try_send_result::sent);
      CHECK(early.get() == std::optional<int>(1));
      CHECK(ch.try_send(2) == try_send_result::sent);
      CHECK(ch.try_send(3) == try_send_result::sent);
      CHECK(ch.close(std::make_exception_ptr(test_error(42))));
      CHECK_FALSE(ch.close(std::make_exception_ptr(test_error(43))));  // the first close stays
      CHECK_FALSE(ch.close());
      rt.block_on([&]() -> task<void> {
        CHECK(co_await ch.recv() == std::optional<int>(2));
        CHECK(co_await ch.recv() == std::optional<int>(3));
        for (int i = 0; i < 2; ++i) {
          try {
            static_cast<void>(co_await ch.recv());
            FAIL("recv of a drained channel closed with an error returned");
          } catch (const test_error& e) {
            CHECK(e.id() == 42);
          }
        }
      }());
      CHECK_THROWS_AS(static_cast<void>(ch.try_recv()), test_error);

      corun::channel<int> waited(0);
      auto waiting = rt.spawn([](corun::channel<int>& c) -> task<std::optional<int>> {
        co_return co_await c.recv();
      }(waited));
      REQUIRE(wait_until_true([&] { return waited.waiting_receivers() == 1; }));
      waited.close(std::make_exception_ptr(test_error(7)));
      CHECK_THROWS_AS(static_cast<void>(waiting.get()), test_error);
    }
  }

  TEST_CASE("channel: many producers and consumers deliver every item exactly once, in order") {
    constexpr int producers = 4;
    constexpr int consumers = 3;
    const int per_producer = static_cast<int>(scaled(2000, 200));
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{8}}) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<int> ch(capacity);
        std::vector<std::atomic<int>> received(static_cast<std::size_t>(producers * per_producer));
        int out_of_order = 0;
        corun::runtime rt(with_workers(workers));
        rt.block_on([&]() -> task<void> {
          std::vector<corun::join_handle<std::vector<int>>> takers;
          for (int c = 0; c < consumers; ++c) {
            takers.push_back(corun::spawn(recv_all(ch)));
          }
          std::vector<corun::join_handle<void>> givers;
          for (int p = 0; p < producers; ++p) {
            givers.push_back(corun::spawn(send_range(ch, p * per_producer, per_producer)));
          }
          for (auto& g : givers) {
            co_await g;
          }
          ch.close();
          for (auto& t : takers) {
            const std::vector<int> got = co_await t;
            // One consumer sees each producer's items in the order they were sent.
            std::vector<int> last(producers, -1);
            for (const int item : got) {
              received[static_cast<std::size_t>(item)].fetch_add(1);
              int& previous = last[static_cast<std::size_t>(item / per_producer)];
              out_of_order += item > previous ? 0 : 1;
              previous = item;
            }
          }
        }());
        int wrong = 0;
        for (const auto& count : received) {
          wrong += count.load() == 1 ? 0 : 1;
        }
        CHECK(wrong == 0);
        CHECK(out_of_order == 0);
      }
    }
  }

  TEST_CASE("channel: a cancelled waiting sender throws cancelled and delivers nothing") {
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : capacities) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<int> ch(capacity);
        std::atomic<bool> cancelled{false};
        corun::runtime rt(with_workers(workers));
        for (std::size_t i = 0; i < capacity; ++i) {
          CHECK(ch.try_send(static_cast<int>(i)) == try_send_result::sent);
        }
        auto victim = rt.spawn([&]() -> task<void> {
          try {
            co_await ch.send(-1);
          } catch (const corun::cancelled&) {
            cancelled.store(true);
            throw;
          }
        });
        auto next = rt.spawn([&]() -> task<void> {
          co_await yield_until_true([&] { return ch.waiting_senders() == 1; });
          co_await ch.send(-2);
        });
        // Both queued, the victim first.
        REQUIRE(wait_until_true([&] { return ch.waiting_senders() == 2; }));
        victim.cancel("stop sending");
        CHECK_THROWS_AS(victim.get(), corun::task_cancelled);
        CHECK(cancelled.load());
        CHECK(ch.waiting_senders() == 1);
        // The buffered items, then the next sender's; the victim's -1 never appears.
        for (std::size_t i = 0; i < capacity; ++i) {
          CHECK(ch.try_recv() == std::optional<int>(static_cast<int>(i)));
        }
        if (capacity == 0) {
          CHECK(ch.try_recv() == std::optional<int>(-2));
        } else {
          REQUIRE(wait_until_done(next));
          CHECK(ch.try_recv() == std::optional<int>(-2));
        }
        next.get();
        CHECK(ch.try_recv() == std::nullopt);
      }
    }
  }

  TEST_CASE("channel: a cancelled waiting receiver throws cancelled and takes nothing") {
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : capacities) {
        CAPTURE(workers);
        CAPTURE(capacity);
        corun::channel<int> ch(capacity);
        corun::runtime rt(with_workers(workers));
        auto victim = rt.spawn([](corun::channel<int>& c) -> task<std::optional<int>> {
          co_return co_await c.recv();
        }(ch));
        REQUIRE(wait_until_true([&] { return ch.waiting_receivers() == 1; }));
        auto next = rt.spawn([](corun::channel<int>& c) -> task<std::optional<int>> {
          co_return co_await c.recv();
        }(ch));
        REQUIRE(wait_until_true([&] { return ch.waiting_receivers() == 2; }));
        victim.cancel("stop receiving");
        CHECK_THROWS_AS(static_cast<void>(victim.get()), corun::task_cancelled);
        CHECK(ch.waiting_receivers() == 1);
        CHECK(ch.try_send(5) == try_send_result::sent);
        CHECK(next.get() == std::optional<int>(5));
        CHECK(ch.size() == 0);
      }
    }
  }

  TEST_CASE("channel: an already cancelled task neither sends nor receives") {
    corun::channel<int> ch(4);
    std::atomic<int> threw{0};
    corun::runtime rt(with_workers(1));
    CHECK(ch.try_send(1) == try_send_result::sent);
    CHECK_THROWS_AS(rt.block_on([&]() -> task<void> {
      auto inner = corun::spawn([&]() -> task<void> {
        try {
          co_await corun::this_task::yield();  // the parent cancels us meanwhile
        } catch (const corun::cancelled&) {
          // ignored: the point is what send and recv do next
        }
        try {
          co_await ch.send(2);  // there is room
        } catch (const corun::cancelled&) {
          threw.fetch_add(1);
        }
        try {
          static_cast<void>(co_await ch.recv());  // there is an item
        } catch (const corun::cancelled&) {
          threw.fetch_add(1);
          throw;
        }
      });
      inner.cancel("no");
      co_await std::move(inner);
    }()),
                    corun::task_cancelled);
    CHECK(threw.load() == 2);
    CHECK(ch.size() == 1);
    CHECK(ch.try_recv() == std::optional<int>(1));
  }

  TEST_CASE("channel: a waiter the channel claimed completes although cancelled at once") {
    corun::channel<int> ch(1);
    std::atomic<bool> sent{false};
    std::atomic<bool> later_cancelled{false};
    std::optional<int> received;
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      CHECK(ch.try_send(1) == try_send_result::sent);
      auto sender = corun::spawn([&]() -> task<void> {
        co_await ch.send(2);
        sent.store(true);
        try {
          co_await corun::this_task::yield();
        } catch (const corun::cancelled&) {
          later_cancelled.store(true);
          throw;
        }
      });
      co_await yield_until_true([&] { return ch.waiting_senders() == 1; });
      // One worker, and we hold it: the sender cannot run between these two lines. The
      // receive claims it (its 2 moves into the buffer) before the cancel arrives.
      CHECK(ch.try_recv() == std::optional<int>(1));
      sender.cancel("too late");
      CHECK_THROWS_AS(co_await sender, corun::task_cancelled);
      CHECK(sent.load());
      CHECK(later_cancelled.load());
      CHECK(ch.try_recv() == std::optional<int>(2));

      auto receiver = corun::spawn([&]() -> task<void> {
        received = co_await ch.recv();
        co_await corun::this_task::yield();
      });
      co_await yield_until_true([&] { return ch.waiting_receivers() == 1; });
      CHECK(ch.try_send(3) == try_send_result::sent);
      receiver.cancel("too late");
      CHECK_THROWS_AS(co_await receiver, corun::task_cancelled);
    }());
    CHECK(received == std::optional<int>(3));
    CHECK(ch.size() == 0);
  }

  TEST_CASE("channel: a send claimed by close throws channel_closed, one claimed by cancel not") {
    corun::channel<int> ch(0);
    std::atomic<int> closed_then_cancelled{0};
    corun::runtime rt(with_workers(1));
    rt.block_on([&]() -> task<void> {
      auto first = corun::spawn([&]() -> task<void> {
        try {
          co_await ch.send(1);
        } catch (const corun::channel_closed&) {
          closed_then_cancelled.fetch_add(1);
        }
        co_await corun::this_task::yield();  // the cancel that lost the race shows here
      });
      co_await yield_until_true([&] { return ch.waiting_senders() == 1; });
      auto second = corun::spawn([&]() -> task<void> { co_await ch.send(2); });
      co_await yield_until_true([&] { return ch.waiting_senders() == 2; });
      // We hold the only worker: the cancel claims `second`, then close claims `first` only.
      second.cancel("cancel first");
      ch.close();
      first.cancel("close first");
      CHECK_THROWS_AS(co_await first, corun::task_cancelled);
      CHECK_THROWS_AS(co_await second, corun::task_cancelled);
    }());
    CHECK(closed_then_cancelled.load() == 1);
  }

  TEST_CASE("channel: outside a task, send and recv are logic_errors") {
    corun::channel<int> ch(1);
    auto sending = ch.send(1);
    CHECK_THROWS_AS(static_cast<void>(sending.await_ready()), std::logic_error);
    auto receiving = ch.recv();
    CHECK_THROWS_AS(static_cast<void>(receiving.await_ready()), std::logic_error);
    CHECK(ch.size() == 0);
  }
}
