#!/usr/bin/env bash
# RunTask-to-RUNNING latency (median of N, cached image) beside `ctr run` of
# the same image on the same containerd, in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
export BERTH_DATA_DIR=${BERTH_DATA_DIR:-/tmp/berth-bench}
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT
scripts/up.sh >/dev/null
set -a; . "$BERTH_DATA_DIR/aws.env"; . "$BERTH_DATA_DIR/env/env"; set +a
python3 tests/bench/runtask_latency.py "$BERTH_DEMO_IMAGE" "$N"
scripts/bench-ctr-run.sh "$BERTH_CONTAINERD_SOCK" "$BERTH_DEMO_IMAGE" "$N"
