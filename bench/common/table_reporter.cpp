#include "common/table_reporter.hpp"

#include "common/host.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

namespace bench {

namespace {

/// The highest ratio corun / oneTBB that DESIGN.md section 5 allows, at one worker and at two
/// (taken for every worker count above one); 0: no target.
struct ratio_target {
  double one_worker = 0.0;
  double more_workers = 0.0;
};

struct workload_row {
  std::string_view workload;
  ratio_target target;
  /// False where the two versions do different work and a ratio would mislead.
  bool comparable = true;
  /// The implementation in the baseline column: oneTBB, unless it has no counterpart of the
  /// workload (`threads`: plain std::threads); the table marks such cells `[<baseline>]`.
  std::string_view baseline = "tbb";
};

/// Table rows in DESIGN.md's order; workloads not listed follow in the order they reported.
constexpr auto known_workloads = std::to_array<workload_row>({
    {"fib", {0.40, 0.40}},
    {"skynet", {0.40, 0.50}},
    {"nqueens", {0.60, 0.60}},
    {"storm", {0.60, 0.20}},
    {"storm_work", {}},
    {"pingpong", {}},
    {"cancel_tree", {}, false},      // oneTBB cannot hold a suspended tree: see its workload.hpp
    {"mutex", {}, true, "threads"},  // oneTBB has no mutex that suspends a task
    {"mutex_fair", {}, true, "threads"},  // against a FIFO ticket lock on threads
    // oneTBB has no channels, timers or sleeping tasks: the baselines are plain threads.
    {"channel_pingpong", {}, true, "threads"},
    {"channel", {}, true, "threads"},
    {"timers", {}, true, "threads"},
    {"timers_virtual", {}},
    {"timer_lateness", {}},
    {"sleep_memory", {}, true, "threads"},
});

/// A row of the second table: a counter that is not a time per task.
struct figure_row {
  std::string_view workload;
  std::string_view counter;
  /// What the row is called after the workload (and its variant).
  std::string_view label;
  std::string_view unit;
  int decimals;
};

/// The second table's rows: for each corun variant of a workload, its figures in this order.
constexpr auto known_figures = std::to_array<figure_row>({
    {"timer_lateness", "p50_us", "p50", "us", 0},
    {"timer_lateness", "p99_us", "p99", "us", 0},
    {"sleep_memory", "bytes_per_task", "per sleeping task", "bytes", 0},
});

/// The counter of the first table, recorded in ns.
constexpr std::string_view ns_counter = "ns_per_task";

[[nodiscard]] std::size_t row_rank(std::string_view workload) {
  const auto* found =
      std::find_if(known_workloads.begin(), known_workloads.end(),
                   [&](const workload_row& row) { return row.workload == workload; });
  return static_cast<std::size_t>(found - known_workloads.begin());
}

[[nodiscard]] ratio_target design_target(std::string_view workload) {
  const std::size_t rank = row_rank(workload);
  return rank < known_workloads.size() ? known_workloads[rank].target : ratio_target{};
}

[[nodiscard]] bool comparable(std::string_view workload) {
  const std::size_t rank = row_rank(workload);
  return rank >= known_workloads.size() || known_workloads[rank].comparable;
}

[[nodiscard]] std::string baseline_of(std::string_view workload) {
  const std::size_t rank = row_rank(workload);
  return std::string(rank < known_workloads.size() ? known_workloads[rank].baseline : "tbb");
}

[[nodiscard]] std::string fixed(double value, int decimals) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(decimals) << value;
  return text.str();
}

[[nodiscard]] double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

/// Appends `item` to `list` unless it is there already (the first appearance keeps its place).
template <class List, class Item>
void add_once(List& list, Item&& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) {
    list.push_back(std::forward<Item>(item));
  }
}

