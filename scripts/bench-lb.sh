#!/usr/bin/env bash
# Berth's embedded load balancer beside HAProxy and nginx as reverse proxies, on
# loopback: the same two nginx backends behind each, the same wrk load (HTTP/1.1
# keep-alive, then HTTPS), one proxy at a time. Then how long a newly registered target takes
# to get traffic through Berth's listener. Needs root: haproxy, nginx and wrk
# come from apt-get when missing.
#
# Usage: scripts/bench-lb.sh
#        BERTH_BIN_DIR   where berth-controlplane is (default target/release;
#                        target/debug runs, but its numbers mean nothing)
#        BENCH_SECS      each measured wrk run (default 15), after a warm-up of
#                        BENCH_WARMUP_SECS (default 3)
#        BENCH_THREADS, BENCH_CONNS   wrk's -t and -c (default 2 and 64)
#        BENCH_ROUNDS    config-change rounds (default 3)
# Output: the machine and versions; per proxy requests/s, p99 latency, both as a
# ratio to HAProxy's, and failed requests; then each config-change round in ms.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BERTH_BIN_DIR:-target/release}
CP_BIN=$(realpath -m "$BIN_DIR/berth-controlplane")
SECS=${BENCH_SECS:-15}
WARMUP=${BENCH_WARMUP_SECS:-3}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
NPROC=$(nproc)
DEADLINE_S=30
# The two backends every proxy fronts; each config-change round adds a fresh one
# after them (127.0.0.4, .5, ...). Any 127/8 address answers on loopback.
BACKENDS=(127.0.0.2 127.0.0.3)
EXTRA=()
for i in $(seq "$ROUNDS"); do EXTRA+=("127.0.0.$((3 + i))"); done

die() { echo "bench-lb: $*" >&2; exit 1; }

[ -x "$CP_BIN" ] || die "$CP_BIN is missing: run \`cargo build --release -p berth-controlplane\` (or set BERTH_BIN_DIR)"

DIR=$(mktemp -d /tmp/berth-bench-lb.XXXXXX)
PIDS=()
POLICY_RC=
cleanup() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ -z "$POLICY_RC" ] || rm -f "$POLICY_RC"
  rm -rf "$DIR"
}
trap cleanup EXIT

# Installing nginx or haproxy starts the distribution's service (nginx on :80);
# a policy-rc.d that says no keeps the install from starting anything.
missing=()
for c in haproxy nginx wrk curl; do command -v "$c" >/dev/null || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-lb: installing ${missing[*]}" >&2
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    POLICY_RC=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"; chmod +x "$POLICY_RC"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$POLICY_RC" ] || { rm -f "$POLICY_RC"; POLICY_RC=; }
fi
command -v aws >/dev/null || die "the aws CLI is missing: scripts/install-deps.sh installs it"

# A TCP port free on every address, so each 127.0.0.x backend can bind it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port) AGENT_PORT=$(free_port) BACKEND_PORT=$(free_port)
HA_PORT=$(free_port) NGX_PORT=$(free_port) LB_PORT=$(free_port)
HA_TLS_PORT=$(free_port) NGX_TLS_PORT=$(free_port) LB_TLS_PORT=$(free_port)
# One self-signed certificate (ECDSA P-256) every proxy serves for HTTPS.
TLS="$DIR/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench.example.test -keyout "$TLS/key.pem" -out "$TLS/cert.pem" 2>/dev/null
cat "$TLS/cert.pem" "$TLS/key.pem" >"$TLS/combined.pem"

