/// \file
/// The entry point of `fib/corun_no_cancel_check` (corun_no_cancel_check.cpp). It names nothing
/// of corun, so `fib/corun.cpp` can register it next to `fib/corun` although the two files are
/// compiled against different copies of the runtime.
#pragma once

#include <benchmark/benchmark.h>

namespace bench::fib {

/// fib on the runtime copy built without the hot-path cancellation check.
void run_without_check(benchmark::State& state);

}  // namespace bench::fib
