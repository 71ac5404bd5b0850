#!/usr/bin/env bash
# The benchmark command (README): installs the dependencies, builds the `release` preset's
# benchmark harness and runs it, printing corun's times next to oneTBB's as a table.
#
#   tools/run-bench.sh                               every workload, the comparison table
#   tools/run-bench.sh --benchmark_filter='fib/.*'   extra arguments go to the harness
#
# The harness is build/release/bench/corun_bench, a Google benchmark program: it also takes the
# usual --benchmark_* options.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup.sh

cmake --preset release
cmake --build --preset release --target corun_bench

# `--table` runs the benchmarks in three processes, each from a fresh copy of the harness
# (bench/common/table_copies.hpp: where the kernel placed one file's pages moved whole rows on
# these VMs), and prints the medians over the three.
exec build/release/bench/corun_bench --table "$@"
