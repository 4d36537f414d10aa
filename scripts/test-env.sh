#!/usr/bin/env bash
# Private containerd + docker-registry for Berth tests.
#
# Usage: scripts/test-env.sh start DIR   # writes DIR/env (source it)
#        scripts/test-env.sh stop DIR    # kills everything start created
#
# Everything lives under DIR so several test environments (and a system
# containerd) can coexist on one host.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
CMD=$1
# containerd wants absolute paths, and pid-file checks compare against them.
DIR=$(realpath -m "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
CD="$DIR/containerd"
RG="$DIR/registry"
SOCK="$CD/containerd.sock"
DEADLINE_S=${BERTH_TEST_ENV_TIMEOUT:-20}

die() { echo "test-env: $*" >&2; exit 1; }

# True if PID runs and its command line mentions DIR: guards against a
# recycled pid in a stale pid file belonging to someone else.
ours() {
  local pid=$1 st
  [ -r "/proc/$pid/cmdline" ] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1   # zombies are dead; PID 1 reaps them later
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$DIR/"
}

# Poll until "$@" succeeds; fail with the log tail at the deadline.
wait_for() {
  local what=$1 log=$2 pid=$3; shift 3
  local end=$(( $(date +%s) + DEADLINE_S ))
  until "$@" >/dev/null 2>&1; do
    ours "$pid" || { tail -n 20 "$log" >&2; die "$what exited during startup (log: $log)"; }
    [ "$(date +%s)" -lt "$end" ] || { tail -n 20 "$log" >&2; die "$what not ready after ${DEADLINE_S}s"; }
    sleep 0.1
  done
}

# TERM, then KILL after a grace period; return only once the pid is gone.
kill_wait() {
  local pid=$1 i
  ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do ours "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 50); do ours "$pid" || return 0; sleep 0.1; done
  die "pid $pid would not die"
}

# Shims re-parent to init and outlive containerd, so they (and the
# containers under them) must be cleaned up explicitly.
stop_containers() {
  local ns id pid kid args root
  if [ -S "$SOCK" ] && ctr --address "$SOCK" version >/dev/null 2>&1; then
    for ns in $(ctr --address "$SOCK" namespaces ls -q); do
      for id in $(ctr --address "$SOCK" -n "$ns" tasks ls -q); do
        ctr --address "$SOCK" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1 || true
      done
      for id in $(ctr --address "$SOCK" -n "$ns" containers ls -q); do
        ctr --address "$SOCK" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  # Fallback for a dead containerd: shims started for our socket.
  for pid in $(grep -lsF -- "$SOCK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    args=$({ tr "\0" " " <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
    [[ $args =~ containerd-shim.*-namespace\ ([^ ]+)\ -id\ ([^ ]+) ]] || continue
    ns=${BASH_REMATCH[1]} id=${BASH_REMATCH[2]}
    # runc keeps state outside DIR (default /run/containerd/runc/NS); a
    # leftover entry would make a later container with this id fail.
    root=$(sed -n 's/.*"root":"\([^"]*\)".*/\1/p' \
      "$CD/state/io.containerd.runtime.v2.task/$ns/$id/options.json" 2>/dev/null || true)
    runc --root "${root:-/run/containerd/runc}/$ns" delete --force "$id" >/dev/null 2>&1 || true
    for kid in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do kill -KILL "$kid" 2>/dev/null || true; done
    kill_wait "$pid"
  done
}

# Leftover container rootfs mounts would make rm -rf walk into them.
umount_under_dir() {
  local m
  for m in $(awk -v d="$DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  ! awk -v d="$DIR/" 'index($5, d) == 1 {f=1} END {exit !f}' /proc/self/mountinfo \
    || die "mounts remain under $DIR; refusing to delete it"
}

do_stop() {
  stop_containers
  [ -f "$CD/pid" ] && kill_wait "$(cat "$CD/pid")"
  [ -f "$RG/pid" ] && kill_wait "$(cat "$RG/pid")"
  stop_containers   # shims that raced with containerd's shutdown
  umount_under_dir
  rm -f "$CD/pid" "$RG/pid" "$DIR/env"
}

free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}

start_containerd() {
  mkdir -p "$CD/root" "$CD/state" "$CD/opt"
  # Without --config containerd reads /etc/containerd/config.toml (shared
  # with the system instance).  The CRI plugin is unneeded, opens a TCP
  # stream port and logs CNI errors; devmapper only logs errors.
  cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
EOF
  # setsid: survive the caller's Ctrl-C / process-group kill.
  setsid containerd --config "$CD/config.toml" --root "$CD/root" --state "$CD/state" \
    --address "$SOCK" >"$CD/containerd.log" 2>&1 </dev/null &
  echo $! >"$CD/pid"
  wait_for containerd "$CD/containerd.log" "$(cat "$CD/pid")" ctr --address "$SOCK" version
}

start_registry() {
  local try port
  mkdir -p "$RG/data"
  # The port is picked before the registry binds it, so retry if another
  # process grabbed it in between.
  for try in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$RG/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $RG/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    setsid docker-registry serve "$RG/config.yml" >"$RG/registry.log" 2>&1 </dev/null &
    echo $! >"$RG/pid"
    if (wait_for registry "$RG/registry.log" "$(cat "$RG/pid")" \
          curl -fsS "http://127.0.0.1:$port/v2/"); then
      REGISTRY=127.0.0.1:$port; return
    fi
    kill_wait "$(cat "$RG/pid")"
  done
  die "registry failed to start (log: $RG/registry.log)"
}

do_start() {
  # unix sockets are limited to 108 bytes.
  [ ${#SOCK} -lt 100 ] || die "DIR path too long for a unix socket: $SOCK.ttrpc"
  for b in containerd ctr docker-registry curl umoci skopeo; do
    command -v "$b" >/dev/null || die "$b missing; run scripts/install-deps.sh"
  done
  # Stale DIR (crashed run, previous start): clean it out completely so
  # no dead shim state or old image confuses the next test.
  do_stop
  rm -rf "$CD" "$RG"
  mkdir -p "$DIR"
  start_containerd
  start_registry
  "$HERE/build-demo-image.sh" "$REGISTRY" >"$DIR/build-demo-image.log" 2>&1 \
    || { cat "$DIR/build-demo-image.log" >&2; die "demo image build failed"; }
  cat >"$DIR/env" <<EOF
BERTH_CONTAINERD_SOCK=$SOCK
BERTH_REGISTRY=$REGISTRY
BERTH_DEMO_IMAGE=$REGISTRY/berth/demo:latest
EOF
  cat "$DIR/env"
}

case "$CMD" in
  start) do_start ;;
  stop) do_stop ;;
  *) usage ;;
esac