# Poll until "$@" succeeds, for at most DEADLINE_S; LOG's tail explains a failure.
wait_for() {
  local what=$1 log=$2; shift 2
  local end=$(( $(date +%s) + DEADLINE_S ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      tail -n 20 "$log" >&2
      die "$what not ready after ${DEADLINE_S}s (log: $log)"
    fi
    sleep 0.05
  done
}

# nginx run as root drops its workers to www-data, which cannot enter the 0700 DIR.
NGINX_USER=; [ "$(id -u)" -ne 0 ] || NGINX_USER="user root;"
# Temp dirs and logs under PREFIX: no nginx instance here touches /var.
nginx_common() {
  local prefix=$1
  mkdir -p "$prefix/tmp"
  cat <<EOF
daemon off;
$NGINX_USER
worker_processes $NPROC;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {
  local prefix=$1
  cat <<EOF
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  # nginx closes a keep-alive connection after 1000 requests by default;
  # HAProxy and Berth do not, so neither does nginx here.
  keepalive_requests 1000000;
EOF
}

# --- Backends: one nginx, a server block per address, each file (100 bytes)
# naming its backend so the config-change rounds can tell who answered.
B="$DIR/backends"
mkdir -p "$B"
{
  nginx_common "$B"
  echo "http {"
  nginx_http_common "$B"
  for ip in "${BACKENDS[@]}" "${EXTRA[@]}"; do
    mkdir -p "$B/www/$ip"
    printf '%-99s\n' "backend $ip" >"$B/www/$ip/index.html"
    echo "  server { listen $ip:$BACKEND_PORT; root $B/www/$ip; }"
  done
  echo "}"
} >"$B/nginx.conf"
nginx -e "$B/error.log" -p "$B" -c "$B/nginx.conf" &
PIDS+=($!)
for ip in "${BACKENDS[@]}" "${EXTRA[@]}"; do
  wait_for "backend $ip" "$B/error.log" curl -sf "http://$ip:$BACKEND_PORT/index.html"
done

# --- HAProxy: round robin, keep-alive on both sides, idle server connections
# shared between clients (as Berth's and nginx's pools are).
H="$DIR/haproxy"
mkdir -p "$H"
cat >"$H/haproxy.cfg" <<EOF
global
  nbthread $NPROC
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:$HA_PORT
  default_backend backends
frontend bench_tls
  bind 127.0.0.1:$HA_TLS_PORT ssl crt $TLS/combined.pem alpn http/1.1
  default_backend backends
backend backends
  balance roundrobin
$(for i in "${!BACKENDS[@]}"; do echo "  server b$i ${BACKENDS[i]}:$BACKEND_PORT check inter 5s"; done)
EOF
haproxy -f "$H/haproxy.cfg" >"$H/haproxy.log" 2>&1 &
PIDS+=($!)
wait_for HAProxy "$H/haproxy.log" curl -sf "http://127.0.0.1:$HA_PORT/index.html"

# --- nginx as a proxy: an upstream with a keep-alive pool to the backends.
N="$DIR/nginx-proxy"
mkdir -p "$N"
{
  nginx_common "$N"
  echo "http {"
  nginx_http_common "$N"
  cat <<EOF
  upstream backends {
$(for ip in "${BACKENDS[@]}"; do echo "    server $ip:$BACKEND_PORT;"; done)
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    listen 127.0.0.1:$NGX_TLS_PORT ssl;
    ssl_certificate $TLS/cert.pem;
    ssl_certificate_key $TLS/key.pem;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$N/nginx.conf"
nginx -e "$N/error.log" -p "$N" -c "$N/nginx.conf" &
PIDS+=($!)
wait_for "nginx proxy" "$N/error.log" curl -sf "http://127.0.0.1:$NGX_PORT/index.html"

# --- Berth: a control plane of its own, configured through the ELBv2 API.
CP_LOG="$DIR/controlplane.log"
"$CP_BIN" --data-dir "$DIR/cp" --api-listen "127.0.0.1:$API_PORT" \
  --agent-listen "127.0.0.1:$AGENT_PORT" --api-plain-http \
  --lb-listen-address 127.0.0.1 >"$CP_LOG" 2>&1 &
PIDS+=($!)
wait_for "berth-controlplane" "$CP_LOG" test -f "$DIR/cp/aws.env"
set -a; . "$DIR/cp/aws.env"; set +a
export AWS_PAGER=""
# Debian's aws v2.9 ignores AWS_ENDPOINT_URL: name the endpoint on every call.
elb() { aws --endpoint-url "$AWS_ENDPOINT_URL" elbv2 "$@"; }
TG=$(elb create-target-group --name bench --protocol HTTP --port "$BACKEND_PORT" \
  --vpc-id vpc-1 --target-type ip --health-check-path / \
  --health-check-interval-seconds 5 --health-check-timeout-seconds 2 \
  --healthy-threshold-count 2 --query 'TargetGroups[0].TargetGroupArn' --output text)
# Deregistered targets leave at once, so each config-change round starts from
# the same two targets.
elb modify-target-group-attributes --target-group-arn "$TG" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=0 >/dev/null
LB=$(elb create-load-balancer --name bench --subnets subnet-1 \
  --query 'LoadBalancers[0].LoadBalancerArn' --output text)
elb create-listener --load-balancer-arn "$LB" --protocol HTTP --port "$LB_PORT" \
  --default-actions "Type=forward,TargetGroupArn=$TG" >/dev/null
CERT=$(aws --endpoint-url "$AWS_ENDPOINT_URL" acm import-certificate \
  --certificate "fileb://$TLS/cert.pem" --private-key "fileb://$TLS/key.pem" \
  --query CertificateArn --output text)
elb create-listener --load-balancer-arn "$LB" --protocol HTTPS --port "$LB_TLS_PORT" \
  --certificates "CertificateArn=$CERT" --ssl-policy ELBSecurityPolicy-TLS13-1-2-2021-06 \
  --default-actions "Type=forward,TargetGroupArn=$TG" >/dev/null
elb register-targets --target-group-arn "$TG" \
  --targets $(for ip in "${BACKENDS[@]}"; do printf 'Id=%s,Port=%s ' "$ip" "$BACKEND_PORT"; done) >/dev/null

target_states() {
  elb describe-target-health --target-group-arn "$TG" \
    --query 'TargetHealthDescriptions[].TargetHealth.State' --output text
}
# True once exactly N targets are registered and every one is healthy.
all_healthy() {
  local states
  states=$(target_states | tr '\t' '\n' | grep -v '^$') || return 1
  [ "$(grep -c . <<<"$states")" -eq "$1" ] && ! grep -qv '^healthy$' <<<"$states"
}
wait_for "Berth's targets healthy" "$CP_LOG" all_healthy "${#BACKENDS[@]}"
wait_for "Berth's listener" "$CP_LOG" curl -sf "http://127.0.0.1:$LB_PORT/index.html"
wait_for "Berth's HTTPS listener" "$CP_LOG" curl -skf "https://127.0.0.1:$LB_TLS_PORT/index.html"

# --- Load: each proxy in turn, a warm-up then the measured run.
# A wrk latency figure (e.g. 812.00us, 1.25ms, 1.02s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.2f", n }'
}
declare -A RPS P99 ERRS
bench() {
  local name=$1 port=$2 scheme=${3:-http} url out
  url="$scheme://127.0.0.1:$port/index.html"
  echo "bench-lb: $name (${WARMUP}s warm-up, ${SECS}s measured)" >&2
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
  out="$DIR/wrk-$name.txt"
  wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$url" >"$out"
  RPS[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  grep -q '^ *99% ' "$out" && [ -n "${RPS[$name]}" ] || { cat "$out" >&2; die "no figures in wrk's output for $name"; }
  P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  # Socket errors and non-2xx/3xx answers: a proxy that fails fast looks fast.
  ERRS[$name]=$(awk '/Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
                     /Non-2xx or 3xx responses:/ {n += $5}
                     END {print n + 0}' "$out")
}
bench HAProxy "$HA_PORT"
bench nginx "$NGX_PORT"
bench Berth "$LB_PORT"
bench HAProxy-TLS "$HA_TLS_PORT" https
bench nginx-TLS "$NGX_TLS_PORT" https
bench Berth-TLS "$LB_TLS_PORT" https

# --- Config change: with no load, register a fresh, serving target and time
# from register-targets returning until Berth's listener answers from it. A new
# target must pass one health check first; the checker wakes on every
# configuration change and checks a new target at once.

# True if backend IP answers one of three requests in a row through Berth: round
# robin over at most three healthy targets reaches it once it is routable.
served_by() {
  local url="http://127.0.0.1:$LB_PORT/index.html" answers
  # Not `curl | grep -q`: grep quitting early fails curl, and pipefail the pipe.
  answers=$(curl -s --max-time 1 "$url" "$url" "$url") || true
  grep -q "^backend $1 " <<<"$answers"
}
CHANGE_MS=()
for ip in "${EXTRA[@]}"; do
  elb register-targets --target-group-arn "$TG" --targets "Id=$ip,Port=$BACKEND_PORT" >/dev/null
  t0=$(date +%s%N)
  end=$(( t0 + DEADLINE_S * 1000000000 ))
  until served_by "$ip"; do
    [ "$(date +%s%N)" -lt "$end" ] || die "target $ip got no traffic within ${DEADLINE_S}s"
    sleep 0.02
  done
  CHANGE_MS+=($(( ($(date +%s%N) - t0) / 1000000 )))
  elb deregister-targets --target-group-arn "$TG" --targets "Id=$ip,Port=$BACKEND_PORT" >/dev/null
  wait_for "target $ip gone" "$CP_LOG" all_healthy "${#BACKENDS[@]}"
done

# --- Report.
echo
echo "machine:  $NPROC CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "versions: $(haproxy -v | sed -n 1p)"
echo "          $(nginx -v 2>&1)"
echo "          $("$CP_BIN" --version) ($CP_BIN)"
echo "          $(wrk -v 2>&1 | sed -n 1p)"
echo "load:     wrk -t$THREADS -c$CONNS -d${SECS}s, HTTP/1.1 keep-alive (then over TLS 1.3, ECDSA P-256), GET of a 100-byte file;"
echo "          each proxy: $NPROC threads/workers, round robin over the same 2 nginx backends"
echo
printf '%-12s %12s %10s %12s %12s %8s\n' proxy requests/s p99_ms rps_vs_HA p99_vs_HA errors
for name in HAProxy nginx Berth HAProxy-TLS nginx-TLS Berth-TLS; do
  # HTTPS rows compare with HAProxy over HTTPS.
  base=HAProxy
  [[ $name == *-TLS ]] && base=HAProxy-TLS
  awk -v n="$name" -v r="${RPS[$name]}" -v p="${P99[$name]}" -v e="${ERRS[$name]}" \
      -v hr="${RPS[$base]}" -v hp="${P99[$base]}" 'BEGIN {
    printf "%-12s %12d %10.2f %12s %12s %8d\n", n, r, p,
      (hr > 0 ? sprintf("%.2fx", r / hr) : "-"), (hp > 0 ? sprintf("%.2fx", p / hp) : "-"), e }'
done
echo
echo "config change (new target registered -> first request it serves through Berth):"
echo "  ${CHANGE_MS[*]/%/ ms}   (the checker wakes on the change and checks the new target at once)"
