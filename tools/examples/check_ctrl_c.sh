#!/usr/bin/env bash
# Runs the ctrl_c_cleanup example on real time, sends it SIGINT once it has started, and checks
# that its async cleanup ran and it exited with 130. Every wait is bounded (60 s), so a broken
# signal path fails the test instead of hanging it; nothing here measures time.
set -euo pipefail
program=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$program" >"$out" 2>&1 &
pid=$!
for _ in $(seq 600); do
  grep -q "Started, press Ctrl+C" "$out" && break
  sleep 0.1
done
if ! grep -q "Started, press Ctrl+C" "$out"; then
  kill -KILL "$pid" 2>/dev/null || true
  echo "FAIL: the program did not start:"; cat "$out"; exit 1
fi
kill -INT "$pid"
status=0
for _ in $(seq 600); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
  echo "FAIL: still running 60 s after SIGINT:"; cat "$out"; exit 1
fi
wait "$pid" || status=$?
cat "$out"
[[ $status -eq 130 ]] || { echo "FAIL: exit status $status, expected 130"; exit 1; }
for line in "cancelled by SIGINT" "Finalizing..." "Program finished"; do
  grep -q "$line" "$out" || { echo "FAIL: no line '$line'"; exit 1; }
done
# The cleanup came after the signal, the end after the cleanup.
order=$(grep -o -e "cancelled by SIGINT" -e "Finalizing..." -e "Program finished" "$out" | tr '\n' '|')
[[ $order == "cancelled by SIGINT|Finalizing...|Program finished|" ]] ||
  { echo "FAIL: lines out of order: $order"; exit 1; }
echo PASS
