#!/usr/bin/env bash
# The property tests that stand in for fuzz targets, run long: every decoder of outside
# input (the AWS edge: SigV4 and the JSON and query protocols; Session Manager frames;
# filter patterns; Logs Insights; ECS request bodies; the agent's control-plane messages)
# on CASES generated inputs each (default 200,000; CI runs 256). Prints cases and time
# per target; a failure prints proptest's minimal failing input.
# usage: scripts/fuzz-nightly.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${1:-200000}
# Keep the shrinking of a failure bounded in time, not in steps.
export PROPTEST_MAX_SHRINK_TIME=60000
targets=(
  "berth-aws edge::tests::fuzz"
  "berth-aws ssm_channel::tests::fuzz"
  "berth-controlplane fuzz_tests"
  "berth-agent session::convert::tests::fuzz"
)
cargo test --release --lib -p berth-aws -p berth-controlplane -p berth-agent --no-run >/dev/null 2>&1
for t in "${targets[@]}"; do
  set -- $t
  start=$(date +%s.%N)
  cargo test --release -q --lib -p "$1" -- "$2" --test-threads=2 2>&1 | grep -E "^test result|panicked|minimal failing" || true
  end=$(date +%s.%N)
  printf "%-45s cases_per_property=%s seconds=%s\n" "$1 $2" "$PROPTEST_CASES" "$(awk "BEGIN{printf \"%.1f\", $end - $start}")"
done
