#!/usr/bin/env bash
# Runs the lints (scripts/lint.sh: rustfmt, clippy, file size), then every
# test: unit tests, the privileged integration tests and the end-to-end
# tests, against a private containerd and a loopback registry that this
# script starts (scripts/test-env.sh) and stops again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/lint.sh
DIR=${BERTH_TEST_DIR:-/tmp/berth-test-env}
scripts/test-env.sh start "$DIR" >/dev/null
trap 'scripts/test-env.sh stop "$DIR"' EXIT
set -a; . "$DIR/env"; set +a
# The end-to-end tests start the daemons as a user would: build them first.
cargo build --workspace --bins
# Two test threads: this fits the 2-core machines the project runs on.
# --no-fail-fast: one failing test binary must not hide the others.
cargo test --workspace --no-fail-fast -- --test-threads=2
