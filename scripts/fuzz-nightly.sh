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
# Every run names all three packages, so cargo builds one feature set once (per-package
# runs would each rebuild with their own features); each filter matches one crate's tests.
PKGS=(-p berth-aws -p berth-controlplane -p berth-agent)
cargo test --release --lib "${PKGS[@]}" --no-run >/dev/null 2>&1
for filter in edge::tests::fuzz ssm_channel::tests::fuzz fuzz_tests session::convert::tests::fuzz; do
  out=$(cargo test --release -q --lib "${PKGS[@]}" -- "$filter" --test-threads=2 2>&1) || { echo "$out"; exit 1; }
  ran=$(echo "$out" | grep -E "^test result: ok. [1-9]" | head -1)
  printf "%-32s cases_per_property=%s %s\n" "$filter" "$PROPTEST_CASES" "${ran#test result: }"
done
