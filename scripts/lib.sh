# Shared by up.sh and down.sh: every name is derived from BERTH_DATA_DIR, so
# two copies with different data dirs never collide.
BERTH_DATA_DIR=$(realpath -m "${BERTH_DATA_DIR:-/var/lib/berth}")
if [ "$BERTH_DATA_DIR" = /var/lib/berth ]; then
  BERTH_TAG=""; BERTH_NET=0
else
  h=$(printf %s "$BERTH_DATA_DIR" | sha256sum | cut -c1-6)
  BERTH_TAG="-$h"; BERTH_NET=$(( (16#$h % 250) + 1 ))
fi
BERTH_NAMESPACE="berth${BERTH_TAG}"
BERTH_BRIDGE="berth${BERTH_TAG:+${BERTH_TAG#-}}"; BERTH_BRIDGE=${BERTH_BRIDGE:0:15}
[ -n "$BERTH_TAG" ] || BERTH_BRIDGE=berth0
BERTH_TASK_CIDR=${BERTH_TASK_CIDR:-"10.131.${BERTH_NET}.0/24"}
ENV_DIR="$BERTH_DATA_DIR/env"
CP_DIR="$BERTH_DATA_DIR/controlplane"
AGENT_DIR="$BERTH_DATA_DIR/agent"
RUN_DIR="$BERTH_DATA_DIR/run"

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# TERM the pid in FILE, KILL after 10 s; return once it is gone.
stop_pidfile() {
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