/// Where the key of a run lives: the family name `<workload>/<impl>` and the argument, the
/// worker count. False for a run that is not one of ours.
[[nodiscard]] bool parse(const benchmark::BenchmarkReporter::Run& run, std::string& workload,
                         std::string& impl, std::size_t& threads) {
  const std::string& family = run.run_name.function_name;
  const std::size_t slash = family.find('/');
  const std::string& args = run.run_name.args;
  if (slash == std::string::npos || args.empty() ||
      !std::all_of(args.begin(), args.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  workload = family.substr(0, slash);
  impl = family.substr(slash + 1);
  threads = static_cast<std::size_t>(std::stoul(args));
  return true;
}

}  // namespace

bool table_reporter::ReportContext(const Context& context) {
  m_display.SetOutputStream(&GetOutputStream());
  m_display.SetErrorStream(&GetErrorStream());
  if (!context.cpu_info.load_avg.empty()) {
    m_runs.load_at_start = context.cpu_info.load_avg.front();
  }
  if (std::string cpu = this_cpu(); !cpu.empty()) {
    add_once(m_runs.cpus, cpu);
  }
  return m_display.ReportContext(context);
}

void table_reporter::ReportRuns(const std::vector<Run>& runs) {
  std::vector<Run> shown = runs;
  for (Run& run : shown) {
    run.run_name.time_type.clear();
  }
  m_display.ReportRuns(shown);

  for (const Run& run : shown) {
    std::string workload;
    std::string impl;
    std::size_t threads = 0;
    if (!parse(run, workload, impl, threads)) {
      continue;
    }
    add_once(m_runs.workloads, workload);
    if (impl != "tbb" && impl != "serial" && impl != baseline_of(workload)) {
      add_once(m_runs.rows, std::pair{workload, impl});
    }
    add_once(m_runs.threads, threads);
    std::sort(m_runs.threads.begin(), m_runs.threads.end());
    m_runs.repetitions = std::max(m_runs.repetitions, static_cast<std::size_t>(run.repetitions));

    samples& measured = m_runs.measured[key{workload, impl, threads}];
    if (run.error_occurred) {
      measured.failed = true;
      std::string failure = run.benchmark_name().append(": ").append(run.error_message);
      add_once(m_runs.failures, std::move(failure));
      continue;
    }
    const bool timed_per_task = run.counters.find(std::string(ns_counter)) != run.counters.end();
    const bool single_run = run.run_type == Run::RT_Iteration || run.aggregate_name == "median";
    if (timed_per_task && single_run && threads == 1 && (impl == "serial" || impl == "tbb") &&
        run.GetAdjustedRealTime() > 0.0) {
      const double share = run.GetAdjustedCPUTime() / run.GetAdjustedRealTime();
      m_runs.min_cpu_share = std::min(m_runs.min_cpu_share.value_or(share), share);
    }
    for (const auto& [name, counter] : run.counters) {
      // ns_per_task is a rate inverted: seconds per task.
      const double number = name == ns_counter ? counter.value * 1e9 : counter.value;
      figure& recorded = measured.counters[name];
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") {
          recorded.median = number;
        }
      } else {
        recorded.repetitions.push_back(number);
      }
    }
  }
}

void table_reporter::Finalize() { m_display.Finalize(); }

std::optional<double> table_reporter::value(const std::string& workload, const std::string& impl,
                                            std::size_t threads, std::string_view counter) const {
  const auto found = m_runs.measured.find(key{workload, impl, threads});
  if (found == m_runs.measured.end() || found->second.failed) {
    return std::nullopt;
  }
  const auto recorded = found->second.counters.find(counter);
  if (recorded == found->second.counters.end()) {
    return std::nullopt;
  }
  if (recorded->second.median) {
    return recorded->second.median;
  }
  if (recorded->second.repetitions.empty()) {
    return std::nullopt;
  }
  return median_of(recorded->second.repetitions);
}

std::string table_reporter::cell(const std::string& workload, const std::string& impl,
                                 std::size_t threads, std::string_view counter,
                                 int decimals) const {
  const auto found = m_runs.measured.find(key{workload, impl, threads});
  if (found != m_runs.measured.end() && found->second.failed) {
    return "FAILED";
  }
  const std::optional<double> number = value(workload, impl, threads, counter);
  return number ? fixed(*number, decimals) : std::string("-");
}

std::string table_reporter::median_label() const {
  std::string label = "median of ";
  const auto repetitions = [](std::size_t count) {
    return std::to_string(count).append(count == 1 ? " repetition" : " repetitions");
  };
  if (m_processes <= 1) {
    return label.append(repetitions(m_runs.repetitions));
  }
  label.append(std::to_string(m_runs.repetitions * m_processes))
      .append(" runs (")
      .append(repetitions(m_runs.repetitions))
      .append(" in each of ")
      .append(std::to_string(m_processes))
      .append(" processes");
  return label.append(m_source == source::fresh_copies ? ", each a fresh copy of this program)"
                                                       : ", read from the files given)");
}

