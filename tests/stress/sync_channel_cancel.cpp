/// \file
/// `channel<T>` under random cancellation: 20,000 distinct items flow from several producers
/// through a small channel to several consumers, while producers and consumers are cancelled at
/// random (from a foreign thread) and replaced. A producer whose send threw `cancelled` gives its
/// item back to a retry pool, so every item is eventually delivered by exactly one send; at the
/// end every item was received exactly once. A cancelled send that had delivered its item anyway
/// would show as an item received twice, a recv that took an item and threw `cancelled` (or a
/// lost hand-off) as an item never received, and a lost wake-up as a hang (the watchdog).
///
/// The chaos thread paces the flow with a second channel, of permits: a producer receives one
/// permit per fresh item, so the cancels keep pace with the items however the threads are
/// scheduled, and nobody spins while waiting. Permits are received under cancellation too: a
/// lost permit would leave an item never sent.
#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

/// What the producers, consumers and the chaos thread share. Lives longer than the runtime.
struct flow {
  flow(std::size_t items, std::size_t capacity)
      : ch(capacity), permits(items), delivered(items), received(items) {}

  /// An item given back by a cancelled producer, if any.
  [[nodiscard]] bool take_given_back(int& item) {
    const std::lock_guard lock(retry_lock);
    if (retry.empty()) {
      return false;
    }
    item = retry.back();
    retry.pop_back();
    return true;
  }
  void give_back(int item) {
    const std::lock_guard lock(retry_lock);
    retry.push_back(item);
  }
  [[nodiscard]] std::size_t given_back() {
    const std::lock_guard lock(retry_lock);
    return retry.size();
  }

  /// Items are move-only, so that every move inside the channel is a real one (ASan sees a
  /// double move as a null dereference, a lost item as a leak).
  corun::channel<std::unique_ptr<int>> ch;
  /// One permit per fresh item, sent by the chaos thread; closed when all were sent.
  corun::channel<int> permits;
  std::vector<std::atomic<int>> delivered;  // per item: sends that returned
  std::vector<std::atomic<int>> received;   // per item: recvs that returned it
  std::atomic<std::uint64_t> delivered_total{0};
  std::atomic<std::uint64_t> received_total{0};
  std::atomic<std::uint64_t> items_given_back{0};
  std::atomic<std::uint64_t> recvs_cancelled{0};
  std::atomic<int> next{0};  // fresh items handed out, one per permit
  std::mutex retry_lock;
  std::vector<int> retry;  // guarded by retry_lock
};

task<void> producer(flow& f, unsigned seed) {
  std::minstd_rand rng(seed);
  for (;;) {
    int item = 0;
    if (!f.take_given_back(item)) {
      const std::optional<int> permit = co_await f.permits.recv();
      if (!permit && !f.take_given_back(item)) {
        co_return;  // every fresh item was handed out and none is waiting to be sent again
      }
      if (permit) {
        item = f.next.fetch_add(1);
      }
    }
    try {
      if (rng() % 8 == 0) {
        co_await corun::this_task::yield();
      }
      co_await f.ch.send(std::make_unique<int>(item));
    } catch (const corun::cancelled&) {
      f.items_given_back.fetch_add(1);
      f.give_back(item);  // not delivered: another producer sends it
      throw;
    }
    f.delivered[static_cast<std::size_t>(item)].fetch_add(1);
    f.delivered_total.fetch_add(1);
  }
}

