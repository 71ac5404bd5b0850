// The Q&A seed's linked producer and consumer: the producer feeds a queue every 0.2 s and
// fails at its eighth item; the consumer would wait on the empty queue forever, but the two
// are linked, so the producer's failure cancels it at once. (The seed's
// `cancel_when_done(p, c)` is the one-way form: `corun::cancel_when_done`.)
#include "example_support.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

using corun::task;
using corun_example::out;
using namespace std::chrono_literals;

namespace {

task<void> producer(corun::channel<int>& queue) {
  for (int i = 0;; ++i) {
    co_await queue.send(i);
    co_await corun::sleep_for(200ms);
    if (i == 7) {
      throw std::domain_error("division by zero");  // the seed's 1/0
    }
  }
}

task<void> consumer(corun::channel<int>& queue) {
  for (;;) {
    const std::optional<int> value = co_await queue.recv();
    if (!value) {
      co_return;  // closed: not in this example
    }
    out().say("got " + std::to_string(*value));
  }
}

task<void> program() {
  out().start();
  corun::channel<int> queue(16);
  auto p = corun::spawn(producer(queue), {.name = "producer"});
  auto c = corun::spawn(consumer(queue), {.name = "consumer"});
  corun::link(p, c);
  try {
    co_await std::move(p);
  } catch (const std::domain_error& error) {
    out().say(std::string("producer failed: ") + error.what());
  }
  try {
    co_await std::move(c);
  } catch (const corun::task_cancelled&) {
    out().say("consumer was cancelled (linked to the producer)");
  }
}

}  // namespace

int main(int argc, char** argv) { return corun_example::run_example(argc, argv, program); }
