#!/usr/bin/env bash
# Runs on the HOST, from a trigger before an agent VM comes up: asks the
# control-plane VM for a single-use join token and leaves it where that
# agent's provisioning finds it (vagrant/.lab/, synced into the guest with
# the source tree). Waits for berth-cp if it is still coming up.
# Usage: lab-join-token.sh AGENT_NAME
set -euo pipefail
NAME=${1:?usage: lab-join-token.sh AGENT_NAME}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/.lab/join-token-$NAME"
mkdir -p "$HERE/.lab"
chmod 700 "$HERE/.lab"
for _ in $(seq 180); do
  if token=$(cd "$HERE" && vagrant ssh berth-cp -c 'sudo berth join-token create --ttl 1h' 2>/dev/null | tr -d '\r' | grep '^berth1\.'); then
    (umask 077; printf '%s\n' "$token" >"$OUT")
    echo "join token for $NAME ready"
    exit 0
  fi
  sleep 5
done
echo "berth-cp did not hand out a join token in 15 minutes: is it up? (vagrant up berth-cp first, or vagrant up --no-parallel)" >&2
exit 1
