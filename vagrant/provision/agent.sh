#!/usr/bin/env bash
# An agent VM: berth-agent joins the control plane over the private network
# (cluster "default", as a container instance) and runs tasks on containerd.
# Usage: agent.sh REPO CONTROL_PLANE_URL TASK_CIDR REGISTRY
REPO=${1:?usage: agent.sh REPO CONTROL_PLANE_URL TASK_CIDR REGISTRY}
CONTROL_PLANE=${2:?} TASK_CIDR=${3:?} REGISTRY=${4:?}
. "$REPO/vagrant/provision/lib.sh"

ENVF=/etc/berth/agent.env
set_env "$ENVF" BERTH_CONTROL_PLANE "$CONTROL_PLANE"
# First provisioning only: the token vagrant/lab-join-token.sh fetched from
# berth-cp. Once joined, the agent keeps its certificate and needs no token.
TOKEN_FILE="$REPO/vagrant/.lab/join-token-$(hostname)"
if [ ! -f /var/lib/berth/agent/pki/agent.key ]; then
  [ -s "$TOKEN_FILE" ] || { echo "no join token at $TOKEN_FILE (made on the host before 'vagrant up')" >&2; exit 1; }
  set_env "$ENVF" BERTH_JOIN_TOKEN "$(cat "$TOKEN_FILE")"
fi
set_env "$ENVF" BERTH_TASK_CIDR "$TASK_CIDR"
set_env "$ENVF" BERTH_INSECURE_REGISTRIES "$REGISTRY"
systemctl enable --now containerd
systemctl enable berth-agent
systemctl restart berth-agent
# Type=notify: active means the agent is ready (connected or retrying with backoff).
wait_for 60 "berth-agent" systemctl is-active --quiet berth-agent
echo "agent up: control plane $CONTROL_PLANE, tasks in $TASK_CIDR"
