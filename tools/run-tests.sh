#!/usr/bin/env bash
# The test command (README; CI's .ci/run calls it). Installs the dependencies (tools/setup.sh),
# then runs the CMake workflow of each preset in turn: configure, build everything, run every
# CTest test (unit tests, stress tests, benchmark smoke tests, the install test). The first,
# `tidy-library`, only builds: clang-tidy 14 over the library and every public header, findings
# are errors (about 1.5 minutes; the full `tidy` workflow also covers tests, benchmarks, tools).
#
#   tools/run-tests.sh               the CI set: tidy-library, release, dev (ASan+UBSan), tsan,
#                                    dev-clang, release-clang16, tsan-clang16
#   tools/run-tests.sh dev tsan      only these presets (any workflow preset of CMakePresets.json)
#
# Build folders are build/<preset> and are reused between runs; logs go to build/logs/.
# Exits non-zero if any preset fails to configure, to build, or to pass a test. The output ends
# with CTest's summary of the last preset, one line per preset, and the total over all presets.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci_presets=(tidy-library release dev tsan dev-clang release-clang16 tsan-clang16)
# Workflows without a test step: their build is the check.
build_only=(tidy-library)
if (($# > 0)); then
  presets=("$@")
else
  presets=("${ci_presets[@]}")
fi

bash tools/setup.sh

# The sanitizer runtimes of GCC 12 and LLVM 14 place their shadow memory at fixed addresses and
# abort on kernels that randomise mappings with more than 28 bits; run without ASLR there.
launcher=()
if [[ -r /proc/sys/vm/mmap_rnd_bits ]] && (($(cat /proc/sys/vm/mmap_rnd_bits) > 28)); then
  echo "run-tests: vm.mmap_rnd_bits > 28, running with ASLR off (setarch -R) for the sanitizers"
  launcher=(setarch "$(uname -m)" -R)
fi

log_dir=build/logs
mkdir -p "$log_dir"

status=0
total_passed=0
total_failed=0
results=()
untested=()
presets_with_failures=()
for index in "${!presets[@]}"; do
  preset=${presets[$index]}
  log="$log_dir/$preset.log"
  printf '\n==== run-tests [%d/%d]: preset %s (configure, build, test) ====\n\n' \
    "$((index + 1))" "${#presets[@]}" "$preset"
  start=$SECONDS
  if "${launcher[@]}" cmake --workflow --preset "$preset" 2>&1 | tee "$log"; then
    outcome=passed
  else
    outcome=FAILED
    status=1
  fi
  elapsed=$((SECONDS - start))

  # CTest's closing line: "97% tests passed, 1 tests failed out of 40".
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ " ${build_only[*]} " == *" $preset "* ]]; then
    summary="build only: clang-tidy findings are errors"
  elif [[ -n "$summary" ]]; then
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
    count=$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<<"$summary")
    total_failed=$((total_failed + failed))
    ((failed == 0)) || presets_with_failures+=("$preset")
    total_passed=$((total_passed + count - failed))
  else
    summary="no tests ran (see $log)"
    untested+=("$preset")
  fi
  results+=("$(printf '%-14s %-6s %5ds  %s' "$preset" "$outcome" "$elapsed" "$summary")")
  # CTest lists the failed tests after "The following tests FAILED:"; repeat them here, where a
  # reader of a long CI log looks first.
  while IFS= read -r line; do
    results+=("$(printf '               failed: %s' "$line")")
  done < <(sed -n '/^The following tests FAILED:/,/^Errors while running CTest/{/^[[:space:]]*[0-9]\+ - /p}' "$log" \
    | sed -E 's/^[[:space:]]+//')
done

# Run each failed test once more, so that a flaky failure shows as one (the preset stays failed
# whatever the second run says); then show what each printed when it failed the first time
# (CTest's output on failure, otherwise lost in the middle of a long log), just above the
# summary, where a reader of the end of the log sees it.
for preset in "${presets_with_failures[@]}"; do
  printf '\n==== run-tests: the failed tests of %s once more (the preset stays failed) ====\n\n' \
    "$preset"
  "${launcher[@]}" ctest --preset "$preset" --rerun-failed --output-on-failure 2>&1 \
    | tail -n 30 || true
done
for preset in "${presets_with_failures[@]}"; do
  printf '\n==== run-tests: what the failed tests of %s printed the first time ====\n\n' "$preset"
  # From a test's "***Failed" (or Timeout, Exception) line to the next line of CTest's own.
  awk '
    /^ *[0-9]+\/[0-9]+ Test +#[0-9]+: .*\*\*\*/ { show = 1; lines = 0; print; next }
    /^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / || /^ +Start +[0-9]+: / || /^[0-9]+% tests passed/ { show = 0 }
    show && lines++ < 80 { print }
  ' "$log_dir/$preset.log"
done

printf '\n==== run-tests summary ====\n'
printf '%s\n' "${results[@]}"
if ((${#untested[@]} > 0)); then
  echo "presets that failed before running their tests: ${untested[*]}"
fi
echo "tests: ${total_passed} passed, ${total_failed} failed"
exit "$status"
