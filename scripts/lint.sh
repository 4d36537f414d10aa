#!/usr/bin/env bash
# The habits CI holds the code to, before any test runs: rustfmt's layout,
# clippy with the workspace's lints (pedantic) as errors, and no source file
# over 500 lines of non-test code.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
for tool in fmt clippy; do
  cargo "$tool" --version >/dev/null 2>&1 || {
    echo "lint: cargo $tool is missing: rustup component add ${tool/fmt/rustfmt}" >&2; exit 1; }
done
cargo fmt --all --check
# (berth-ecs's test-strings feature, on through dev-dependencies, is unified
# into this build: code that compared a status with a string would pass here
# and fail the `cargo build --workspace --bins` of scripts/test.sh.)
cargo clippy --workspace --all-targets -- -D warnings
python3 scripts/check-file-size.py
echo "lint: ok"
