/// \file
/// The channel workloads on corun (see workload.hpp): ping-pong over two capacity-1 channels,
/// and one producer streaming to one consumer over a capacity-64 channel. The root task plays
/// one side itself and spawns the other as its child.

#include "corun/corun.hpp"

#include "channel/workload.hpp"
#include "common/corun_support.hpp"
#include "common/harness.hpp"

#include <benchmark/benchmark.h>

#include <optional>

namespace bench::channel {
namespace {

corun::task<void> pong(corun::channel<long>& requests, corun::channel<long>& answers, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    const std::optional<long> request = co_await requests.recv();
    co_await answers.send(request.value() + 1);
  }
}

corun::task<long> pingpong(long rounds) {
  corun::channel<long> requests(pingpong_capacity);
  corun::channel<long> answers(pingpong_capacity);
  auto responder = corun::spawn(pong(requests, answers, rounds));
  long sum = 0;
  for (long i = 0; i < rounds; ++i) {
    co_await requests.send(i);
    sum += (co_await answers.recv()).value();
  }
  co_await responder;
  co_return sum;
}

corun::task<void> produce(corun::channel<long>& ch, long messages) {
  for (long i = 0; i < messages; ++i) {
    co_await ch.send(i);
  }
  ch.close();
}

corun::task<long> stream(long messages) {
  corun::channel<long> ch(stream_capacity);
  auto producer = corun::spawn(produce(ch, messages));
  long sum = 0;
  while (const std::optional<long> item = co_await ch.recv()) {
    sum += *item;
  }
  co_await producer;
  co_return sum;
}

void run_pingpong(benchmark::State& state) {
  const long rounds = pingpong_rounds();
  corun::runtime rt(corun_options(state));
  const corun::runtime_stats before = rt.stats();
  measure(state,
          [&] { return check(state, rt.block_on(pingpong(rounds)), pingpong_expected(rounds)); });
  report_tasks(state, static_cast<double>(pingpong_messages(rounds)));
  report_corun_stats(state, before, rt.stats());
}

void run_stream(benchmark::State& state) {
  const long messages = stream_messages();
  corun::runtime rt(corun_options(state));
  const corun::runtime_stats before = rt.stats();
  measure(state,
          [&] { return check(state, rt.block_on(stream(messages)), stream_expected(messages)); });
  report_tasks(state, static_cast<double>(messages));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK(run_pingpong)->Name("channel_pingpong/corun")->Apply(per_thread_count);
BENCHMARK(run_stream)->Name("channel/corun")->Apply(per_thread_count);

}  // namespace bench::channel
