#!/usr/bin/env bash
# How many awsvpc tasks (one small container each) one agent keeps running
# on this host, with the agent's RSS at 0, 100 and the maximum.
# Usage: scripts/bench-density.sh [MAX]   (default 300; release build, via up.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=${1:-300}
export BERTH_DATA_DIR=${BERTH_DATA_DIR:-/tmp/berth-density}
# A /22: a /24 holds only 253 task addresses.
export BERTH_TASK_CIDR=${BERTH_TASK_CIDR:-10.140.0.0/22}
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT
scripts/up.sh >/dev/null
. scripts/lib.sh
set -a; . "$BERTH_DATA_DIR/aws.env"; . "$BERTH_DATA_DIR/env/env"; set +a
python3 tests/bench/density.py "$(cat "$RUN_DIR/agent.pid")" "$BERTH_NAMESPACE" "$BERTH_DEMO_IMAGE" "$MAX"
