#!/usr/bin/env bash
# The control-plane VM: a registry holding the demo image (agents pull it over
# the private network), and berth-controlplane serving the ECS API and the
# agents' gRPC on the private address.
# Usage: controlplane.sh REPO CP_IP API_PORT AGENT_PORT [CIDR=AGENT_IP,...]
REPO=${1:?usage: controlplane.sh REPO CP_IP API_PORT AGENT_PORT [CIDR=AGENT_IP,...]}
CP_IP=${2:?} API_PORT=${3:?} AGENT_PORT=${4:?} TASK_ROUTES=${5:-}
. "$REPO/vagrant/provision/lib.sh"

# The load balancers' proxy runs here and reaches awsvpc tasks on every agent: a
# route to each agent's task range through that agent (kept across reboots).
for r in ${TASK_ROUTES//,/ }; do
  ip route replace "${r%=*}" via "${r#*=}"
done
if [ -n "$TASK_ROUTES" ]; then
  cat >/etc/network/if-up.d/berth-task-routes <<SH
#!/bin/sh
# Written by Berth's vagrant/provision/controlplane.sh: routes to the agents' tasks.
for r in $(echo "$TASK_ROUTES" | tr , ' '); do ip route replace "\${r%=*}" via "\${r#*=}" || true; done
SH
  chmod +x /etc/network/if-up.d/berth-task-routes
fi

apt_install docker-registry skopeo umoci busybox-static awscli
# The lab's own registry settings: Debian's default config turns on htpasswd
# auth with a directory as the password file, so every push fails (400).
# Plain HTTP on :5000 (all addresses), storage where Debian keeps it.
cat >/etc/docker/registry/config.yml <<'YML'
# Written by Berth's vagrant/provision/controlplane.sh: no auth, lab only.
version: 0.1
log:
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
YML
systemctl enable docker-registry
systemctl restart docker-registry
wait_for 60 "the registry" bash -c "exec 3<>/dev/tcp/$CP_IP/5000"
BUSYBOX=/bin/busybox "$REPO/scripts/build-demo-image.sh" "$CP_IP:5000"

ENVF=/etc/berth/controlplane.env
# The API on the private address, so aws.env's endpoint works from any VM
# (and from the host); agents connect to BERTH_AGENT_LISTEN.
set_env "$ENVF" BERTH_API_LISTEN "$CP_IP:$API_PORT"
set_env "$ENVF" BERTH_AGENT_LISTEN "$CP_IP:$AGENT_PORT"
# Agents dial the private address: the agent endpoint's TLS certificate
# covers it (the listen address is included anyway; say it for clarity).
set_env "$ENVF" BERTH_AGENT_TLS_SANS "$CP_IP"
# Load balancer listeners answer on the private address too: DNSName is it.
set_env "$ENVF" BERTH_LB_LISTEN_ADDRESS "$CP_IP"
systemctl enable berth-controlplane
systemctl restart berth-controlplane
wait_for 60 "berth-controlplane's aws.env" grep -q "AWS_ENDPOINT_URL=https://$CP_IP:$API_PORT" /var/lib/berth/aws.env
echo "control plane up: ECS API http://$CP_IP:$API_PORT, agents $CP_IP:$AGENT_PORT"
