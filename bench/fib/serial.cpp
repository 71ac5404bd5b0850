/// \file
/// fib as a plain recursive function on the benchmark thread: the floor the task versions'
/// per-call overhead is measured against.

#include "common/harness.hpp"
#include "fib/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::fib {
namespace {

void run(benchmark::State& state) {
  const int n = size();
  measure(state, [&] {
    int argument = n;
    benchmark::DoNotOptimize(argument);  // the compiler must not hoist the call out of the loop
    return check(state, serial(argument), reference(n));
  });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace

BENCHMARK(run)->Name("fib/serial")->Apply(serial_only);

}  // namespace bench::fib
