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

# Runs a fresh copy of the harness rather than the file the linker wrote: on these VMs the
# physical pages the kernel gave that file slowed fib by half in one clone, and they stay the
# same for as long as the file stays in the page cache, so every run repeated it (README,
# "Knobs and known issues"). A new copy gets new pages. That makes a bad placement unlikely to
# persist across runs; it does not rule one out.
copy=build/release/bench/corun_bench.run
rm -f "$copy"
cp build/release/bench/corun_bench "$copy"
exec "$copy" --table "$@"
