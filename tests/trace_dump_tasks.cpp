/// \file
/// `runtime::dump_tasks` and `dump_tasks_json`: the live task tree.
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

using corun::task;
using corun::task_group;
using namespace corun_test;

namespace {

corun::runtime_options tracking(std::size_t workers) {
  corun::runtime_options options = with_workers(workers);
  options.track_tasks = true;
  options.name = "dumped";
  return options;
}

/// Yields until `count` has grown past the value it had when called: the caller's state is then
/// certain to have been seen by at least one whole step of the thread that counts.
task<void> yield_until_more(const std::atomic<int>& count) {
  const int start = count.load();
  while (count.load() <= start + 1) {
    co_await corun::this_task::yield();
  }
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

/// The line of `text` that contains `part` (empty if none).
std::string line_with(const std::string& text, const std::string& part) {
  const std::size_t at = text.find(part);
  if (at == std::string::npos) {
    return {};
  }
  const std::size_t begin = text.rfind('\n', at) + 1;  // npos + 1 == 0: the first line
  return text.substr(begin, text.find('\n', at) - begin);
}

/// The number that follows `marker` in `text`; 0 if there is none (or it is `null`).
std::uint64_t number_after(const std::string& text, const std::string& marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string::npos) {
    return 0;
  }
  return std::strtoull(text.c_str() + at + marker.size(), nullptr, 10);
}

/// The object of the JSON dump that describes the task named `name` (empty if none). Names in
/// these tests hold no braces.
std::string json_task(const std::string& json, const std::string& name) {
  const std::size_t at = json.find("\"name\":\"" + name + "\"");
  if (at == std::string::npos) {
    return {};
  }
  const std::size_t begin = json.rfind('{', at);
  return json.substr(begin, json.find('}', at) - begin + 1);
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
    std::atomic<std::uint64_t> awaited_id{0};
    auto server = rt.spawn(
        [](std::atomic<bool>& r, std::atomic<std::uint64_t>& awaited) -> task<void> {
          auto a = corun::spawn(yield_until(r), corun::spawn_options{.name = "worker-a"});
          auto b = corun::spawn(yield_until(r), corun::spawn_options{.name = "worker-b"});
          awaited.store(b.id());
          co_await b;
          co_await a;
        }(release, awaited_id),
        corun::spawn_options{.name = "server"});
    const std::string id = std::to_string(server.id());
    const std::string awaiting = "'server' [awaiting task #";
    const std::string text = dump_until(
        [&] { return text_dump(rt); },
        [&](const std::string& d) { return contains(d, "3 live tasks") && contains(d, awaiting); });
    const std::string b_id = std::to_string(awaited_id.load());
    CHECK(contains(text, "corun runtime 'dumped': 3 live tasks\n"));
    CHECK(contains(text, "task #" + id + " " + awaiting + b_id + "]\n"));
    CHECK(contains(text, "\n  task #" + b_id + " 'worker-b' ["));  // indented under the server
    CHECK(contains(text, "\n  task #"));
    CHECK(contains(text, "'worker-a' ["));

    const std::string json = json_dump(rt);
    CHECK(contains(json, "\"name\":\"server\",\"parent\":null,\"group\":null,"));
    CHECK(number_after(json_task(json, "server"), "\"awaiting\":") == awaited_id.load());
    CHECK(contains(json, "{\"id\":" + b_id + ",\"name\":\"worker-b\",\"parent\":" + id + ","));
    CHECK(contains(json, "\"name\":\"worker-a\",\"parent\":" + id + ","));
    CHECK(contains(json, "\"groups\":[]"));
    release.store(true);
    server.get();
    const std::string after =
        dump_until([&] { return text_dump(rt); },
                   [](const std::string& d) { return contains(d, ": 0 live tasks"); });
    CHECK(after == "corun runtime 'dumped': 0 live tasks\n");
  }

