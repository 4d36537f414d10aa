#!/usr/bin/env bash
# On the control-plane VM, once every agent VM is up: waits until AGENTS
# container instances are connected, then runs the demo task (busybox httpd)
# once per agent and shows where each landed. Re-running replaces the demo
# tasks of an earlier run.
# Usage: demo.sh AGENTS REGISTRY
AGENTS=${1:?usage: demo.sh AGENTS REGISTRY}
REGISTRY=${2:?}
. "$(dirname "$0")/lib.sh"
set -a; . /var/lib/berth/aws.env; set +a
# Debian's aws CLI predates AWS_ENDPOINT_URL: pass the endpoint explicitly.
ecs() { aws --endpoint-url "$AWS_ENDPOINT_URL" ecs "$@"; }

connected() {
  [ "$(ecs list-container-instances --query 'length(containerInstanceArns)' --output text)" -ge "$AGENTS" ] || return 1
  local arns
  arns=$(ecs list-container-instances --query 'containerInstanceArns[]' --output text)
  # shellcheck disable=SC2086
  [ "$(ecs describe-container-instances --container-instances $arns \
      --query 'length(containerInstances[?agentConnected])' --output text)" -ge "$AGENTS" ]
}
echo "waiting for $AGENTS agents to connect"
wait_for 900 "$AGENTS connected agents" connected

for t in $(ecs list-tasks --started-by berth-lab-demo --query 'taskArns[]' --output text); do
  ecs stop-task --task "$t" --reason "berth lab demo re-run" >/dev/null
done

cat >/tmp/berth-demo-task.json <<JSON
{
  "family": "berth-demo",
  "networkMode": "awsvpc",
  "containerDefinitions": [
    {"name": "web", "image": "$REGISTRY/berth/demo:latest", "essential": true,
     "memory": 64, "stopTimeout": 2,
     "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
  ]
}
JSON
ecs register-task-definition --cli-input-json file:///tmp/berth-demo-task.json >/dev/null
# One task per agent, said the ECS way.
tasks=$(ecs run-task --task-definition berth-demo --count "$AGENTS" --started-by berth-lab-demo \
  --placement-strategy type=spread,field=instanceId \
  --query 'tasks[].taskArn' --output text)
for t in $tasks; do
  berth wait task-running "$t" --timeout 600
done
berth tasks
ecs describe-tasks --tasks $tasks --output table \
  --query 'tasks[].{task: taskArn, instance: containerInstanceArn, ip: attachments[0].details[?name==`privateIPv4Address`] | [0].value}'
echo "Each task's IP answers on its agent VM: vagrant ssh berth-agent-N -c 'curl -s http://IP/' (or wget -qO-)"
