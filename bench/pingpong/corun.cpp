/// \file
/// Yield ping-pong on corun: two spawned children of the root each `co_await
/// this_task::yield()` their share of the yields and report how many they made.

#include "corun/corun.hpp"

#include "common/corun_support.hpp"
#include "common/harness.hpp"
#include "pingpong/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::pingpong {
namespace {

corun::task<long> player(long yields) {
  long made = 0;
  while (made < yields) {
    co_await corun::this_task::yield();
    ++made;
  }
  co_return made;
}

corun::task<long> match(long total) {
  auto first = corun::spawn(player(first_half(total)));
  auto second = corun::spawn(player(total - first_half(total)));
  const long first_made = co_await first;
  co_return first_made + co_await second;
}

void run(benchmark::State& state) {
  const long total = size();
  corun::runtime rt(corun_options(state));
  const corun::runtime_stats before = rt.stats();
  measure(state, [&] { return check(state, rt.block_on(match(total)), total); });
  report_tasks(state, static_cast<double>(total));
  report_corun_stats(state, before, rt.stats());
}

}  // namespace

BENCHMARK(run)->Name("pingpong/corun")->Apply(per_thread_count);

}  // namespace bench::pingpong
