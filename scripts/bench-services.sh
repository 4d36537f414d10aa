#!/usr/bin/env bash
# Service benchmarks: a rolling deploy of 10 health-checked tasks, and an
# agent lost (killed, frozen) until its tasks run elsewhere. Two agents on
# this host, debug builds, a private containerd and registry. Needs root.
# usage: scripts/bench-services.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
ENV_DIR=$(mktemp -d /tmp/berth-bench-svc.XXXXXX)
trap 'scripts/test-env.sh stop "$ENV_DIR" >/dev/null 2>&1 || true; rm -rf "$ENV_DIR"' EXIT
# On a shared build machine set CARGO_LOCK to a flock file to take turns.
${CARGO_LOCK:+flock "$CARGO_LOCK"} cargo build --workspace --bins
${CARGO_LOCK:+flock "$CARGO_LOCK"} cargo build -p berth-e2e --example bench_services
scripts/test-env.sh start "$ENV_DIR" >/dev/null
set -a; . "$ENV_DIR/env"; set +a
target/debug/examples/bench_services "$ROUNDS"
