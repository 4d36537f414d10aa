#!/usr/bin/env bash
# Installs Berth as systemd services: the daemons in /usr/local/bin, the
# units in /etc/systemd/system, default settings in /etc/berth (existing
# files are kept: they are the operator's), and /var/lib/berth.
#
# Usage: scripts/install.sh [--bin-dir DIR] [--dry-run]
#   --bin-dir DIR  take the binaries from DIR (default: build them with
#                  `cargo build --release --bins` and use target/release)
#   --dry-run      print what would be done, change nothing
#   DESTDIR=ROOT   install under ROOT instead of / (packaging, CI); then
#                  root is not required and systemd is not told.
# Then: systemctl enable --now berth-controlplane berth-agent
set -euo pipefail
CALLER=$(pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# Paths the caller gave are relative to where they ran us from.
abs() { (cd "$CALLER" && realpath -m "$1"); }

BIN_DIR="" DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
    --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
DESTDIR=${DESTDIR:-}
[ -z "$DESTDIR" ] || DESTDIR=$(abs "$DESTDIR")
[ -z "$BIN_DIR" ] || BIN_DIR=$(abs "$BIN_DIR")

if [ -z "$DESTDIR" ] && [ $DRY = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or set DESTDIR)" >&2; exit 1
fi

# Each change goes through here, so --dry-run shows exactly what a real
# run does.
run() {
  if [ $DRY = 1 ]; then echo "would run: $*"; else "$@"; fi
}

if [ -z "$BIN_DIR" ]; then
  BIN_DIR="$ROOT/target/release"
  if [ $DRY = 1 ]; then
    echo "would run: cargo build --release --bins"
  else
    export PATH="$HOME/.cargo/bin:$PATH"
    cargo build --release --bins
  fi
fi

BINS=(berth-controlplane berth-agent)
# The berth CLI, once it exists, goes along.
[ -x "$BIN_DIR/berth" ] && BINS+=(berth)
# What `aws ecs execute-command` runs, found on PATH.
[ -x "$BIN_DIR/session-manager-plugin" ] && BINS+=(session-manager-plugin)
if [ $DRY = 0 ]; then
  for b in "${BINS[@]}"; do
    [ -x "$BIN_DIR/$b" ] || { echo "install.sh: $BIN_DIR/$b missing or not executable" >&2; exit 1; }
  done
fi

for b in "${BINS[@]}"; do
  run install -D -m 0755 "$BIN_DIR/$b" "$DESTDIR/usr/local/bin/$b"
done
for u in berth-controlplane.service berth-agent.service; do
  run install -D -m 0644 "systemd/$u" "$DESTDIR/etc/systemd/system/$u"
done
run install -d -m 0755 "$DESTDIR/etc/berth"
for e in controlplane.toml agent.toml; do
  if [ -e "$DESTDIR/etc/berth/$e" ]; then
    echo "keeping $DESTDIR/etc/berth/$e (yours); the current defaults are in systemd/$e"
  else
    run install -m 0644 "systemd/$e" "$DESTDIR/etc/berth/$e"
  fi
done
run install -d -m 0755 "$DESTDIR/var/lib/berth"

# Only the live system has a systemd to tell, and only when it runs.
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
fi
[ $DRY = 1 ] && exit 0
echo "Berth installed${DESTDIR:+ under $DESTDIR}. Start it with:"
echo "  systemctl enable --now berth-controlplane berth-agent"
