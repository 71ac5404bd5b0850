// The seed's MultiTaskService (frequenz-core ServiceBase, multi-task example): a service whose
// main spawns two printers and a task that fails every 5 s, restarts that one, and re-raises
// any other failure; used as an async context manager for 11 s.
#include "example_support.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

using corun::task;
using corun_example::out;
using namespace std::chrono_literals;

namespace {

class multi_task_service final : public corun::service_base {
 public:
  using service_base::service_base;

 private:
  static task<void> print_every(std::chrono::seconds period, std::string name) {
    for (;;) {
      co_await corun::sleep_for(period);
      out().say(name + ": tick");
    }
  }
  static task<void> fail_after(std::chrono::seconds delay) {
    co_await corun::sleep_for(delay);
    throw std::runtime_error("I failed");
  }

  // clang-tidy 14 holds every function named `main` to the program's main's no-throw rule;
  // a service's main may throw by design (the failure is the service's).
  // NOLINTNEXTLINE(bugprone-exception-escape)
  task<void> main() override {
    (void)spawn(print_every(1s, "print_1"), {.name = "print_1"});
    (void)spawn(print_every(11s, "print_11"), {.name = "print_11"});
    corun::task_handle failing = spawn(fail_after(5s), {.name = "fail_5"});
    auto done = task_group().as_completed();
    while (std::optional<corun::task_handle> t = co_await done.next()) {
      try {
        t->rethrow();
      } catch (const std::runtime_error& error) {
        if (t->id() != failing.id()) {
          throw;
        }
        out().say(t->name() + " failed: " + error.what() + "; restarting it");
        failing = spawn(fail_after(5s), {.name = "fail_5"});
      }
    }
  }
};

task<void> program() {
  out().start();
  multi_task_service service("multi");
  // 11.5 s, not the seed's 11 s: at 11 s both printers and the end of the sleep would be one
  // instant, in no fixed order.
  task<void> run =
      corun::with_service(service, []() -> task<void> { co_await corun::sleep_for(11500ms); });
  co_await std::move(run);
  out().say("multi: stopped");
}

}  // namespace

int main(int argc, char** argv) { return corun_example::run_example(argc, argv, program); }
