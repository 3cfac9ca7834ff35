#!/usr/bin/env bash
# run-all.sh — every VM guest test and trace test of issue 6, as the main test command
# runs them: installs packages, builds the guest cache, runs the CLI crate's
# `cli/tests/vm_*.rs` and `cli/tests/trace_*.rs` targets (each guest test boots its own QEMU guest), prints
# "N passed, N failed" and exits non-zero if anything failed or could not run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
T0=$(date +%s.%N)
since() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }
passed=0 failed=0
if ! bash tests/vm/build-cache.sh; then
  echo "vm: cache build failed"; echo "0 passed, 1 failed"; exit 1
fi
echo "vm: cache ready after $(since "$T0")s"
LOG=$ROOT/target/vm-out/run-all.log
mkdir -p "$(dirname "$LOG")"; : > "$LOG"
ran=0
for f in cli/tests/vm_*.rs cli/tests/trace_*.rs; do
  [ -e "$f" ] || continue
  ran=$((ran + 1))
  name=$(basename "$f" .rs)
  t=$(date +%s.%N)
  # two guests at a time: TCG on this 2-core machine; vm_doctor asks
  # PC/SC from the guest (libpcsclite is in the guest image)
  features=; [ "$name" = vm_doctor ] && features="--features pcsc"
  out=$(cargo test -q -p ferroccid-cli $features --test "$name" -- --test-threads=2 2>&1); rc=$?
  echo "$out" >> "$LOG"
  p=$(echo "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' | tail -1)
  q=$(echo "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' | tail -1)
  if [ -z "$p" ]; then p=0; q=1; echo "$out" | tail -20; fi   # did not build or crashed
  [ $rc != 0 ] && [ "$q" = 0 ] && q=1
  passed=$((passed + p)); failed=$((failed + q))
  printf 'vm: %-22s %3s passed %3s failed  %6ss\n' "$name" "$p" "$q" "$(since "$t")"
  [ "$q" != 0 ] && echo "$out" | grep -E '^(test .* FAILED|---- |thread .* panicked)' | head -20
done
# No test file found is a failure, not an empty success.
[ "$ran" = 0 ] && { echo "vm: no cli/tests/vm_*.rs found"; failed=$((failed + 1)); }
echo "vm: total $(since "$T0")s (log: $LOG)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
