// The Q&A seed's Ctrl+C cleanup: "exit the program with ctrl+c and await the close coroutine".
// In asyncio the KeyboardInterrupt lands outside the loop and the cleanup needs a second
// run_until_complete; with `corun::run_until_signal` the first Ctrl+C (or SIGTERM) cancels the
// main task, which awaits its async cleanup in place. A second Ctrl+C, or 10 s passing, ends the
// program at once.
//
// Exit status: 0 when main finished by itself, 130 (128 + SIGINT, what a shell reports for a
// program killed by Ctrl+C) after a cleanup that a signal started.
#include "example_support.hpp"

#include <chrono>
#include <exception>
#include <string>

using corun::task;
using corun_example::out;
using namespace std::chrono_literals;

namespace {

/// The resource's async close (the seed's `close()`: prints, then takes a second).
task<void> close() {
  out().say("Finalizing...");
  co_await corun::sleep_for(1s);
}

task<int> program() {
  out().start();
  out().say("Started, press Ctrl+C");
  bool interrupted = false;
  try {
    co_await corun::sleep_for(10s);
  } catch (const corun::cancelled& why) {
    // No co_await in a handler (C++): note it, clean up below.
    interrupted = true;
    out().say("cancelled by " + why.message());
  }
  if (interrupted) {
    // Shielded: this task is cancelled, so an unshielded sleep would end at once.
    task<void> closing = corun::shield(close());
    co_await std::move(closing);
  }
  out().say("Program finished");
  co_return interrupted ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return corun_example::guarded_main(argv[0], [&] {
    const corun_example::options options = corun_example::parse(argc, argv);
    corun::runtime rt(options.runtime);
    return corun::run_until_signal(rt, program());
  });
}
