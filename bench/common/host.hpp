/// \file
/// Which processor a table was measured on, for its footer.
///
/// Why: the ratios to oneTBB depend on the host more than on anything else. Two 2-core AMD
/// EPYC VMs of the same kind ran the same commit's skynet at 0.51 and 0.85 of oneTBB at one
/// worker (2026-12-07): oneTBB took 31 ns per task on both, corun 16 on one and 26 on the
/// other (bench/HISTORY.md, seventeenth session). Such VMs all call their processor "AMD
/// EPYC"; the family and model numbers tell the generations apart, so the table prints them.
#pragma once

#include <istream>
#include <string>

namespace bench {

/// "<model name> (family F, model M, stepping S)" from the first processor of a
/// /proc/cpuinfo-formatted stream, with whatever of those fields it has; empty if it has none.
[[nodiscard]] std::string describe_cpu(std::istream& cpuinfo);

/// `describe_cpu` of this machine's /proc/cpuinfo (empty where there is none).
[[nodiscard]] std::string this_cpu();

}  // namespace bench
