/// \file
/// `corun_bench`: every workload in a corun and a oneTBB version, in one Google benchmark binary.
///
/// Besides the usual `--benchmark_*` flags it understands:
///   --table  run 3 repetitions of every benchmark (only the aggregates on the console) and,
///            after the run, print a table of the median ns per task of corun and oneTBB at each
///            worker count, their ratio and the ratio DESIGN.md section 5 targets.
///            The repetitions run back to back in registration order (1 worker before 2), not
///            with --benchmark_enable_random_interleaving: interleaved, storm/tbb/1 came out at
///            either ~50 or ~100 ns per task depending on the order drawn (with CPU time equal to
///            wall time, so not preemption); back to back it stays at ~45-50.
///   --smoke  tiny sizes and one iteration per benchmark: what CTest runs (bench.smoke.*).
/// Defaults these switches imply come before the command line's own flags, so
/// `--table --benchmark_repetitions=5` runs 5 repetitions.
///
/// Exit status: 1 if a benchmark computed a wrong answer or nothing matched the filter.

#include "common/harness.hpp"
#include "common/table_reporter.hpp"

#include <benchmark/benchmark.h>

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
  bool table = false;
  bool smoke = false;
  std::vector<std::string> passed;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--table") {
      table = true;
    } else if (arg == "--smoke") {
      smoke = true;
    } else {
      passed.emplace_back(arg);
    }
  }

  std::vector<std::string> flags;
  if (table) {
    flags.emplace_back("--benchmark_repetitions=3");
    flags.emplace_back("--benchmark_display_aggregates_only=true");
  }
  if (smoke) {
    // A minimum time of 0 makes Google benchmark stop after the first iteration.
    flags.emplace_back("--benchmark_min_time=0");
  }
  flags.insert(flags.end(), passed.begin(), passed.end());

  std::vector<char*> args{argv[0]};
  for (std::string& flag : flags) {
    args.push_back(flag.data());
  }
  args.push_back(nullptr);
  int count = static_cast<int>(args.size()) - 1;
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) {
    return 1;
  }
  bench::set_smoke(smoke);

  // Owned by Google benchmark (a process-wide instance): not deleted here.
  benchmark::BenchmarkReporter* display = benchmark::CreateDefaultDisplayReporter();
  bench::table_reporter reporter(*display);
  const std::size_t matched = benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  if (table) {
    reporter.print_table(std::cout);
  }
  if (matched == 0) {
    std::cerr << "corun_bench: no benchmark matches --benchmark_filter\n";
    return 1;
  }
  if (!reporter.failures().empty()) {
    for (const std::string& failure : reporter.failures()) {
      std::cerr << "corun_bench: " << failure << '\n';
    }
    return 1;
  }
  return 0;
}
