#!/usr/bin/env bash
# Brings Berth up on this host: a private containerd and loopback registry,
# the control plane (embedded store) and one agent, then runs the demo task.
# All state under $BERTH_DATA_DIR (default /var/lib/berth).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/lib.sh
export PATH="$HOME/.cargo/bin:$PATH"

scripts/install-deps.sh
echo "==> building Berth (release)"
cargo build --release --bins
mkdir -p "$RUN_DIR" "$CP_DIR" "$AGENT_DIR"

echo "==> starting containerd and the registry"
scripts/test-env.sh start "$ENV_DIR" >/dev/null
set -a; . "$ENV_DIR/env"; set +a

stop_pidfile "$RUN_DIR/agent.pid"
stop_pidfile "$RUN_DIR/controlplane.pid"
API_PORT=${BERTH_API_PORT:-8500}; AGENT_PORT=${BERTH_AGENT_PORT:-8501}
if [ -n "$BERTH_TAG" ]; then API_PORT=$(free_port); AGENT_PORT=$(free_port); fi

echo "==> starting berth-controlplane on 127.0.0.1:$API_PORT"
rm -f "$CP_DIR/aws.env"
nohup "$ROOT/target/release/berth-controlplane" --data-dir "$CP_DIR" \
  --api-listen "127.0.0.1:$API_PORT" --agent-listen "127.0.0.1:$AGENT_PORT" \
  >"$RUN_DIR/controlplane.log" 2>&1 &
echo $! >"$RUN_DIR/controlplane.pid"
for i in $(seq 200); do [ -f "$CP_DIR/aws.env" ] && break; sleep 0.1; done
[ -f "$CP_DIR/aws.env" ] || { tail "$RUN_DIR/controlplane.log"; echo "control plane did not start" >&2; exit 1; }
cp "$CP_DIR/aws.env" "$BERTH_DATA_DIR/aws.env"

echo "==> starting berth-agent (bridge $BERTH_BRIDGE, tasks in $BERTH_TASK_CIDR)"
# First start: the agent trades a single-use join token for its client
# certificate (mutual TLS from then on); later starts reuse the certificate.
unset BERTH_JOIN_TOKEN
if [ ! -f "$AGENT_DIR/pki/agent.key" ]; then
  BERTH_JOIN_TOKEN=$("$ROOT/target/release/berth" --aws-env "$CP_DIR/aws.env" join-token create --ttl 10m 2>/dev/null)
  export BERTH_JOIN_TOKEN
fi
nohup "$ROOT/target/release/berth-agent" --data-dir "$AGENT_DIR" \
  --control-plane "https://127.0.0.1:$AGENT_PORT" --serves-fargate \
  --containerd-socket "$BERTH_CONTAINERD_SOCK" --containerd-namespace "$BERTH_NAMESPACE" \
  --bridge "$BERTH_BRIDGE" --task-cidr "$BERTH_TASK_CIDR" --insecure-registry "$BERTH_REGISTRY" \
  >"$RUN_DIR/agent.log" 2>&1 &
echo $! >"$RUN_DIR/agent.pid"

set -a; . "$BERTH_DATA_DIR/aws.env"; set +a
connected=""
for i in $(seq 300); do
  ci=$(aws ecs list-container-instances --query 'containerInstanceArns[0]' --output text 2>/dev/null || true)
  if [ -n "$ci" ] && [ "$ci" != None ]; then
    connected=$(aws ecs describe-container-instances --container-instances "$ci" \
      --query 'containerInstances[0].agentConnected' --output text 2>/dev/null || true)
    [ "$connected" = True ] && break
  fi
  sleep 0.1
done
[ "$connected" = True ] || { tail "$RUN_DIR/agent.log"; echo "agent did not connect" >&2; exit 1; }

echo "==> running the demo task (busybox httpd from $BERTH_DEMO_IMAGE)"
cat >"$RUN_DIR/demo-task.json" <<JSON
{
  "family": "berth-demo",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [
    {"name": "web", "image": "$BERTH_DEMO_IMAGE", "essential": true, "stopTimeout": 2,
     "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
  ]
}
JSON
aws ecs register-task-definition --cli-input-json "file://$RUN_DIR/demo-task.json" >/dev/null
TASK=$(aws ecs run-task --launch-type FARGATE --task-definition berth-demo --enable-execute-command --query 'tasks[0].taskArn' --output text)
for i in $(seq 600); do
  status=$(aws ecs describe-tasks --tasks "$TASK" --query 'tasks[0].lastStatus' --output text)
  [ "$status" = RUNNING ] || [ "$status" = STOPPED ] && break
  sleep 0.1
done
[ "$status" = RUNNING ] || { aws ecs describe-tasks --tasks "$TASK"; echo "demo task did not start" >&2; exit 1; }
IP=$(aws ecs describe-tasks --tasks "$TASK" \
  --query "tasks[0].attachments[0].details[?name=='privateIPv4Address'].value | [0]" --output text)

cat <<MSG

Berth is up.
  ECS API:   $AWS_ENDPOINT_URL   (credentials: $BERTH_DATA_DIR/aws.env)
  demo task: $TASK
  task IP:   $IP

Try:
  curl http://$IP/
  set -a; . $BERTH_DATA_DIR/aws.env; set +a; aws ecs describe-tasks --tasks $TASK
  $ROOT/target/release/berth --data-dir $BERTH_DATA_DIR exec $TASK -- /bin/sh
  PATH=$ROOT/target/release:\$PATH aws ecs execute-command --task $TASK --interactive --command /bin/sh
Stop everything: BERTH_DATA_DIR=$BERTH_DATA_DIR ./scripts/down.sh
MSG
