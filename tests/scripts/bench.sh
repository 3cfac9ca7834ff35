#!/usr/bin/env bash
# Runs the benchmarks under benches/ (see benches/README.md).
#
#   bench.sh [FILTER]          smoke mode: debug build, two tiny rounds per
#                              benchmark. Checks that every bench compiles,
#                              runs and still gets correct answers (each bench
#                              asserts its results before timing). No timing
#                              is asserted: the figures printed mean nothing.
#   bench.sh --full [FILTER]   the real measurement: `cargo bench` (release
#                              profile), ratios against same-run baselines.
#
# Ends with "benches: N passed, M failed" and a non-zero status on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=smoke
if [[ "${1:-}" == "--full" ]]; then
  mode=full
  shift
fi
benches=(protocol_core ccid_wire reader_sim multi_slot)

if [[ $mode == smoke ]]; then
  cargo test -p ferroccid --benches --no-run
else
  cargo bench -p ferroccid --benches --no-run
fi

passed=0
failed=0
for b in "${benches[@]}"; do
  echo "== bench $b ($mode)"
  if [[ $mode == smoke ]]; then
    run=(cargo test -q -p ferroccid --bench "$b" -- --smoke "$@")
  else
    run=(cargo bench -q -p ferroccid --bench "$b" -- "$@")
  fi
  if "${run[@]}"; then
    passed=$((passed + 1))
  else
    echo "bench $b FAILED"
    failed=$((failed + 1))
  fi
done
echo "benches: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
