// The seed's PersistentTaskGroup example (frequenz-core): two tasks print every 1 s and every
// 11 s, a third fails every 5 s and is restarted each time it crashes; runs until stopped
// (Ctrl+C, or --run-for). Any other failure would leave the loop and end the program.
#include "example_support.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

using corun::task;
using corun_example::out;
using namespace std::chrono_literals;

namespace {

task<void> print_every(std::chrono::seconds period, std::string name) {
  for (;;) {
    co_await corun::sleep_for(period);
    out().say(name + ": tick");
  }
}

task<void> fail_after(std::chrono::seconds delay) {
  co_await corun::sleep_for(delay);
  throw std::runtime_error("I failed");
}

task<void> program() {
  out().start();
  // `async with PersistentTaskGroup() as group`: destroying the group cancels its tasks, and
  // this task does not complete before they did.
  corun::persistent_task_group group("example");
  (void)group.spawn(print_every(1s, "print_1"), {.name = "print_1"});
  (void)group.spawn(print_every(11s, "print_11"), {.name = "print_11"});
  corun::task_handle failing = group.spawn(fail_after(5s), {.name = "fail_5"});

  auto done = group.as_completed();
  while (std::optional<corun::task_handle> t = co_await done.next()) {
    try {
      t->rethrow();
    } catch (const std::runtime_error& error) {
      if (t->id() != failing.id()) {
        throw;
      }
      out().say(t->name() + " failed: " + error.what() + "; restarting it");
      failing = group.spawn(fail_after(5s), {.name = "fail_5"});
    }
  }
}

}  // namespace

int main(int argc, char** argv) { return corun_example::run_example(argc, argv, program); }
