/// \file
/// `corun_bench`: every workload in a corun and a oneTBB version, in one Google benchmark binary.
///
/// Besides the usual `--benchmark_*` flags it understands:
///   --table  run every benchmark in 3 processes, one after the other, each a fresh copy of
///            this program (common/table_copies.hpp says why), one repetition in each, and
///            then print a table of the median ns per task of corun and oneTBB at each worker
///            count, their ratio, the ratio DESIGN.md section 5 targets and whether it is met.
///            Within a process the benchmarks run in registration order (1 worker before 2), not
///            with --benchmark_enable_random_interleaving: interleaved, storm/tbb/1 came out at
///            either ~50 or ~100 ns per task depending on the order drawn (with CPU time equal to
///            wall time, so not preemption); back to back it stays at ~45-50.
///   --copies=N  with --table: N processes instead of 3. --copies=1 runs 3 repetitions in
///            this process instead (only the aggregates on the console).
///   --smoke  tiny sizes and one iteration per benchmark: what CTest runs (bench.smoke.*).
/// Defaults these switches imply come before the command line's own flags, so
/// `--table --benchmark_repetitions=5` runs 5 repetitions in each process.
///   --samples-to=FILE  run as one of --table's processes: save what was measured to FILE
///            (table_reporter::save) instead of printing the table.
///   --table-from=FILE  (repeatable) run nothing: print the table of the medians over what
///            the files saved (by --samples-to), e.g. runs of different times.
///
/// Exit status: 1 if a benchmark computed a wrong answer, nothing matched the filter, or one
/// of --table's processes failed.

#include "common/harness.hpp"
#include "common/table_copies.hpp"
#include "common/table_reporter.hpp"

#include <benchmark/benchmark.h>

#include <charconv>
#include <cstddef>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

constexpr std::string_view copies_flag = "--copies=";
constexpr std::string_view samples_flag = "--samples-to=";
constexpr std::string_view table_from_flag = "--table-from=";

/// `--copies=N`'s N, if it is a number of at least 1.
bool parse_copies(std::string_view text, std::size_t& copies) {
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, copies);
  return error == std::errc{} && stop == end && copies >= 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool table = false;
  bool smoke = false;
  std::size_t copies = 3;
  std::string samples_to;
  std::vector<std::string> table_from;
  std::vector<std::string> passed;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--table") {
      table = true;
    } else if (arg == "--smoke") {
      smoke = true;
    } else if (arg.starts_with(copies_flag)) {
      if (!parse_copies(arg.substr(copies_flag.size()), copies)) {
        std::cerr << "corun_bench: " << arg << ": the number of copies must be 1 or more\n";
        return 1;
      }
    } else if (arg.starts_with(samples_flag)) {
      samples_to = arg.substr(samples_flag.size());
    } else if (arg.starts_with(table_from_flag)) {
      table_from.emplace_back(arg.substr(table_from_flag.size()));
    } else {
      passed.emplace_back(arg);
    }
  }
  // The parent of --table's processes measures nothing itself.
  const bool in_copies = table && copies > 1 && samples_to.empty();

  std::vector<std::string> flags;
  if (table && copies == 1 && samples_to.empty()) {
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
  if (!table_from.empty()) {
    for (const std::string& file : table_from) {
      std::ifstream in(file);
      if (!in || !reporter.merge(in)) {
        std::cerr << "corun_bench: " << file << ": not a complete file of --samples-to\n";
        return 1;
      }
    }
    reporter.set_source(bench::table_reporter::source::saved_files, table_from.size());
    reporter.print_table(std::cout);
    return reporter.failures().empty() ? 0 : 1;
  }
  if (in_copies) {
    // The flags were checked above; each process gets the same ones (this one's defaults are
    // none: every process runs one repetition unless the command line says otherwise).
    std::vector<std::string> forwarded = passed;
    if (smoke) {
      forwarded.emplace_back("--smoke");
    }
    const bool all_ok = bench::run_in_copies(copies, forwarded, reporter, std::cout);
    benchmark::Shutdown();
    reporter.print_table(std::cout);
    for (const std::string& failure : reporter.failures()) {
      std::cerr << "corun_bench: " << failure << '\n';
    }
    return all_ok && reporter.failures().empty() ? 0 : 1;
  }
  const std::size_t matched = benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  if (!samples_to.empty()) {
    std::ofstream out(samples_to);
    reporter.save(out);
    out.close();
    if (!out) {
      std::cerr << "corun_bench: cannot write the samples to " << samples_to << '\n';
      return 1;
    }
  } else if (table) {
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
