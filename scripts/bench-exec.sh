#!/usr/bin/env bash
# ECS Exec: start-to-exit of `true` through `aws ecs execute-command` (v1 and v2) and
# `berth exec` against `ctr task exec` on the same container; keystroke echo round
# trip (p50/p99); `cat` of a 100 MB file through a session against `ctr task exec`.
# Release builds, brought up by scripts/up.sh under a private data dir; the demo task
# runs with execute command enabled.
# usage: scripts/bench-exec.sh [RUNS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_DATA_DIR=${BERTH_DATA_DIR:-/tmp/berth-bench-exec}
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT
scripts/up.sh >/dev/null
set -a; . "$BERTH_DATA_DIR/aws.env"; . "$BERTH_DATA_DIR/env/env"; set +a
. scripts/lib.sh
export BERTH_NAMESPACE
TASK=$(aws ecs list-tasks --family berth-demo --query 'taskArns[0]' --output text)
python3 tests/bench/exec_bench.py "$TASK" "$(pwd)/target/release" "${1:-20}"