void table_reporter::print_cells(std::ostream& out,
                                 const std::vector<std::vector<std::string>>& cells) {
  std::vector<std::size_t> widths(cells.front().size(), 0);
  for (const auto& line : cells) {
    for (std::size_t column = 0; column < line.size(); ++column) {
      widths[column] = std::max(widths[column], line[column].size());
    }
  }
  for (std::size_t row = 0; row < cells.size(); ++row) {
    const auto& line = cells[row];
    for (std::size_t column = 0; column < line.size(); ++column) {
      out << (column == 0 ? "" : "  ");
      if (column == 0) {
        out << std::left << std::setw(static_cast<int>(widths[column])) << line[column]
            << std::right;
      } else if (column + 1 == line.size()) {
        out << line[column];
      } else {
        out << std::setw(static_cast<int>(widths[column])) << line[column];
      }
    }
    out << '\n';
    if (row == 0) {
      std::size_t total = 0;
      for (const std::size_t width : widths) {
        total += width + 2;
      }
      out << std::string(total - 2, '-') << '\n';
    }
  }
}

void table_reporter::print_table(std::ostream& out) const {
  // Rows: workloads in DESIGN.md's order; per workload the plain corun variant first, then the
  // others (corun_nopool).
  std::vector<std::string> workloads = m_runs.workloads;
  std::stable_sort(
      workloads.begin(), workloads.end(),
      [](const std::string& a, const std::string& b) { return row_rank(a) < row_rank(b); });
  std::vector<std::pair<std::string, std::string>> rows;
  for (const std::string& workload : workloads) {
    std::vector<std::string> impls;
    for (const auto& [row_workload, impl] : m_runs.rows) {
      if (row_workload == workload) {
        impls.push_back(impl);
      }
    }
    std::sort(impls.begin(), impls.end(), [](const std::string& a, const std::string& b) {
      return std::pair{a != "corun", a} < std::pair{b != "corun", b};
    });
    for (const std::string& impl : impls) {
      rows.emplace_back(workload, impl);
    }
  }

  // The per-worker-count columns of both tables: corun, the baseline, their ratio.
  const auto add_columns = [&](std::vector<std::string>& header, const char* baseline_column) {
    for (const std::size_t threads : m_runs.threads) {
      // Appended piece by piece: `" " + std::to_string(n) + "w"` trips g++ 12's false
      // -Wrestrict (GCC bug 105329) at -O3.
      std::string suffix(" ");
      suffix.append(std::to_string(threads)).append("w");
      for (const char* column : {"corun", baseline_column, "ratio"}) {
        header.push_back(std::string(column).append(suffix));
      }
    }
  };
  const auto add_cells = [&](std::vector<std::string>& line, const std::string& workload,
                             const std::string& impl, std::string_view counter, int decimals) {
    const std::string baseline = baseline_of(workload);
    for (const std::size_t threads : m_runs.threads) {
      const std::optional<double> corun_value = value(workload, impl, threads, counter);
      const std::optional<double> base_value = value(workload, baseline, threads, counter);
      std::string base_cell = cell(workload, baseline, threads, counter, decimals);
      if (baseline != "tbb" && base_cell != "-") {
        base_cell.append(" [").append(baseline).append("]");
      }
      line.push_back(cell(workload, impl, threads, counter, decimals));
      line.push_back(base_cell);
      line.push_back(comparable(workload) && corun_value && base_value && *base_value > 0.0
                         ? fixed(*corun_value / *base_value, 2)
                         : std::string("-"));
    }
  };
  const auto label_of = [](const std::string& workload, const std::string& impl) {
    std::string label = workload;
    if (impl != "corun") {
      label.append(" [").append(impl).append("]");
    }
    return label;
  };

  // "<= 0.40 / <= 0.50: 1w met, 2w missed": the targets, and whether each ratio shown meets
  // its own (compared as shown, to two decimals).
  const auto target_cell = [&](const std::string& workload) {
    const ratio_target target = design_target(workload);
    if (target.one_worker <= 0.0) {
      return std::string("-");
    }
    std::string text = "<= " + fixed(target.one_worker, 2);
    text.append(" / <= ").append(fixed(target.more_workers, 2));
    const std::string baseline = baseline_of(workload);
    // No verdict where there is no ratio (the baseline did not run).
    const char* separator = ": ";
    for (const std::size_t threads : m_runs.threads) {
      const std::optional<double> corun_value = value(workload, "corun", threads, ns_counter);
      const std::optional<double> base_value = value(workload, baseline, threads, ns_counter);
      if (!corun_value || !base_value || *base_value <= 0.0) {
        continue;
      }
      const double shown = std::round(*corun_value / *base_value * 100.0) / 100.0;
      const double allowed = threads == 1 ? target.one_worker : target.more_workers;
      text.append(separator).append(std::to_string(threads)).append("w ");
      text.append(shown <= allowed + 1e-9 ? "met" : "missed");
      separator = ", ";
    }
    return text;
  };

  // Rows without a single figure in ns per task (timer_lateness measures only lateness) are
  // left to the second table.
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> header{"workload"};
  add_columns(header, "tbb");
  header.emplace_back("target ratio (DESIGN.md)");
  cells.push_back(header);
  for (const auto& [workload, impl] : rows) {
    std::vector<std::string> line{label_of(workload, impl)};
    add_cells(line, workload, impl, ns_counter, 1);
    if (std::all_of(line.begin() + 1, line.end(), [](const std::string& c) { return c == "-"; })) {
      continue;
    }
    line.push_back(impl == "corun" ? target_cell(workload) : "-");
    cells.push_back(line);
  }
  if (cells.size() > 1) {
    out << "\ncorun vs oneTBB: wall-clock ns per task, " << median_label()
        << "; ratio = corun / tbb, or / the baseline a cell names (lower is better)\n";
    print_cells(out, cells);
  }

  // The second table: issue 4's figures that are not times per task.
  std::vector<std::vector<std::string>> figures;
  std::vector<std::string> figure_header{"figure", "unit"};
  add_columns(figure_header, "baseline");
  figures.push_back(figure_header);
  for (const auto& [workload, impl] : rows) {
    for (const figure_row& row : known_figures) {
      if (workload != row.workload) {
        continue;
      }
      std::vector<std::string> line{label_of(workload, impl).append(" ").append(row.label),
                                    std::string(row.unit)};
      add_cells(line, workload, impl, row.counter, row.decimals);
      figures.push_back(line);
    }
  }
  if (figures.size() > 1) {
    out << "\ntimer lateness and memory per sleeping task, " << median_label()
        << "; ratio = corun / the baseline (lower is better)\n";
    print_cells(out, figures);
  }
  // Context for the multi-worker columns, which need every core: this run's own threads count
  // towards the load too (up to the worker count), so a load well above the core count means
  // other processes competed.
  std::array<double, 1> load_now{};
  if (m_source == source::saved_files) {
    // The load now says nothing about runs of another time.
    if (m_runs.load_at_start) {
      out << "1-minute load average at the start of the first run: "
          << fixed(*m_runs.load_at_start, 2) << '\n';
    }
  } else if (m_runs.load_at_start && getloadavg(load_now.data(), 1) == 1) {
    out << "1-minute load average: " << fixed(*m_runs.load_at_start, 2) << " at the start, "
        << fixed(load_now[0], 2) << " at the end, on " << std::thread::hardware_concurrency()
        << " hardware threads\n";
  }
  if (m_runs.min_cpu_share) {
    // Serial and 1-worker oneTBB runs do all their work on the benchmark thread, so their CPU
    // time should equal their wall time; less means something else had the core.
    out << "benchmark thread's CPU share in the serial and tbb 1w runs: min "
        << fixed(*m_runs.min_cpu_share * 100.0, 0) << "%";
    if (*m_runs.min_cpu_share < 0.9) {
      out << " -- other processes competed for the cores; these numbers are unreliable";
    }
    out << '\n';
  }
  // The ratios move with the processor far more than with the load (common/host.hpp).
  if (m_runs.cpus.size() == 1) {
    out << "processor: " << m_runs.cpus.front() << '\n';
  } else if (m_runs.cpus.size() > 1) {
    out << "processors: ";
    for (std::size_t i = 0; i < m_runs.cpus.size(); ++i) {
      out << (i == 0 ? "" : "; ") << m_runs.cpus[i];
    }
    out << " -- the runs come from different processors; their medians mix them\n";
  }
  // Workloads oneTBB has no counterpart of: which implementation their tbb cells show.
  std::map<std::string, std::string> other_baselines;  // baseline -> its workloads
  for (const std::string& workload : workloads) {
    const std::string baseline = baseline_of(workload);
    if (baseline != "tbb") {
      std::string& names = other_baselines[baseline];
      names.append(names.empty() ? "" : ", ").append(workload);
    }
  }
  for (const auto& [baseline, names] : other_baselines) {
    out << "[" << baseline << "]: oneTBB has no counterpart of " << names
        << "; their tbb cells show <workload>/" << baseline << " (see its workload.hpp)\n";
  }
  for (const std::string& failure : m_runs.failures) {
    out << "FAILED " << failure << '\n';
  }
  out.flush();
}

