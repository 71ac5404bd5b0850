/// \file
/// `runtime::dump_tasks` and `dump_tasks_json`: the live task tree.
#include "support.hpp"

#include <chrono>
#include <sstream>
#include <string>
#include <thread>

using corun::task;
using namespace corun_test;

namespace {

corun::runtime_options tracking(std::size_t workers) {
  corun::runtime_options options = with_workers(workers);
  options.track_tasks = true;
  options.name = "dumped";
  return options;
}

std::string text_dump(const corun::runtime& rt) {
  std::ostringstream out;
  rt.dump_tasks(out);
  return out.str();
}

std::string json_dump(const corun::runtime& rt) {
  std::ostringstream out;
  rt.dump_tasks_json(out);
  return out.str();
}

/// Dumps until `pred(dump)` holds (the tree changes while tasks run); bounded, never a timing
/// assertion: a dump that never matches fails after a minute.
template <class Dump, class Pred>
std::string dump_until(Dump dump, Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  std::string last;
  do {
    last = dump();
    if (pred(last)) {
      break;
    }
    std::this_thread::yield();
  } while (std::chrono::steady_clock::now() < give_up);
  return last;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_SUITE("trace_dump_tasks") {
  TEST_CASE("dump_tasks: says so when tracking is off") {
    corun::runtime rt(with_workers(1));
    CHECK(text_dump(rt) ==
          "corun runtime 'corun': task tracking is off (runtime_options::track_tasks)\n");
    CHECK(json_dump(rt) == "{\"tracking\":false}\n");
  }

  TEST_CASE("dump_tasks: the tree with names, parents and what each task awaits") {
    corun::runtime rt(tracking(2));
    std::atomic<bool> release{false};
    auto server = rt.spawn(
        [](std::atomic<bool>& r) -> task<void> {
          auto a = corun::spawn(yield_until(r), corun::spawn_options{.name = "worker-a"});
          auto b = corun::spawn(yield_until(r), corun::spawn_options{.name = "worker-b"});
          co_await b;
          co_await a;
        }(release),
        corun::spawn_options{.name = "server"});
    const std::string id = std::to_string(server.id());
    const std::string text =
        dump_until([&] { return text_dump(rt); },
                   [&](const std::string& d) {
                     return contains(d, "3 live tasks") && contains(d, "'server' [awaiting task #");
                   });
    CHECK(contains(text, "corun runtime 'dumped': 3 live tasks\n"));
    CHECK(contains(text, "task #" + id + " 'server' [awaiting task #"));
    CHECK(contains(text, "\n  task #"));  // the workers are indented under the server
    CHECK(contains(text, "'worker-a' ["));
    CHECK(contains(text, "'worker-b' ["));

    const std::string json = json_dump(rt);
    CHECK(contains(json, "\"name\":\"server\",\"parent\":null"));
    CHECK(contains(json, "\"name\":\"worker-a\",\"parent\":" + id + ","));
    CHECK(contains(json, "\"name\":\"worker-b\",\"parent\":" + id + ","));
    release.store(true);
    server.get();
    const std::string after =
        dump_until([&] { return text_dump(rt); },
                   [](const std::string& d) { return contains(d, ": 0 live tasks"); });
    CHECK(after == "corun runtime 'dumped': 0 live tasks\n");
  }

  TEST_CASE("dump_tasks: JSON escapes names") {
    corun::runtime rt(tracking(1));
    std::atomic<bool> release{false};
    auto h = rt.spawn(yield_until(release), corun::spawn_options{.name = "a\"b\\c\nd"});
    const std::string json = dump_until([&] { return json_dump(rt); },
                                        [](const std::string& d) { return contains(d, "\"id\""); });
    CHECK(contains(json, "\"name\":\"a\\\"b\\\\c\\nd\""));
    release.store(true);
    h.get();
  }

  TEST_CASE("dump_tasks: dumping while tasks spawn and complete is safe") {
    corun::runtime rt(tracking(4));
    std::atomic<bool> done{false};
    auto h = rt.spawn([](std::atomic<bool>& d) -> task<void> {
      for (int round = 0; round < 50; ++round) {
        std::vector<corun::join_handle<void>> kids;
        for (int i = 0; i < 40; ++i) {
          kids.push_back(corun::spawn(yield_times(i % 3)));
        }
        for (auto& k : kids) {
          co_await k;
        }
      }
      d.store(true);
    }(done));
    int dumps = 0;
    while (!done.load()) {
      const std::string text = text_dump(rt);
      CHECK(contains(text, "live task"));
      ++dumps;
    }
    h.get();
    CHECK(dumps > 0);
  }
}