task<void> consumer(flow& f, unsigned seed) {
  std::minstd_rand rng(seed);
  for (;;) {
    std::optional<std::unique_ptr<int>> item;
    try {
      item = co_await f.ch.recv();
    } catch (const corun::cancelled&) {
      f.recvs_cancelled.fetch_add(1);
      throw;
    }
    if (!item) {
      co_return;  // closed and drained
    }
    // No suspension point between the recv and the count: a returned item is counted.
    f.received[static_cast<std::size_t>(**item)].fetch_add(1);
    f.received_total.fetch_add(1);
    if (rng() % 8 == 0) {
      co_await corun::this_task::yield();
    }
  }
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("channel: items survive producers and consumers cancelled at random") {
    const std::size_t items = scaled(20'000, 2'000);
    constexpr std::size_t producers = 4;
    constexpr std::size_t consumers = 4;
    watchdog dog("channel cancel storm");
    for (const std::size_t workers : worker_counts) {
      for (const std::size_t capacity : {std::size_t{0}, std::size_t{2}, std::size_t{8}}) {
        CAPTURE(workers);
        CAPTURE(capacity);
        const std::string config =
            "workers " + std::to_string(workers) + ", capacity " + std::to_string(capacity);
        dog.progress(config + ": start");
        flow f(items, capacity);
        std::mt19937 rng(static_cast<unsigned>(workers * 131 + capacity));
        unsigned seeds = 0;
        std::uint64_t cancels = 0;
        corun::runtime rt(with_workers(workers));
        std::vector<corun::join_handle<void>> sending;
        std::vector<corun::join_handle<void>> receiving;
        for (std::size_t i = 0; i < producers; ++i) {
          sending.push_back(rt.spawn(producer(f, ++seeds)));
        }
        for (std::size_t i = 0; i < consumers; ++i) {
          receiving.push_back(rt.spawn(consumer(f, ++seeds)));
        }
        // Chaos for three quarters of the items. Each step lets a few more items flow,
        // sometimes waits until they were all received or given back (then the consumers wait
        // in recv and the producers for permits), and cancels a random producer or consumer,
        // starting its replacement at once; the cancelled ones are joined in batches. The cancels
        // hit tasks waiting in send, in recv, and at the moment of a hand-off.
        std::vector<corun::join_handle<void>> dying;
        const auto bury = [&] {
          for (auto& d : dying) {
            try {
              d.get();  // it may also have ended on its own first
            } catch (const corun::task_cancelled&) {
            }
          }
          dying.clear();
        };
        std::size_t granted = 0;
        const auto grant = [&](std::size_t count) {
          for (; count > 0 && granted < items; --count, ++granted) {
            REQUIRE(f.permits.try_send(1) == corun::try_send_result::sent);
          }
        };
        while (granted < items * 3 / 4) {
          grant(rng() % 16);
          if (rng() % 4 == 0) {
            // Items given back wait for the next permit's producer: they do not flow now.
            while (f.received_total.load() + f.given_back() < granted) {
              std::this_thread::yield();
            }
          }
          const bool hit_producer = rng() % 2 == 0;
          std::vector<corun::join_handle<void>>& pool = hit_producer ? sending : receiving;
          corun::join_handle<void>& victim = pool[rng() % pool.size()];
          victim.cancel("chaos");
          dying.push_back(std::move(victim));
          victim = rt.spawn(hit_producer ? producer(f, ++seeds) : consumer(f, ++seeds));
          ++cancels;
          if (dying.size() == 32) {
            bury();
            dog.progress(config + ": cancel " + std::to_string(cancels) + ", " +
                         std::to_string(f.delivered_total.load()) + " delivered");
          }
        }
        bury();
        // Calm: the rest flows; items given back by the last cancelled producers get another.
        grant(items);
        f.permits.close();
        for (auto& p : sending) {
          p.get();
        }
        while (f.given_back() > 0) {
          rt.spawn(producer(f, ++seeds)).get();
        }
        dog.progress(config + ": every item sent");
        CHECK(f.next.load() == static_cast<int>(items));  // no permit was lost
        CHECK(f.delivered_total.load() == items);
        f.ch.close();
        for (auto& c : receiving) {
          c.get();
        }
        dog.progress(config + ": drained");
        CHECK(f.received_total.load() == items);
        CHECK(f.ch.size() == 0);
        std::size_t undelivered = 0;
        std::size_t lost = 0;
        std::size_t duplicated = 0;
        for (std::size_t i = 0; i < items; ++i) {
          const int sent = f.delivered[i].load();
          const int got = f.received[i].load();
          undelivered += sent == 1 ? 0 : 1;
          lost += got < sent ? 1 : 0;
          duplicated += got > sent ? 1 : 0;
        }
        CHECK(undelivered == 0);
        CHECK(lost == 0);
        CHECK(duplicated == 0);
        MESSAGE(config << ": " << cancels << " cancels, " << f.items_given_back.load()
                       << " items given back, " << f.recvs_cancelled.load() << " recvs cancelled");
      }
    }
  }
}
