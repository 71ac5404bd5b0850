/// \file
/// `merge`: every value exactly once with each source's order kept, concurrency of the sources,
/// early destruction, failures and cancellation.
#include "corun/merge.hpp"

#include "support.hpp"

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

using corun::async_generator;
using corun::task;
using namespace corun_test;

namespace {

/// A value of a merge: which source, and its position in that source.
struct tagged {
  int source;
  int index;
};

/// Yields `(source, 0) .. (source, count - 1)`, letting other tasks run every `yield_every`
/// values (never, if 0).
async_generator<tagged> numbered(int source, int count, int yield_every) {
  for (int i = 0; i < count; ++i) {
    if (yield_every != 0 && i % yield_every == 0) {
      co_await corun::this_task::yield();
    }
    co_yield tagged{source, i};
  }
}

/// Yields `source` forever, yielding to other tasks between values; counts its live frames and
/// the cancellations it saw.
async_generator<int> forever(int source, std::atomic<int>& alive, std::atomic<int>& cancels) {
  const alive_guard guard(alive);
  try {
    for (;;) {
      co_await corun::this_task::yield();
      co_yield source;
    }
  } catch (const corun::cancelled&) {
    cancels.fetch_add(1);
    throw;
  }
}

/// Checks that `values` holds `0 .. counts[s] - 1` of every source `s`, each in order.
void check_exactly_once_in_order(const std::vector<tagged>& values,
                                 const std::vector<int>& counts) {
  std::vector<int> next(counts.size(), 0);
  for (const tagged& v : values) {
    REQUIRE(v.source >= 0);
    REQUIRE(static_cast<std::size_t>(v.source) < counts.size());
    CHECK(v.index == next[static_cast<std::size_t>(v.source)]);
    ++next[static_cast<std::size_t>(v.source)];
  }
  CHECK(next == counts);
}

task<std::vector<tagged>> collect(async_generator<tagged> gen) {
  std::vector<tagged> values;
  while (std::optional<tagged> v = co_await gen.next()) {
    values.push_back(*v);
  }
  co_return values;
}

}  // namespace

