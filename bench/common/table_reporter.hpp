/// \file
/// `bench::table_reporter`: passes every run on to the display reporter and keeps what the
/// corun-vs-oneTBB table needs.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace bench {

/// Wraps the display reporter Google benchmark would have used (console, JSON or CSV, as
/// `--benchmark_format` says) and records every run's counters and every failure.
///
/// Names: every benchmark here measures wall time, so the `/real_time` suffix Google benchmark
/// appends is dropped from what is displayed; names read `<workload>/<impl>/<threads>`. Filters
/// (`--benchmark_filter`) still see the full name, which the short one is a prefix of.
///
/// Single-threaded: Google benchmark reports from the thread that runs the benchmarks.
class table_reporter final : public benchmark::BenchmarkReporter {
 public:
  /// `display` must outlive this reporter.
  explicit table_reporter(benchmark::BenchmarkReporter& display) noexcept : m_display(display) {}

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

  /// Benchmarks that reported an error (a wrong result), as "name: message".
  [[nodiscard]] const std::vector<std::string>& failures() const noexcept {
    return m_runs.failures;
  }

  /// Prints the tables. First a row per workload and corun variant with a figure in ns per
  /// task: that of corun and oneTBB (or the workload's other baseline, marked `[threads]`) at
  /// each worker count, their ratio, and the ratio DESIGN.md section 5 targets. Then, in the
  /// same columns plus a unit, the figures that are not times per task: timer lateness (p50,
  /// p99) and memory per sleeping task against the thread-per-waiter baseline.
  void print_table(std::ostream& out) const;

  /// Writes what this process measured (every repetition of every counter, the failures, the
  /// load, CPU-share and processor context) for `merge` in another process: how `--table` gathers
  /// the runs of several copies of the harness (table_copies.hpp). A line-oriented text format;
  /// names hold no blanks, a failure's message is the rest of its line.
  void save(std::ostream& out) const;
  /// Adds what `save` wrote in another process: repetitions join this process's (a median is
  /// then taken over all of them), failures, failed benchmarks and processors are kept, the
  /// lowest CPU share and the first load average win. False, with nothing merged, if `in` is not in
  /// the format `save` writes.
  [[nodiscard]] bool merge(std::istream& in);
  /// Where the recorded runs come from, which the table's header and footer say.
  enum class source : std::uint8_t {
    this_process,  // the default
    fresh_copies,  // `processes` copies of this program, just run (table_copies.hpp)
    saved_files,   // `processes` files saved earlier (--table-from)
  };
  void set_source(source from, std::size_t processes) noexcept {
    m_source = from;
    m_processes = processes;
  }

 private:
  /// Workload, implementation and worker count.
  using key = std::tuple<std::string, std::string, std::size_t>;

  /// One counter of one benchmark.
  struct figure {
    /// The value of each repetition.
    std::vector<double> repetitions;
    /// Google benchmark's median aggregate, when it computed one.
    std::optional<double> median;
  };

  struct samples {
    /// By counter name; `ns_per_task` converted to ns.
    std::map<std::string, figure, std::less<>> counters;
    bool failed = false;
  };

  /// The median of `counter` of `<workload>/<impl>` at `threads`, unless it failed or did not
  /// report it.
  [[nodiscard]] std::optional<double> value(const std::string& workload, const std::string& impl,
                                            std::size_t threads, std::string_view counter) const;
  /// The table cell for it: the number with `decimals` decimals, `FAILED` or `-`.
  [[nodiscard]] std::string cell(const std::string& workload, const std::string& impl,
                                 std::size_t threads, std::string_view counter, int decimals) const;
  /// "median of N repetitions", naming the processes when there were several.
  [[nodiscard]] std::string median_label() const;
  /// Prints `cells` (the first line is the header) in aligned columns, the first left-aligned,
  /// the last unpadded.
  static void print_cells(std::ostream& out, const std::vector<std::vector<std::string>>& cells);

  /// Everything recorded from the runs (this process's, and those `merge` added).
  struct recorded_runs {
    std::map<key, samples> measured;
    /// Workloads and corun variants in the order they first reported (random with
    /// --benchmark_enable_random_interleaving; `print_table` sorts them).
    std::vector<std::string> workloads;
    std::vector<std::pair<std::string, std::string>> rows;
    std::vector<std::size_t> threads;
    std::vector<std::string> failures;
    /// Repetitions of each benchmark in one process.
    std::size_t repetitions = 1;
    /// Lowest CPU time / wall time of a run that does all its work on the benchmark thread
    /// (serial, and oneTBB at one worker): below ~0.9 other processes took the core away.
    std::optional<double> min_cpu_share;
    /// The 1-minute load average when the (first) run started (from Google benchmark's
    /// context).
    std::optional<double> load_at_start;
    /// The processors the runs were measured on (common/host.hpp), each once: one, unless
    /// saved files from several machines were merged.
    std::vector<std::string> cpus;
  };

  benchmark::BenchmarkReporter& m_display;
  recorded_runs m_runs;
  /// Where the runs come from, and from how many processes (`set_source`).
  source m_source = source::this_process;
  std::size_t m_processes = 1;
};

}  // namespace bench
