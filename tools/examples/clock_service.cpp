// The seed's Clock service (frequenz-core ServiceBase, and the SDK's BackgroundService): a
// service printing the time at a fixed resolution, used first as an async context manager
// (`corun::with_service`), then started and stopped by hand.
#include "example_support.hpp"

#include <chrono>
#include <string>

using corun::task;
using corun_example::out;
using namespace std::chrono_literals;

namespace {

class clock_service final : public corun::service_base {
 public:
  explicit clock_service(std::chrono::milliseconds resolution, std::string unique_id = {})
      : service_base(std::move(unique_id)), m_resolution(resolution) {}

 private:
  task<void> main() override {
    for (;;) {
      co_await corun::sleep_for(m_resolution);
      out().say(unique_id() + ": tick");
    }
  }

  std::chrono::milliseconds m_resolution;
};

task<void> program() {
  out().start();
  {
    // As an async context manager. (5.5 s, not the seed's 5 s: at 5 s the fifth tick and the
    // end of the sleep would be one instant, in no fixed order.)
    clock_service clock(1s, "clock-with");
    task<void> run =
        corun::with_service(clock, []() -> task<void> { co_await corun::sleep_for(5500ms); });
    co_await std::move(run);
    out().say("clock-with: stopped");
  }
  // Manual start/stop (only if necessary, as cleanup is more complicated).
  clock_service clock(1s, "clock-manual");
  clock.start();
  co_await corun::sleep_for(5500ms);
  co_await clock.stop();
  out().say("clock-manual: stopped");
}

}  // namespace

int main(int argc, char** argv) { return corun_example::run_example(argc, argv, program); }
