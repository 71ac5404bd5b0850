/// \file
/// fib on a copy of the runtime built without the hot-path cancellation check: every
/// `cancel_requested` is a constant false (CORUN_BENCH_NO_CANCEL_CHECK), so a join no longer
/// loads the cancel epoch and the task's verified epoch. Against `fib/corun` in the same run it
/// is what the check costs (issue: under 5%). Everything else of the tree stays: scope links,
/// the cancel wake-up a join builds, the epoch a spawn copies.
///
/// This file and that copy of the runtime (target `corun_no_cancel_check`, bench/CMakeLists.txt)
/// are compiled with `-Dcorun=corun_no_cancel_check`, so the copy lives in a namespace of its
/// own and the two runtimes in this binary cannot clash. Hence no `common/corun_support.hpp`
/// here: its inline functions would get a second, different definition. `fib/corun.cpp`
/// registers the benchmark right after `fib/corun`, so the pair runs back to back.

#include "corun/corun.hpp"

#include "common/harness.hpp"
#include "fib/corun_fib.hpp"
#include "fib/no_cancel_check.hpp"
#include "fib/workload.hpp"

#include <benchmark/benchmark.h>

namespace bench::fib {

void run_without_check(benchmark::State& state) {
  const int n = size();
  corun::runtime_options options;
  options.workers = threads(state);
  corun::runtime rt(options);
  measure(state, [&] { return check(state, rt.block_on(fib(n)), reference(n)); });
  report_tasks(state, static_cast<double>(tasks(n)));
}

}  // namespace bench::fib
