#!/usr/bin/env bash
# awslogs throughput: one container writes LINES lines of 99 bytes as fast as it can
# (busybox `yes | head`); measured from its first line to the last one queryable in the
# control plane's log store, with every line counted (storedBytes), and the daemons'
# peak RSS. Release builds, brought up by scripts/up.sh under a private data dir.
# Then FilterLogEvents over 10 million events (cargo bench ... logs_filter).
# usage: scripts/bench-logs.sh [LINES]   (default 2,000,000: about 200 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-2000000}
export BERTH_DATA_DIR=${BERTH_DATA_DIR:-/tmp/berth-bench-logs}
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT
scripts/up.sh >/dev/null
set -a; . "$BERTH_DATA_DIR/aws.env"; . "$BERTH_DATA_DIR/env/env"; set +a
python3 tests/bench/logs_throughput.py "$BERTH_DEMO_IMAGE" "$LINES" "$BERTH_DATA_DIR/run"
cargo bench -p berth-controlplane --bench logs_filter
