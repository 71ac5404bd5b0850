/// \file
/// `task_group` (spawn, join, cancel, size, start, unjoined destruction) and `with_task_group`.
#include "support.hpp"

#include <atomic>
#include <memory>
#include <regex>
#include <set>
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

task<int> throw_at_start(int id) {
  throw test_error(id);
  co_return 0;
}

/// Yields until cancelled, counting the cancellations it saw.
task<void> cancellable_worker(std::atomic<int>& cancelled_count) {
  try {
    co_await yield_forever();
  } catch (const corun::cancelled&) {
    cancelled_count.fetch_add(1);
    throw;
  }
}

bool is_logic_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::logic_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

TEST_SUITE("group_task_group") {
  TEST_CASE("task_group join waits for every child and spawn returns working handles") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> finished{0};
      const int sum = rt.block_on([&]() -> task<int> {
        task_group g;
        auto a = g.spawn(value_of(1), {.name = "one"});
        auto b = g.spawn(
            [&](int v) -> task<int> {
              co_await yield_times(3);
              finished.fetch_add(1);
              co_return v;
            },
            2);
        for (int i = 0; i < 20; ++i) {
          (void)g.spawn(
              [&](int yields) -> task<void> {
                co_await yield_times(yields);
                finished.fetch_add(1);
              },
              i % 4);
        }
        CHECK(a.name() == "one");
        co_await g.join();
        CHECK(finished.load() == 21);  // all of them, not only those awaited
        CHECK(a.done());
        CHECK(b.done());
        co_return co_await a + co_await b;
      }());
      CHECK(sum == 3);
    }
  }

  TEST_CASE("task_group cancels the other children when one fails") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::atomic<int> seen_at_join{-1};
      std::multiset<int> ids;
      rt.block_on([&]() -> task<void> {
        task_group g;
        for (int i = 0; i < 5; ++i) {
          (void)g.spawn(cancellable_worker(cancelled_count));
        }
        (void)g.spawn(fail_after(5, 99));
        try {
          co_await g.join();
        } catch (const corun::exception_group& group) {
          ids = member_ids(group);
          seen_at_join = cancelled_count.load();
        }
      }());
      CHECK(ids == std::multiset<int>{99});
      // Every sibling had been cancelled and had finished unwinding before join() returned.
      CHECK(seen_at_join.load() == 5);
    }
  }

  TEST_CASE("task_group join throws an exception_group of exactly the failures") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::multiset<int> ids;
      std::size_t members = 0;
      int observed_id = 0;
      bool success_kept = false;
      rt.block_on([&]() -> task<void> {
        task_group g;
        (void)g.spawn(throw_at_start(1));
        (void)g.spawn(throw_at_start(2));
        auto observed = g.spawn(throw_at_start(3));  // observed here, still the group's
        (void)g.spawn(cancellable_worker(cancelled_count));
        auto fine = g.spawn(value_of(5));
        try {
          (void)co_await observed;
        } catch (const test_error& e) {
          observed_id = e.id();
        }
        try {
          co_await g.join();
        } catch (const corun::exception_group& group) {
          ids = member_ids(group);
          members = group.exceptions().size();
        }
        success_kept = co_await fine == 5;
      }());
      // They throw before their first suspension point, so cancellation cannot pre-empt any;
      // the cancelled child and the successful one do not appear.
      CHECK(ids == std::multiset<int>{1, 2, 3});
      CHECK(members == 3);
      CHECK(observed_id == 3);
      CHECK(success_kept);
      CHECK(cancelled_count.load() == 1);
    }
  }

  TEST_CASE("task_group children cancelled by the group do not appear in join") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      const bool all_cancelled = rt.block_on([&]() -> task<bool> {
        task_group g;
        std::vector<corun::join_handle<void>> handles;
        for (int i = 0; i < 4; ++i) {
          handles.push_back(g.spawn(cancellable_worker(cancelled_count)));
        }
        co_await yield_times(3);
        g.cancel("enough");
        co_await g.join();  // returns normally: the group cancelled them itself
        bool all = true;
        for (const auto& h : handles) {
          all = all && h.cancelled();
        }
        co_return all;
      }());
      CHECK(all_cancelled);
      CHECK(cancelled_count.load() == 4);
    }
  }

  TEST_CASE(
      "task_group spawn into a cancelled group starts the child cancelled and runs its "
      "cleanup") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> ran{false};
      std::atomic<bool> cleaned{false};
      std::atomic<bool> went_on{false};
      std::string message;
      const bool child_cancelled = rt.block_on([&]() -> task<bool> {
        task_group g;
        g.cancel("closed");
        // The owner checks its own chain at the new epoch (clean: the group is below it), so
        // the child cannot borrow that epoch as proof that its chain is clean.
        co_await corun::this_task::yield();
        auto h = g.spawn([&]() -> task<void> {
          ran = true;
          try {
            co_await corun::this_task::yield();
            went_on = true;
          } catch (const corun::cancelled& c) {
            message = c.message();
            cleaned = true;
            throw;
          }
        });
        co_await g.join();
        co_return h.cancelled();
      }());
      CHECK(ran.load());
      CHECK(cleaned.load());
      CHECK_FALSE(went_on.load());
      CHECK(message == "closed");
      CHECK(child_cancelled);
    }
  }

  TEST_CASE("task_group spawn after join throws logic_error") {
    corun::runtime rt(with_workers(2));
    bool threw = false;
    rt.block_on([&]() -> task<void> {
      task_group g;
      (void)g.spawn(value_of(1));
      co_await g.join();
      try {
        (void)g.spawn(value_of(2));
      } catch (const std::logic_error&) {
        threw = true;
      }
      CHECK(g.size() == 0);
    }());
    CHECK(threw);
  }

  TEST_CASE("task_group join twice throws logic_error") {
    corun::runtime rt(with_workers(2));
    bool threw = false;
    rt.block_on([&]() -> task<void> {
      task_group g;
      (void)g.spawn(value_of(1));
      co_await g.join();
      try {
        co_await g.join();
      } catch (const std::logic_error&) {
        threw = true;
      }
    }());
    CHECK(threw);
  }

  TEST_CASE("task_group join by a task that did not create the group throws logic_error") {
    corun::runtime rt(with_workers(2));
    bool threw = false;
    rt.block_on([&]() -> task<void> {
      task_group g;
      auto other = corun::spawn([&]() -> task<void> {
        try {
          co_await g.join();
        } catch (const std::logic_error&) {
          threw = true;
        }
      });
      co_await other;
      co_await g.join();
    }());
    CHECK(threw);
  }

  TEST_CASE("task_group spawn from outside the group's runtime throws logic_error") {
    corun::runtime rt(with_workers(2));
    corun::runtime other(with_workers(1));
    std::atomic<task_group*> shared{nullptr};
    std::atomic<bool> tried{false};
    auto h = rt.spawn([&]() -> task<void> {
      task_group g;
      (void)g.spawn(value_of(1));
      shared.store(&g, std::memory_order_release);
      co_await yield_until(tried);
      co_await g.join();
    });
    while (shared.load(std::memory_order_acquire) == nullptr) {
      std::this_thread::yield();
    }
    task_group& g = *shared.load(std::memory_order_acquire);
    CHECK_THROWS_AS((void)g.spawn(value_of(2)), std::logic_error);  // a plain thread
    const bool from_other = other.block_on([&]() -> task<bool> {
      try {
        (void)g.spawn(value_of(3));
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(from_other);
    tried.store(true, std::memory_order_release);
    h.get();
  }

  TEST_CASE(
      "task_group destroyed without join cancels its children and the task waits for "
      "them") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> order{0};
      std::atomic<int> child_done_at{-1};
      std::atomic<int> started{0};
      std::atomic<bool> body_went_on{false};

      /// Records, as late as possible in the child's life, when it finished.
      struct finish_recorder {
        std::atomic<int>& order;
        std::atomic<int>& at;
        ~finish_recorder() {
          for (int i = 0; i < 200; ++i) {
            std::this_thread::yield();  // a slow unwinding: a task not waiting for it would win
          }
          const int now = order.fetch_add(1);
          int seen = at.load();
          while (seen < now && !at.compare_exchange_weak(seen, now)) {
          }
        }
      };

      auto h = rt.spawn([&]() -> task<void> {
        {
          task_group g;
          for (int i = 0; i < 3; ++i) {
            (void)g.spawn([&]() -> task<void> {
              const finish_recorder recorder{order, child_done_at};
              started.fetch_add(1);
              co_await yield_forever();
            });
          }
          while (started.load() != 3) {
            co_await corun::this_task::yield();
          }
        }  // not joined: the children are cancelled; this task waits for them before completing
        body_went_on = true;
      });
      h.get();
      const int resolved_at = order.fetch_add(1);
      CHECK(body_went_on.load());
      CHECK(child_done_at.load() >= 0);
      CHECK(child_done_at.load() < resolved_at);
      CHECK(started.load() == 3);
    }
  }

  TEST_CASE("task_group destroyed without join hands its children's failures to its task") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      // A child that failed before the group was destroyed.
      auto early = rt.spawn([]() -> task<void> {
        task_group g;
        (void)g.spawn(throw_at_start(6));
        while (g.size() != 0) {
          co_await corun::this_task::yield();
        }
      });
      CHECK_THROWS_AS(early.get(), test_error);
      // A child that fails in its cleanup, after the group was destroyed.
      std::atomic<bool> running{false};
      auto late = rt.spawn([&]() -> task<void> {
        {
          task_group g;
          (void)g.spawn([&]() -> task<void> {
            try {
              running = true;
              co_await yield_forever();
            } catch (const corun::cancelled&) {
              // fails below instead of ending cancelled
            }
            throw test_error(7);
          });
          co_await yield_until(running);
        }
        co_return;
      });
      try {
        late.get();
        FAIL("the task should have failed with its group's failure");
      } catch (const test_error& e) {
        CHECK(e.id() == 7);
      }
    }
  }

  TEST_CASE(
      "task_group destroyed without join is logged on stderr in debug builds, with the "
      "number of children still running") {
    corun::runtime rt(with_workers(2));
    std::atomic<int> started{0};
    std::string running_owner;
    std::string completed_owner;
    stderr_capture capture;
    // Two children still running and one completed: only the two are counted as running.
    rt.block_on([&]() -> task<void> {
      running_owner = std::to_string(corun::this_task::id());
      task_group g;
      for (int i = 0; i < 2; ++i) {
        (void)g.spawn([&]() -> task<void> {
          started.fetch_add(1);
          co_await corun::this_task::sleep_forever();
        });
      }
      auto quick = g.spawn(value_of(1));
      while (started.load() != 2 || !quick.done()) {
        co_await corun::this_task::yield();
      }
    }());
    // Every child completed: nothing is cancelled, and the log does not claim otherwise.
    rt.block_on([&]() -> task<void> {
      completed_owner = std::to_string(corun::this_task::id());
      task_group g;
      auto quick = g.spawn(value_of(2));
      while (!quick.done()) {
        co_await corun::this_task::yield();
      }
    }());
    const std::string log = capture.finish();
    CAPTURE(log);
    const bool logged_running = std::regex_search(
        log, std::regex("corun: task #" + running_owner +
                        " destroyed task_group #[0-9]+ without join\\(\\): its 2 running children "
                        "are cancelled and the task waits for them\n"));
    const bool logged_completed = std::regex_search(
        log, std::regex("corun: task #" + completed_owner +
                        " destroyed task_group #[0-9]+ without join\\(\\): its 1 child had "
                        "already completed\n"));
#ifdef NDEBUG
    // Release builds say nothing (task_group.hpp: "Debug builds log it on stderr").
    CHECK(log.find("destroyed task_group") == std::string::npos);
    CHECK_FALSE(logged_running);
    CHECK_FALSE(logged_completed);
#else
    CHECK(logged_running);
    CHECK(logged_completed);
#endif
  }

  TEST_CASE("task_group size counts the children still running") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> release{false};
      std::vector<std::size_t> sizes;
      rt.block_on([&]() -> task<void> {
        task_group g;
        sizes.push_back(g.size());
        for (int i = 0; i < 3; ++i) {
          (void)g.spawn(yield_until(release));
        }
        sizes.push_back(g.size());
        auto quick = g.spawn(value_of(1));
        (void)co_await quick;
        sizes.push_back(g.size());
        release = true;
        co_await g.join();
        sizes.push_back(g.size());
      }());
      CHECK(sizes == std::vector<std::size_t>{0, 3, 3, 0});
    }
  }

  TEST_CASE("task_group children may spawn siblings into the group") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> leaves{0};
      rt.block_on([&]() -> task<void> {
        task_group g;
        // A binary tree of depth 6 spawned into the group by the group's own children.
        struct tree {
          static task<void> node(task_group& group, std::atomic<int>& count, int depth) {
            co_await corun::this_task::yield();
            if (depth == 0) {
              count.fetch_add(1);
              co_return;
            }
            (void)group.spawn(node(group, count, depth - 1));
            (void)group.spawn(node(group, count, depth - 1));
          }
        };
        (void)g.spawn(tree::node(g, leaves, 6));
        co_await g.join();
      }());
      CHECK(leaves.load() == 64);
    }
  }

  TEST_CASE("task_group failures of children that finished long before the join are kept") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::multiset<int> ids;
      rt.block_on([&]() -> task<void> {
        task_group g;
        // Enough children for the registry to be swept several times while they run.
        for (int i = 0; i < 300; ++i) {
          if (i == 40) {
            (void)g.spawn(throw_at_start(40));
          } else {
            (void)g.spawn(value_of(i));
          }
          if (i % 10 == 0) {
            co_await corun::this_task::yield();
          }
        }
        try {
          co_await g.join();
        } catch (const corun::exception_group& group) {
          ids = member_ids(group);
        }
      }());
      CHECK(ids == std::multiset<int>{40});
    }
  }

  TEST_CASE("task_group in a cancelled task cancels its children and join throws cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::atomic<bool> inside{false};
      std::atomic<int> seen{0};  // 1: cancelled, 2: something else
      auto h = rt.spawn([&]() -> task<void> {
        task_group g;
        for (int i = 0; i < 3; ++i) {
          (void)g.spawn(cancellable_worker(cancelled_count));
        }
        inside = true;
        try {
          co_await g.join();
        } catch (const corun::cancelled&) {
          seen = 1;
          throw;
        } catch (...) {
          seen = 2;
          throw;
        }
      });
      wait_for_flag(inside);
      h.cancel("stop");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(seen.load() == 1);
      CHECK(cancelled_count.load() == 3);
    }
  }

  TEST_CASE("task_group join in a task joined inline lets that joiner see its cancellation") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const watchdog dog("task_group join wake-up");  // a lost wake-up hangs: abort instead
      std::atomic<bool> inside{false};
      std::atomic<bool> release{false};
      std::atomic<bool> parent_woken{false};
      auto h = rt.spawn([&]() -> task<void> {
        // With one worker the parent runs this child inline, on its own stack.
        auto child = corun::spawn([&]() -> task<void> {
          task_group g;
          (void)g.spawn([&]() -> task<void> {
            while (!release.load()) {
              try {
                co_await corun::this_task::yield();
              } catch (const corun::cancelled&) {
                // ignores the request until the parent has been woken
              }
            }
          });
          inside = true;
          co_await g.join();
        });
        try {
          co_await child;
        } catch (const corun::cancelled&) {
          parent_woken = true;  // before its child finished: the join left the stack properly
          release = true;
          throw;
        }
      });
      wait_for_flag(inside);
      h.cancel("stop");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(parent_woken.load());
    }
  }

  TEST_CASE("task_group start in a task joined inline lets that joiner see its cancellation") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      const watchdog dog("task_group start wake-up");  // a lost wake-up hangs: abort instead
      std::atomic<bool> inside{false};
      std::atomic<bool> release{false};
      std::atomic<bool> parent_woken{false};
      auto h = rt.spawn([&]() -> task<void> {
        auto child = corun::spawn([&]() -> task<void> {
          task_group g;
          inside = true;
          co_await g.start([&](task_status<>& status) -> task<void> {
            while (!release.load()) {
              try {
                co_await corun::this_task::yield();
              } catch (const corun::cancelled&) {
                // ignores the request until the parent has been woken
              }
            }
            status.started();
          });
          co_await g.join();
        });
        try {
          co_await child;
        } catch (const corun::cancelled&) {
          parent_woken = true;
          release = true;
          throw;
        }
      });
      wait_for_flag(inside);
      h.cancel("stop");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(parent_woken.load());
    }
  }

  TEST_CASE(
      "task_group start returns the value passed to started while the child keeps "
      "running") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> release{false};
      std::atomic<bool> child_finished{false};
      int value = 0;
      bool finished_at_start = true;
      rt.block_on([&]() -> task<void> {
        task_group g;
        // Moved into the child's frame, so it must outlive this statement. (A named callable:
        // g++ 12 destroys a prvalue argument of a co_await full-expression twice.)
        auto serve = [&, p = std::make_unique<int>(42)](task_status<int>& status) -> task<void> {
          co_await corun::this_task::yield();
          status.started(*p);
          co_await yield_until(release);
          CHECK(*p == 42);
          child_finished = true;
        };
        value = co_await g.start<int>(std::move(serve));
        finished_at_start = child_finished.load();
        CHECK(g.size() == 1);
        release = true;
        co_await g.join();
      }());
      CHECK(value == 42);
      CHECK_FALSE(finished_at_start);
      CHECK(child_finished.load());
    }
  }

  TEST_CASE("task_group start of void returns once started is called") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> steps{0};
      int steps_at_start = -1;
      rt.block_on([&]() -> task<void> {
        task_group g;
        co_await g.start([&](task_status<>& status) -> task<void> {
          steps = 1;
          status.started();
          co_await corun::this_task::yield();
          steps = 2;
        });
        steps_at_start = steps.load();
        co_await g.join();
      }());
      CHECK(steps_at_start >= 1);
      CHECK(steps.load() == 2);
    }
  }

  TEST_CASE("task_group start throws a failure before started to its caller, not to the group") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> release{false};
      int thrown = 0;
      bool join_threw = true;
      bool sibling_ok = false;
      rt.block_on([&]() -> task<void> {
        task_group g;
        auto sibling = g.spawn([&]() -> task<int> {
          co_await yield_until(release);
          co_return 1;
        });
        try {
          (void)co_await g.start<int>([](task_status<int>&) -> task<void> {
            co_await corun::this_task::yield();
            throw test_error(7);
          });
        } catch (const test_error& e) {
          thrown = e.id();
        }
        release = true;  // the sibling was not cancelled: it finishes normally
        try {
          co_await g.join();
          join_threw = false;
        } catch (...) {
          join_threw = true;
        }
        sibling_ok = co_await sibling == 1;
      }());
      CHECK(thrown == 7);
      CHECK_FALSE(join_threw);
      CHECK(sibling_ok);
    }
  }

  TEST_CASE("task_group start throws logic_error when the task returns without started") {
    corun::runtime rt(with_workers(2));
    bool threw = false;
    bool join_threw = true;
    rt.block_on([&]() -> task<void> {
      task_group g;
      try {
        co_await g.start([](task_status<>&) -> task<void> { co_await corun::this_task::yield(); });
      } catch (const std::logic_error&) {
        threw = true;
      }
      co_await g.join();
      join_threw = false;
    }());
    CHECK(threw);
    CHECK_FALSE(join_threw);
  }

  TEST_CASE("task_group start: calling started twice throws logic_error in the child") {
    corun::runtime rt(with_workers(2));
    int value = 0;
    bool second_was_logic_error = false;
    rt.block_on([&]() -> task<void> {
      task_group g;
      value = co_await g.start<int>([](task_status<int>& status) -> task<void> {
        status.started(1);
        co_await corun::this_task::yield();
        status.started(2);  // throws: a failure after started() is the group's
      });
      try {
        co_await g.join();
      } catch (const corun::exception_group& group) {
        second_was_logic_error =
            group.exceptions().size() == 1 && is_logic_error(group.exceptions().front());
      }
    }());
    CHECK(value == 1);
    CHECK(second_was_logic_error);
  }

  TEST_CASE("task_group start of a child cancelled before started throws task_cancelled") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      bool got_task_cancelled = false;
      rt.block_on([&]() -> task<void> {
        task_group g;
        g.cancel("not now");
        try {
          co_await g.start([](task_status<>& status) -> task<void> {
            co_await corun::this_task::yield();
            status.started();
          });
        } catch (const corun::task_cancelled& e) {
          got_task_cancelled = std::string(e.what()).find("not now") != std::string::npos;
        }
        co_await g.join();
      }());
      CHECK(got_task_cancelled);
    }
  }

  TEST_CASE("with_task_group returns the body's value after every child finished") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> finished{0};
      std::atomic<bool> release{false};
      std::size_t size_in_body = 0;
      const int value = rt.block_on([&]() -> task<int> {
        const int v = co_await corun::with_task_group([&](task_group& g) -> task<int> {
          for (int i = 0; i < 2; ++i) {
            (void)g.spawn([&]() -> task<void> {
              co_await yield_until(release);
              co_await yield_times(10);
              finished.fetch_add(1);
            });
          }
          size_in_body = g.size();  // the body itself is not counted
          release = true;
          co_return 7;
        });
        CHECK(finished.load() == 2);
        co_return v;
      }());
      CHECK(value == 7);
      CHECK(size_in_body == 2);
    }
  }

  TEST_CASE("with_task_group body throwing cancels the children and its error comes first") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::vector<int> members;
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& g) -> task<void> {
            (void)g.spawn(cancellable_worker(cancelled_count));
            (void)g.spawn(cancellable_worker(cancelled_count));
            (void)g.spawn(throw_at_start(4));  // fails whatever happens
            throw test_error(3);
            co_return;
          });
        } catch (const corun::exception_group& group) {
          for (const auto& e : group.exceptions()) {
            members.push_back(test_error_id(e));
          }
        }
      }());
      CHECK(members == std::vector<int>{3, 4});
      CHECK(cancelled_count.load() == 2);
    }
  }

  TEST_CASE("with_task_group body throwing alone is still an exception_group") {
    corun::runtime rt(with_workers(2));
    std::vector<int> members;
    rt.block_on([&]() -> task<void> {
      try {
        (void)co_await corun::with_task_group([](task_group&) -> task<int> {
          co_await corun::this_task::yield();
          throw test_error(5);
        });
      } catch (const corun::exception_group& group) {
        for (const auto& e : group.exceptions()) {
          members.push_back(test_error_id(e));
        }
      }
    }());
    CHECK(members == std::vector<int>{5});
  }

  TEST_CASE("with_task_group child failure interrupts the body") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<bool> body_cancelled{false};
      std::multiset<int> ids;
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& g) -> task<void> {
            (void)g.spawn(fail_after(3, 9));
            try {
              co_await yield_forever();
            } catch (const corun::cancelled&) {
              body_cancelled = true;
              throw;
            }
          });
        } catch (const corun::exception_group& group) {
          ids = member_ids(group);  // the body's cancellation is not a failure
        }
        corun::this_task::checkpoint();  // the caller was not cancelled
      }());
      CHECK(body_cancelled.load());
      CHECK(ids == std::multiset<int>{9});
    }
  }

  TEST_CASE("with_task_group body cancelled with its caller propagates cancelled unwrapped") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::atomic<bool> inside{false};
      std::atomic<int> seen{0};  // 1: cancelled, 2: exception_group, 3: other
      auto h = rt.spawn([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& g) -> task<void> {
            (void)g.spawn(cancellable_worker(cancelled_count));
            (void)g.spawn(cancellable_worker(cancelled_count));
            inside = true;
            co_await yield_forever();
          });
        } catch (const corun::cancelled& c) {
          seen = c.message() == "outer" ? 1 : 3;
          throw;
        } catch (const corun::exception_group&) {
          seen = 2;
          throw;
        } catch (...) {
          seen = 3;
          throw;
        }
      });
      wait_for_flag(inside);
      h.cancel("outer");
      CHECK_THROWS_AS(h.get(), corun::task_cancelled);
      CHECK(seen.load() == 1);
      CHECK(cancelled_count.load() == 2);
    }
  }

  TEST_CASE("with_task_group body cancelled on its own propagates its cancelled unwrapped") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::string message;
      bool went_on = false;
      rt.block_on([&]() -> task<void> {
        try {
          co_await corun::with_task_group([&](task_group& g) -> task<void> {
            (void)g.spawn(cancellable_worker(cancelled_count));
            g.cancel("from the body");
            co_await yield_forever();
          });
        } catch (const corun::cancelled& c) {
          message = c.message();
        }
        co_await yield_times(2);  // the caller itself is not cancelled
        went_on = true;
      }());
      CHECK(message == "from the body");
      CHECK(cancelled_count.load() == 1);
      CHECK(went_on);
    }
  }

  TEST_CASE("with_task_group body cancelling the group and returning ends it quietly") {
    corun::runtime rt(with_workers(4));
    std::atomic<int> cancelled_count{0};
    const int value = rt.block_on([&]() -> task<int> {
      co_return co_await corun::with_task_group([&](task_group& g) -> task<int> {
        (void)g.spawn(cancellable_worker(cancelled_count));
        (void)g.spawn(cancellable_worker(cancelled_count));
        co_await corun::this_task::yield();
        g.cancel("done");
        co_return 3;
      });
    }());
    CHECK(value == 3);
    CHECK(cancelled_count.load() == 2);
  }

  TEST_CASE("task_group nested groups propagate failures outward and cancel inward") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      std::atomic<int> cancelled_count{0};
      std::multiset<int> leaves;
      bool nested_kept = false;
      rt.block_on([&]() -> task<void> {
        task_group outer;
        (void)outer.spawn(cancellable_worker(cancelled_count));
        (void)outer.spawn([&]() -> task<void> {
          co_await corun::with_task_group([&](task_group& inner) -> task<void> {
            (void)inner.spawn(cancellable_worker(cancelled_count));
            (void)inner.spawn(fail_after(2, 8));
            co_await yield_forever();
          });
        });
        try {
          co_await outer.join();
        } catch (const corun::exception_group& group) {
          leaves = leaf_ids(group);
          try {
            std::rethrow_exception(group.exceptions().at(0));
          } catch (const corun::exception_group&) {
            nested_kept = group.exceptions().size() == 1;
          } catch (...) {
          }
        }
      }());
      CHECK(leaves == std::multiset<int>{8});
      CHECK(nested_kept);
      CHECK(cancelled_count.load() == 2);
    }
  }
}