namespace {
constexpr std::string_view samples_magic = "corun_bench samples 1";
}  // namespace

void table_reporter::save(std::ostream& out) const {
  out << samples_magic << '\n';
  out << "repetitions " << m_runs.repetitions << '\n';
  // Enough digits to read back the same double.
  out << std::setprecision(std::numeric_limits<double>::max_digits10);
  if (m_runs.load_at_start) {
    out << "load " << *m_runs.load_at_start << '\n';
  }
  if (m_runs.min_cpu_share) {
    out << "cpu_share " << *m_runs.min_cpu_share << '\n';
  }
  for (const std::string& cpu : m_runs.cpus) {
    out << "cpu " << cpu << '\n';
  }
  for (const std::string& workload : m_runs.workloads) {
    out << "workload " << workload << '\n';
  }
  for (const auto& [workload, impl] : m_runs.rows) {
    out << "row " << workload << ' ' << impl << '\n';
  }
  for (const std::size_t threads : m_runs.threads) {
    out << "threads " << threads << '\n';
  }
  for (const auto& [where, measured] : m_runs.measured) {
    const auto& [workload, impl, threads] = where;
    if (measured.failed) {
      out << "failed " << workload << ' ' << impl << ' ' << threads << '\n';
    }
    for (const auto& [name, recorded] : measured.counters) {
      for (const double number : recorded.repetitions) {
        out << "sample " << workload << ' ' << impl << ' ' << threads << ' ' << name << ' '
            << number << '\n';
      }
    }
  }
  for (const std::string& failure : m_runs.failures) {
    out << "failure " << failure << '\n';
  }
  // Tells a complete file from one cut short (a copy that crashed while writing).
  out << "end\n";
}

