/// \file
/// skynet as a plain recursive function on the benchmark thread.

#include "common/harness.hpp"
#include "skynet/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::skynet {
namespace {

void run(benchmark::State& state) {
  const int tree_depth = depth();
  measure(state, [&] {
    long count = leaves(tree_depth);
    benchmark::DoNotOptimize(count);  // the compiler must not hoist the call out of the loop
    return check(state, serial(0, count), reference(tree_depth));
  });
  report_tasks(state, static_cast<double>(tasks(tree_depth)));
}

}  // namespace

BENCHMARK(run)->Name("skynet/serial")->Apply(serial_only);

}  // namespace bench::skynet
