#!/usr/bin/env bash
# Installs what corun needs to build, test and benchmark, from Debian 12's packages.
# Idempotent: installs only what is missing, and runs `apt-get update` only in that case.
# Uses sudo when not run as root.
set -euo pipefail

packages=(
  cmake ninja-build               # build (CMakePresets.json needs CMake >= 3.25)
  g++-12                          # the main compiler
  clang-14 libclang-rt-14-dev     # the second compiler, and its sanitizer runtimes
  clang-16 libclang-rt-16-dev     # the `release-clang16` and `tsan-clang16` presets (clang 16's
                                  # optimiser, its ThreadSanitizer runtime: only recommended by
                                  # clang-16, so --no-install-recommends below leaves it out)
  clang-tidy clang-format         # the `tidy` preset (clang-tidy 14)
  clang-format-16                 # .clang-format (clang-format 14 misparses `&&` in classes)
  libconcurrentqueue-dev          # moodycamel::ConcurrentQueue: the runtime's injection queue
  doctest-dev                     # tests
  relacy-dev                      # tests: model checking of the lock-free cores
  libtbb-dev                      # bench: the oneTBB baseline
  libbenchmark-dev                # bench: Google benchmark
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query --show --showformat='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
  as_root=(sudo)
fi

echo "setup: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
