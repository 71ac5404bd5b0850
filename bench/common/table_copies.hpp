/// \file
/// `corun_bench --table`'s runs in fresh copies of the harness.
///
/// Why copies: on the VMs these tables are measured on, where the kernel placed a benchmark
/// executable's pages moved whole rows, fib by half (README, "Knobs and known issues"), and
/// a file keeps its placement for as long as it stays in the page cache, so every run of the
/// same file repeated it. Each copy is a new file with new pages; the table's medians over
/// several copies no longer ride on one placement.
#pragma once

#include "common/table_reporter.hpp"

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace bench {

/// Runs this program `processes` times one after the other, each from a fresh copy of its
/// executable (made next to it, or in the temporary directory if that fails), with `args` and
/// `--samples-to=<file>`, and merges what each process saved into `reporter`. The processes
/// share this one's standard streams, so their progress shows; `log` gets a line before each.
/// Returns true if every process exited with status 0 and left its samples.
[[nodiscard]] bool run_in_copies(std::size_t processes, const std::vector<std::string>& args,
                                 table_reporter& reporter, std::ostream& log);

}  // namespace bench