  TEST_CASE(
      "dump_tasks: group members are listed under their group, with the same group ids in the "
      "text and the JSON") {
    corun::runtime rt(tracking(2));
    std::atomic<bool> release{false};
    auto server = rt.spawn(
        [](std::atomic<bool>& r) -> task<void> {
          task_group outer;
          (void)outer.spawn(yield_until(r), corun::spawn_options{.name = "member-a"});
          (void)outer.spawn(
              corun::spawn_options{.name = "member-b"},
              [](std::atomic<bool>& r2) -> task<void> {
                task_group inner;  // a group owned by a member of the outer one
                (void)inner.spawn(yield_until(r2), corun::spawn_options{.name = "nested"});
                co_await inner.join();
              },
              std::ref(r));
          co_await outer.join();
        }(release),
        corun::spawn_options{.name = "server"});
    const std::string text =
        dump_until([&] { return text_dump(rt); },
                   [](const std::string& d) {
                     return contains(d, "4 live tasks") && contains(d, "'nested'");
                   });
    const std::string json = json_dump(rt);  // ids are stable: the same tasks, later
    CAPTURE(text);
    CAPTURE(json);

    const std::uint64_t server_id = server.id();
    const std::string a_line = line_with(text, "'member-a'");
    const std::string b_line = line_with(text, "'member-b'");
    const std::string nested_line = line_with(text, "'nested'");
    const std::uint64_t a_id = number_after(a_line, "task #");
    const std::uint64_t b_id = number_after(b_line, "task #");
    const std::uint64_t nested_id = number_after(nested_line, "task #");
    const std::uint64_t outer_id = number_after(a_line, "(in group #");
    const std::uint64_t inner_id = number_after(nested_line, "(in group #");
    REQUIRE(outer_id != 0);
    REQUIRE(inner_id != 0);
    CHECK(number_after(b_line, "(in group #") == outer_id);
    CHECK(inner_id != outer_id);
    CHECK(line_with(text, "'server'").find("in group") == std::string::npos);

    // The tree: server, its group, the members, the nested group under member-b, its member.
    const std::string outer = std::to_string(outer_id);
    const std::string inner = std::to_string(inner_id);
    CHECK(contains(text, "\ntask #" + std::to_string(server_id) + " 'server' ["));
    CHECK(contains(text, "\n  group #" + outer + "\n"));
    CHECK(contains(text, "\n    task #" + std::to_string(a_id) + " 'member-a' ["));
    CHECK(contains(text, "\n    task #" + std::to_string(b_id) + " 'member-b' ["));
    CHECK(contains(text, "\n      group #" + inner + "\n"));
    CHECK(contains(text, "\n        task #" + std::to_string(nested_id) + " 'nested' ["));

    // The JSON names the same groups and parents.
    const std::string a_json = json_task(json, "member-a");
    const std::string b_json = json_task(json, "member-b");
    const std::string nested_json = json_task(json, "nested");
    CHECK(number_after(a_json, "\"id\":") == a_id);
    CHECK(number_after(b_json, "\"id\":") == b_id);
    CHECK(number_after(nested_json, "\"id\":") == nested_id);
    CHECK(number_after(a_json, "\"group\":") == outer_id);
    CHECK(number_after(b_json, "\"group\":") == outer_id);
    CHECK(number_after(nested_json, "\"group\":") == inner_id);
    CHECK(number_after(a_json, "\"parent\":") == server_id);  // the group's owner
    CHECK(number_after(nested_json, "\"parent\":") == b_id);
    CHECK(contains(a_json, "\"in_group\":true"));
    CHECK(contains(json_task(json, "server"), "\"group\":null,\"in_group\":false"));
    const std::string outer_members = a_id < b_id
                                          ? std::to_string(a_id) + "," + std::to_string(b_id)
                                          : std::to_string(b_id) + "," + std::to_string(a_id);
    CHECK(contains(json, "{\"id\":" + outer + ",\"owner\":" + std::to_string(server_id) +
                             ",\"members\":[" + outer_members + "]}"));
    CHECK(contains(json, "{\"id\":" + inner + ",\"owner\":" + std::to_string(b_id) +
                             ",\"members\":[" + std::to_string(nested_id) + "]}"));

    release.store(true);
    server.get();
    const std::string after =
        dump_until([&] { return json_dump(rt); },
                   [](const std::string& d) { return contains(d, "\"tasks\":[]"); });
    CHECK(after == "{\"untracked\":0,\"tasks\":[],\"groups\":[]}\n");
  }

