/// \file
/// `task_local<T>`: per-task values, copied from the spawner at spawn time.
#include "support.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using corun::task;
using namespace corun_test;

namespace {

corun::task_local<std::string> g_request_id{"none"};
corun::task_local<int> g_depth{0};

task<std::string> read_request_id() { co_return g_request_id.get(); }

task<void> set_request_id(std::string id) {
  g_request_id.set(std::move(id));
  co_return;
}

}  // namespace

TEST_SUITE("task_local") {
  TEST_CASE("task_local: the default outside a task, set outside a task is a logic_error") {
    CHECK(g_request_id.get() == "none");
    CHECK_THROWS_AS(g_request_id.set("x"), std::logic_error);
  }

  TEST_CASE("task_local: set and get inside a task, the default before") {
    corun::runtime rt(with_workers(2));
    auto h = rt.spawn([]() -> task<std::string> {
      std::string before = g_request_id.get();
      g_request_id.set("r-1");
      co_await corun::this_task::yield();  // may resume on another worker: the value follows
      co_return before + "/" + g_request_id.get();
    });
    CHECK(h.get() == "none/r-1");
  }

  TEST_CASE("task_local: a spawned task starts with a copy of its spawner's values") {
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      auto h = rt.spawn([]() -> task<std::vector<std::string>> {
        g_request_id.set("parent");
        auto child = corun::spawn([]() -> task<std::string> {
          const std::string inherited = g_request_id.get();
          co_await corun::this_task::yield();
          const std::string after_parent_set = g_request_id.get();
          g_request_id.set("child");
          co_await corun::this_task::yield();
          std::string seen = inherited;
          seen.append(",").append(after_parent_set).append(",").append(g_request_id.get());
          co_return seen;
        });
        g_request_id.set("parent-later");  // the child keeps what it started with
        const std::string from_child = co_await child;
        co_return std::vector<std::string>{from_child, g_request_id.get()};
      });
      const std::vector<std::string> got = h.get();
      CHECK(got[0] == "parent,parent,child");
      CHECK(got[1] == "parent-later");  // the child's set did not leak back
    }
  }

  TEST_CASE("task_local: a task awaited inline shares the awaiting task's values") {
    corun::runtime rt(with_workers(1));
    auto h = rt.spawn([]() -> task<std::string> {
      g_request_id.set("outer");
      const std::string seen = co_await read_request_id();
      co_await set_request_id("set-inside");
      co_return seen + "," + g_request_id.get();
    });
    CHECK(h.get() == "outer,set-inside");
  }

  TEST_CASE("task_local: a root task spawned from a task inherits, one from outside does not") {
    corun::runtime rt(with_workers(2));
    auto outer = rt.spawn([](corun::runtime& r) -> task<std::string> {
      g_request_id.set("spawner");
      auto root = r.spawn(read_request_id());
      co_return co_await root;
    }(rt));
    CHECK(outer.get() == "spawner");
    CHECK(rt.spawn(read_request_id()).get() == "none");
  }

  TEST_CASE("task_local: many tasks on many workers each see their own chain of values") {
    corun::runtime rt(with_workers(4));
    auto h = rt.spawn([]() -> task<int> {
      // A tree 3 levels deep: each task adds one to the depth it inherited.
      struct node {
        static task<int> run(int level) {
          g_depth.set(g_depth.get() + 1);
          if (level == 0) {
            co_await corun::this_task::yield();
            co_return g_depth.get();
          }
          std::vector<corun::join_handle<int>> kids;
          for (int i = 0; i < 4; ++i) {
            kids.push_back(corun::spawn(run(level - 1)));
          }
          int sum = 0;
          for (auto& k : kids) {
            sum += co_await k;
          }
          co_return sum;
        }
      };
      co_return co_await node::run(3);
    });
    CHECK(h.get() == 64 * 4);  // 64 leaves, each at depth 4
  }
}