bool table_reporter::merge(std::istream& in) {
  // Parsed whole into a copy first, so that a malformed file merges nothing.
  recorded_runs merged = m_runs;
  std::string line;
  if (!std::getline(in, line) || line != samples_magic) {
    return false;
  }
  bool ended = false;
  while (!ended && std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    bool parsed = true;
    if (kind == "end") {
      ended = true;
    } else if (kind == "repetitions") {
      std::size_t repetitions = 0;
      parsed = static_cast<bool>(fields >> repetitions);
      merged.repetitions = std::max(merged.repetitions, repetitions);
    } else if (kind == "load") {
      double load = 0.0;
      parsed = static_cast<bool>(fields >> load);
      merged.load_at_start = merged.load_at_start.value_or(load);
    } else if (kind == "cpu_share") {
      double share = 0.0;
      parsed = static_cast<bool>(fields >> share);
      merged.min_cpu_share = std::min(merged.min_cpu_share.value_or(share), share);
    } else if (kind == "cpu") {
      std::string cpu;
      std::getline(fields >> std::ws, cpu);
      parsed = !cpu.empty();
      add_once(merged.cpus, cpu);
    } else if (kind == "workload") {
      std::string workload;
      parsed = static_cast<bool>(fields >> workload);
      add_once(merged.workloads, workload);
    } else if (kind == "row") {
      std::string workload;
      std::string impl;
      parsed = static_cast<bool>(fields >> workload >> impl);
      add_once(merged.rows, std::pair{workload, impl});
    } else if (kind == "threads") {
      std::size_t threads = 0;
      parsed = static_cast<bool>(fields >> threads);
      add_once(merged.threads, threads);
      std::sort(merged.threads.begin(), merged.threads.end());
    } else if (kind == "failed") {
      std::string workload;
      std::string impl;
      std::size_t threads = 0;
      parsed = static_cast<bool>(fields >> workload >> impl >> threads);
      merged.measured[key{workload, impl, threads}].failed = true;
    } else if (kind == "sample") {
      std::string workload;
      std::string impl;
      std::size_t threads = 0;
      std::string name;
      double number = 0.0;
      parsed = static_cast<bool>(fields >> workload >> impl >> threads >> name >> number);
      figure& recorded = merged.measured[key{workload, impl, threads}].counters[name];
      // A median of this process alone would hide the others' repetitions.
      recorded.median.reset();
      recorded.repetitions.push_back(number);
    } else if (kind == "failure") {
      std::string failure;
      std::getline(fields >> std::ws, failure);
      parsed = !failure.empty();
      add_once(merged.failures, failure);
    } else {
      parsed = false;
    }
    if (!parsed) {
      return false;
    }
  }
  if (!ended) {
    return false;
  }
  m_runs = std::move(merged);
  return true;
}

}  // namespace bench
