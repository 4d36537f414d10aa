#!/usr/bin/env bash
# Stops what up.sh started: tasks first (so the agent removes their
# namespaces, links and cgroups), then the daemons, containerd and the
# registry, then the host bridge and its rules. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ -f "$BERTH_DATA_DIR/aws.env" ] && [ -f "$RUN_DIR/controlplane.pid" ] && kill -0 "$(cat "$RUN_DIR/controlplane.pid")" 2>/dev/null; then
  set -a; . "$BERTH_DATA_DIR/aws.env"; set +a
  for cluster in $(aws ecs list-clusters --query 'clusterArns[]' --output text 2>/dev/null || true); do
    for task in $(aws ecs list-tasks --cluster "$cluster" --query 'taskArns[]' --output text 2>/dev/null || true); do
      aws ecs stop-task --cluster "$cluster" --task "$task" --reason "berth down" >/dev/null || true
    done
    # Wait (bounded) until the agent has stopped and cleaned every task.
    for i in $(seq 600); do
      left=$(aws ecs list-tasks --cluster "$cluster" --query 'length(taskArns)' --output text 2>/dev/null || echo 0)
      pending=$(aws ecs list-tasks --cluster "$cluster" --desired-status STOPPED --query 'taskArns[]' --output text 2>/dev/null || true)
      busy=0
      for t in $pending; do
        s=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$t" --query 'tasks[0].lastStatus' --output text 2>/dev/null || echo STOPPED)
        [ "$s" = STOPPED ] || busy=1
      done
      [ "$left" = 0 ] && [ $busy = 0 ] && break
      sleep 0.2
    done
  done
fi

stop_pidfile "$RUN_DIR/agent.pid"
stop_pidfile "$RUN_DIR/controlplane.pid"
[ -d "$ENV_DIR" ] && scripts/test-env.sh stop "$ENV_DIR" >/dev/null

# Whatever a crashed agent may have left for this data dir.
for ns in /var/run/netns/berth-*; do
  [ -e "$ns" ] || continue
  id=${ns##*/berth-}
  # Only namespaces of tasks this agent ran (their log dirs are ours).
  [ -d "$AGENT_DIR/tasks/$id" ] || continue
  ip link del "bv${id:0:12}" 2>/dev/null || true
  umount "$ns" 2>/dev/null || true
  rm -f "$ns"
done
ip link del "$BERTH_BRIDGE" 2>/dev/null || true
for spec in "nat POSTROUTING" "filter FORWARD"; do
  set -- $spec
  iptables -w -t "$1" -S "$2" 2>/dev/null | grep -F "berth:$BERTH_BRIDGE" | sed 's/^-A /-D /' | while read -r rule; do
    eval iptables -w -t "$1" "$rule" || true
  done
done
for d in /sys/fs/cgroup/*/berth/"$BERTH_NAMESPACE" /sys/fs/cgroup/berth/"$BERTH_NAMESPACE"; do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
echo "Berth is down ($BERTH_DATA_DIR)."