  TEST_CASE(
      "dump_tasks: a task waiting in task_group::join, when_all or with_task_group shows it "
      "joins a group, and runs again afterwards") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(tracking(workers));
      std::atomic<bool> release{false};
      std::atomic<bool> joined{false};
      std::atomic<bool> finish{false};
      auto joiner = rt.spawn(
          [](std::atomic<bool>& r, std::atomic<bool>& j, std::atomic<bool>& f) -> task<void> {
            task_group g;
            (void)g.spawn(yield_until(r), corun::spawn_options{.name = "held"});
            co_await g.join();
            j.store(true);
            while (!f.load()) {
              std::this_thread::yield();  // running, not suspended: nothing left to show
            }
          }(release, joined, finish),
          corun::spawn_options{.name = "joiner"});
      auto gatherer = rt.spawn(
          [](std::atomic<bool>& r) -> task<void> {
            static_cast<void>(co_await corun::when_all(yield_until(r), yield_until(r)));
          }(release),
          corun::spawn_options{.name = "gatherer"});
      auto scoped = rt.spawn(
          [](std::atomic<bool>& r) -> task<void> {
            co_await corun::with_task_group([&r](task_group& g) -> task<void> {
              (void)g.spawn(yield_until(r));
              co_return;
            });
          }(release),
          corun::spawn_options{.name = "scoped"});
      const std::string joining = " [joining a task group]\n";
      const std::string text = dump_until([&] { return text_dump(rt); },
                                          [&](const std::string& d) {
                                            return contains(d, "'joiner'" + joining) &&
                                                   contains(d, "'gatherer'" + joining) &&
                                                   contains(d, "'scoped'" + joining);
                                          });
      CAPTURE(text);
      CHECK(contains(text, "task #" + std::to_string(joiner.id()) + " 'joiner'" + joining));
      CHECK(contains(text, "task #" + std::to_string(gatherer.id()) + " 'gatherer'" + joining));
      CHECK(contains(text, "task #" + std::to_string(scoped.id()) + " 'scoped'" + joining));
      const std::string json = json_dump(rt);
      CAPTURE(json);
      CHECK(contains(json_task(json, "joiner"),
                     "\"state\":\"joining a task group\",\"awaiting\":null}"));
      release.store(true);
      // Past the join the joiner runs without suspending: the join left no state behind.
      REQUIRE(wait_until_set(joined));
      CHECK(line_with(text_dump(rt), "'joiner'").find("[runnable or running]") !=
            std::string::npos);
      finish.store(true);
      joiner.get();
      gatherer.get();
      scoped.get();
    }
  }

  TEST_CASE("dump_tasks: a task waiting in task_group::start shows the task it starts") {
    for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
      CAPTURE(workers);
      corun::runtime rt(tracking(workers));
      std::atomic<bool> release{false};
      std::atomic<bool> back{false};
      std::atomic<bool> finish{false};
      auto starter = rt.spawn(
          [](std::atomic<bool>& r, std::atomic<bool>& b, std::atomic<bool>& f) -> task<int> {
            task_group g;
            const int value =
                co_await g.start<int>([&r](corun::task_status<int>& status) -> task<void> {
                  co_await yield_until(r);  // held before started()
                  status.started(7);
                });
            b.store(true);
            while (!f.load()) {
              std::this_thread::yield();  // running, not suspended: nothing left to show
            }
            co_await g.join();
            co_return value;
          }(release, back, finish),
          corun::spawn_options{.name = "starter"});
      const std::string starting = "'starter' [starting task #";
      const std::string text =
          dump_until([&] { return text_dump(rt); },
                     [&](const std::string& d) { return contains(d, starting); });
      CAPTURE(text);
      const std::string starter_line = line_with(text, starting);
      const std::uint64_t child_id = number_after(starter_line, starting);
      REQUIRE(child_id != 0);
      CHECK(contains(text, "task #" + std::to_string(starter.id()) + " " + starting +
                               std::to_string(child_id) + "]\n"));
      // The started task is the group's member, listed under the starter.
      const std::string child_line = line_with(text, "task #" + std::to_string(child_id) + " ");
      CHECK(child_line.rfind("    task #", 0) == 0);
      CHECK(child_line.find("(in group #") != std::string::npos);
      const std::string json = json_dump(rt);
      CAPTURE(json);
      const std::string starter_json = json_task(json, "starter");
      CHECK(contains(starter_json, "\"state\":\"starting\""));
      CHECK(number_after(starter_json, "\"awaiting\":") == child_id);
      release.store(true);
      // Back from start() the starter runs without suspending: start left no state behind.
      REQUIRE(wait_until_set(back));
      CHECK(line_with(text_dump(rt), "'starter'").find("[runnable or running]") !=
            std::string::npos);
      finish.store(true);
      CHECK(starter.get() == 7);
    }
  }

  TEST_CASE("dump_tasks: a persistent group's tasks are listed under its host task") {
    corun::runtime rt(tracking(2));
    std::atomic<bool> release{false};
    auto server = rt.spawn(
        [](std::atomic<bool>& r) -> task<void> {
          corun::persistent_task_group pool("pool");  // its host task is a child of this one
          (void)pool.spawn(yield_until(r), corun::spawn_options{.name = "worker"});
          co_await yield_until(r);
          co_await pool.stop();
        }(release),
        corun::spawn_options{.name = "server"});
    const std::string text =
        dump_until([&] { return text_dump(rt); },
                   [](const std::string& d) { return contains(d, "'pool:worker'"); });
    const std::string json = json_dump(rt);
    CAPTURE(text);
    CAPTURE(json);
    const std::uint64_t host_id = number_after(line_with(text, "'pool' ["), "task #");
    const std::uint64_t worker_id = number_after(line_with(text, "'pool:worker'"), "task #");
    REQUIRE(host_id != 0);
    REQUIRE(worker_id != 0);
    // Not a root task: the worker is indented under the host, the host under the server.
    CHECK(contains(text, "\ntask #" + std::to_string(server.id()) + " 'server' ["));
    CHECK(contains(text, "\n  task #" + std::to_string(host_id) + " 'pool' ["));
    CHECK(contains(text, "\n    task #" + std::to_string(worker_id) + " 'pool:worker' ["));
    CHECK(number_after(json_task(json, "pool:worker"), "\"parent\":") == host_id);
    CHECK(number_after(json_task(json, "pool"), "\"parent\":") == server.id());
    release.store(true);
    server.get();
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
    std::atomic<int> dumps{0};
    auto h = rt.spawn([](std::atomic<bool>& d, std::atomic<int>& dumped) -> task<void> {
      for (int round = 0; round < 50; ++round) {
        std::vector<corun::join_handle<void>> kids;
        for (int i = 0; i < 40; ++i) {
          kids.push_back(corun::spawn(yield_times(i % 3)));
        }
        if (round == 0 || round == 25) {
          co_await yield_until_more(dumped);  // some dumps surely overlap live children
        }
        for (auto& k : kids) {
          co_await k;
        }
      }
      d.store(true);
    }(done, dumps));
    while (!done.load()) {
      const std::string text = text_dump(rt);
      CHECK(contains(text, "live task"));
      dumps.fetch_add(1);
    }
    h.get();
  }

  TEST_CASE("dump_tasks: dumping while groups open, fill and close is safe") {
    corun::runtime rt(tracking(4));
    std::atomic<bool> done{false};
    std::atomic<int> dumps{0};
    auto h = rt.spawn([](std::atomic<bool>& d, std::atomic<int>& dumped) -> task<void> {
      for (int round = 0; round < 30; ++round) {
        task_group g;
        for (int i = 0; i < 8; ++i) {
          (void)g.spawn([](int yields) -> task<void> {
            task_group nested;
            (void)nested.spawn(yield_times(yields));
            co_await nested.join();
          }(i % 3));
        }
        if (round == 0 || round == 15) {
          co_await yield_until_more(dumped);  // some dumps surely overlap open groups
        }
        co_await g.join();
      }
      d.store(true);
    }(done, dumps));
    while (!done.load()) {
      // Each dump reads the groups of the tasks it copies while those groups close and go.
      CHECK(contains(text_dump(rt), "live task"));
      CHECK(contains(json_dump(rt), "\"groups\":["));
      dumps.fetch_add(1);
    }
    h.get();
  }
}