TEST_SUITE("sync_merge") {
  TEST_CASE("merge: delivers every value of every source exactly once, each source in order") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const std::vector<tagged> three = rt.block_on(
          collect(corun::merge(numbered(0, 100, 1), numbered(1, 50, 0), numbered(2, 200, 7))));
      check_exactly_once_in_order(three, {100, 50, 200});

      std::vector<async_generator<tagged>> sources;
      std::vector<int> counts;
      for (int s = 0; s < 16; ++s) {
        counts.push_back(20 * s);  // source 0 is empty
        sources.push_back(numbered(s, 20 * s, s % 4));
      }
      const std::vector<tagged> many = rt.block_on(collect(corun::merge(std::move(sources))));
      check_exactly_once_in_order(many, counts);
    }
  }

  TEST_CASE("merge: of no sources, or of empty ones, is empty") {
    corun::runtime rt(with_workers(2));
    CHECK(rt.block_on(collect(corun::merge(std::vector<async_generator<tagged>>{}))).empty());
    CHECK(rt.block_on(collect(corun::merge(numbered(0, 0, 0), numbered(1, 0, 1)))).empty());
  }

  TEST_CASE("merge: moves move-only values through") {
    corun::runtime rt(with_workers(2));
    auto boxes = [](int first) -> async_generator<std::unique_ptr<int>> {
      for (int i = first; i < first + 10; ++i) {
        co_yield std::make_unique<int>(i);
      }
    };
    const int sum = rt.block_on([](async_generator<std::unique_ptr<int>> merged) -> task<int> {
      int total = 0;
      while (auto box = co_await merged.next()) {
        REQUIRE(*box != nullptr);
        total += **box;
      }
      co_return total;
    }(corun::merge(boxes(0), boxes(100))));
    CHECK(sum == 45 + 1045);
  }

  TEST_CASE("merge: drives its sources concurrently, a blocked source holds nobody back") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::async_event release;
      corun::runtime rt(with_workers(workers));
      // Source 0 yields once, then waits for an event that the consumer sets only after it has
      // received every value of source 1: without concurrent sources this would never end.
      auto blocked = [](corun::async_event& e) -> async_generator<tagged> {
        co_yield tagged{0, 0};
        co_await e.wait();
        co_yield tagged{0, 1};
      };
      const std::vector<tagged> values = rt.block_on(
          [](async_generator<tagged> merged, corun::async_event& e) -> task<std::vector<tagged>> {
            std::vector<tagged> got;
            int from_fast = 0;
            while (std::optional<tagged> v = co_await merged.next()) {
              got.push_back(*v);
              if (v->source == 1 && ++from_fast == 30) {
                CHECK_FALSE(e.is_set());
                e.set();
              }
            }
            co_return got;
          }(corun::merge(blocked(release), numbered(1, 30, 3)), release));
      check_exactly_once_in_order(values, {2, 30});
      REQUIRE_FALSE(values.empty());
      CHECK(values.back().source == 0);  // released only after the fast source was drained
    }
  }

  TEST_CASE("merge: merges nest") {
    corun::runtime rt(with_workers(4));
    const std::vector<tagged> values = rt.block_on(
        collect(corun::merge(corun::merge(numbered(0, 30, 2), numbered(1, 30, 0)),
                             corun::merge(numbered(2, 30, 5), corun::merge(numbered(3, 30, 1))))));
    check_exactly_once_in_order(values, {30, 30, 30, 30});
  }

  TEST_CASE("merge: destroying it early cancels its sources, the consuming task awaits them") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<int> cancels{0};
      corun::runtime rt(with_workers(workers));
      auto consumer = rt.spawn([&]() -> task<int> {
        int received = 0;
        {
          async_generator<int> merged = corun::merge(
              forever(0, alive, cancels), forever(1, alive, cancels), forever(2, alive, cancels));
          while (received < 20) {
            REQUIRE((co_await merged.next()).has_value());
            ++received;
          }
        }  // the merged generator is destroyed here, its sources still producing
        co_return received;
      });
      CHECK(consumer.get() == 20);
      // The consuming task completed, so its children (the sources' drivers) had completed.
      CHECK(alive.load() == 0);
      CHECK(cancels.load() <= 3);
    }
  }

  TEST_CASE("merge: a source's exception ends it, the others are cancelled, next() rethrows") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<int> cancels{0};
      corun::runtime rt(with_workers(workers));
      auto failing = [](std::atomic<int>& live) -> async_generator<int> {
        const alive_guard guard(live);
        for (int i = 0; i < 5; ++i) {
          co_await corun::this_task::yield();
          co_yield 100;
        }
        throw test_error(42);
      };
      rt.block_on([](async_generator<int> merged, std::atomic<int>& live) -> task<void> {
        int caught = -1;
        int from_failing = 0;
        try {
          while (std::optional<int> v = co_await merged.next()) {
            from_failing += *v == 100 ? 1 : 0;
          }
        } catch (const test_error& e) {
          caught = e.id();
          // The other sources were cancelled and awaited before next() threw.
          CHECK(live.load() == 0);
        }
        CHECK(caught == 42);
        CHECK(from_failing <= 5);
        CHECK_FALSE((co_await merged.next()).has_value());  // ended
      }(corun::merge(forever(0, alive, cancels), failing(alive), forever(2, alive, cancels)),
                                                                          alive));
      CHECK(alive.load() == 0);
      CHECK(cancels.load() <= 2);  // a source suspended at a co_yield is just destroyed
    }
  }

  TEST_CASE("merge: a cancelled consumer gets cancelled from next(), its task awaits the sources") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<int> cancels{0};
      std::atomic<int> received{0};
      std::atomic<bool> threw{false};
      corun::runtime rt(with_workers(workers));
      auto consumer = rt.spawn([&]() -> task<void> {
        async_generator<int> merged =
            corun::merge(forever(0, alive, cancels), forever(1, alive, cancels));
        try {
          while ((co_await merged.next()).has_value()) {  // the only suspension point
            received.fetch_add(1);
          }
        } catch (const corun::cancelled&) {
          threw.store(true);
          throw;
        }
      });
      while (received.load() < 10) {
        std::this_thread::yield();
      }
      consumer.cancel("enough");
      CHECK_THROWS_AS(consumer.get(), corun::task_cancelled);
      CHECK(threw.load());
      CHECK(alive.load() == 0);  // the sources' drivers are children of the consumer
    }
  }

  TEST_CASE(
      "merge: a consumer cancelled while it waits in next() sees cancelled once the sources "
      "ended") {
    // One worker: once the consumer has the first value it calls next() at once, and nothing
    // else runs before it waits there; then the second source cancels it.
    std::atomic<int> alive{0};
    std::atomic<bool> got_first{false};
    std::atomic<bool> handle_set{false};
    std::optional<corun::task_handle> consumer_handle;
    corun::runtime rt(with_workers(1));
    auto sleeper = [](std::atomic<int>& live) -> async_generator<int> {
      const alive_guard guard(live);
      co_yield 0;
      co_await corun::this_task::sleep_forever();
    };
    auto canceller = [](std::atomic<int>& live, std::atomic<bool>& first, std::atomic<bool>& set,
                        std::optional<corun::task_handle>& victim) -> async_generator<int> {
      const alive_guard guard(live);
      co_await yield_until(first);
      co_await yield_until(set);
      victim->cancel("from a source");
      co_await corun::this_task::sleep_forever();
      co_yield 1;
    };
    auto consumer = rt.spawn([&]() -> task<void> {
      async_generator<int> merged =
          corun::merge(sleeper(alive), canceller(alive, got_first, handle_set, consumer_handle));
      CHECK(co_await merged.next() == std::optional<int>(0));
      got_first.store(true);
      try {
        static_cast<void>(co_await merged.next());
      } catch (const corun::cancelled&) {
        CHECK(alive.load() == 0);  // the merge cancelled and awaited its sources first
        throw;
      }
    });
    consumer_handle = consumer;
    handle_set.store(true);
    CHECK_THROWS_AS(consumer.get(), corun::task_cancelled);
    CHECK(alive.load() == 0);
    consumer_handle.reset();  // no handle outlives the runtime
  }

  TEST_CASE(
      "merge: children cancelled under a consumer that is not make next() throw task_cancelled") {
    // The children belong to the task that started the merge; the rest is consumed in a
    // shielded task, which that task's cancellation does not reach.
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      std::atomic<bool> handed_over{false};
      std::atomic<bool> saw_task_cancelled{false};
      corun::runtime rt(with_workers(workers));
      auto sleeper = [](std::atomic<int>& live) -> async_generator<int> {
        const alive_guard guard(live);
        co_yield 0;
        co_await corun::this_task::sleep_forever();
      };
      auto starter = rt.spawn([&]() -> task<void> {
        async_generator<int> merged = corun::merge(sleeper(alive), sleeper(alive));
        CHECK(co_await merged.next() == std::optional<int>(0));
        handed_over.store(true);
        co_await corun::shield([](async_generator<int> rest, std::atomic<bool>& saw) -> task<void> {
          try {
            while ((co_await rest.next()).has_value()) {
            }
          } catch (const corun::task_cancelled&) {
            saw.store(true);
            throw;
          }
        }(std::move(merged), saw_task_cancelled));
      });
      wait_for_flag(handed_over);
      starter.cancel("stop the sources");
      CHECK_THROWS_AS(starter.get(), corun::task_cancelled);
      CHECK(saw_task_cancelled.load());
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("merge: early ends racing the hand-offs keep each source's order and leave nothing") {
    const int rounds = static_cast<int>(scaled(200, 20));
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      corun::runtime rt(with_workers(workers));
      auto counting = [](int source, std::atomic<int>& live) -> async_generator<tagged> {
        const alive_guard guard(live);
        for (int i = 0;; ++i) {
          if (i % 3 == source % 3) {
            co_await corun::this_task::yield();
          }
          co_yield tagged{source, i};
        }
      };
      for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        const int wanted = round % 37;
        auto consumer = rt.spawn([&, wanted]() -> task<void> {
          std::vector<async_generator<tagged>> sources;
          for (int s = 0; s < 4; ++s) {
            sources.push_back(counting(s, alive));
          }
          async_generator<tagged> merged = corun::merge(std::move(sources));
          std::vector<int> next(4, 0);
          for (int i = 0; i < wanted; ++i) {
            std::optional<tagged> v = co_await merged.next();
            REQUIRE(v.has_value());
            CHECK(v->index == next[static_cast<std::size_t>(v->source)]++);
          }
        });
        if (round % 2 == 1) {
          consumer.cancel("racing");  // may land anywhere, or after the end
        }
        try {
          consumer.get();
        } catch (const corun::task_cancelled&) {
          CHECK(round % 2 == 1);
        }
        CHECK(alive.load() == 0);
      }
    }
  }

  TEST_CASE("merge: consumed to its end, it leaves no source behind") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      std::atomic<int> alive{0};
      corun::runtime rt(with_workers(workers));
      auto guarded = [](int source, int count, std::atomic<int>& live) -> async_generator<tagged> {
        const alive_guard guard(live);
        for (int i = 0; i < count; ++i) {
          co_yield tagged{source, i};
          co_await corun::this_task::yield();
        }
      };
      rt.block_on([](async_generator<tagged> merged, std::atomic<int>& live) -> task<void> {
        std::vector<tagged> values;
        while (std::optional<tagged> v = co_await merged.next()) {
          values.push_back(*v);
        }
        CHECK(live.load() == 0);  // every source was destroyed before the end was reported
        check_exactly_once_in_order(values, {10, 20, 5});
      }(corun::merge(guarded(0, 10, alive), guarded(1, 20, alive), guarded(2, 5, alive)), alive));
    }
  }
}
