#!/usr/bin/env bash
# Inside a lab VM, as root: runs the test binaries listed in
# target/debug/berth-lab-tests.txt (see run-privileged-tests.sh).
# Usage: guest-tests.sh REPO [TEST-ARGS...]
REPO=${1:?usage: guest-tests.sh REPO [TEST-ARGS...]}
shift
. "$REPO/vagrant/provision/lib.sh"

fs=$(stat -fc %T /sys/fs/cgroup)
[ "$fs" = cgroup2fs ] || { echo "this guest's /sys/fs/cgroup is $fs, not cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1)" >&2; exit 1; }
echo "cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# What scripts/install-deps.sh installs, less the build tools (a box from
# vagrant/build-box.sh has them all).
apt_install containerd runc tini iproute2 iptables docker-registry skopeo umoci \
  busybox-static curl jq ca-certificates systemd python3 python3-pip \
  apache2-utils ruby vagrant vagrant-libvirt
if ! python3 -c 'import boto3, awscli' >/dev/null 2>&1; then
  python3 -m pip install --break-system-packages awscli boto3
fi

ENV_DIR=/tmp/berth-lab-test-env
"$REPO/scripts/test-env.sh" start "$ENV_DIR" >/dev/null
trap '"$REPO/scripts/test-env.sh" stop "$ENV_DIR" >/dev/null' EXIT
set -a; . "$ENV_DIR/env"; set +a
cd "$REPO"

# Each binary's output is kept (LOGS) and its `test result:` line collected,
# so the summary says how many tests passed, failed and were ignored per binary.
LOGS=/tmp/berth-lab-test-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
passed=0 failed=0 failed_names=() summary=()
while read -r bin; do
  [ -x "$bin" ] || { echo "missing $bin (run vagrant/run-privileged-tests.sh from the host)" >&2; exit 1; }
  name=${bin##*/}
  echo "==> $name"
  if "$bin" --test-threads=2 "$@" 2>&1 | tee "$LOGS/$name.log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failed_names+=("$name")
  fi
  summary+=("$name: $(grep -h '^test result:' "$LOGS/$name.log" | tail -1 || echo 'no test result (crashed?)')")
done <"$REPO/target/debug/berth-lab-tests.txt"
echo "==> per test binary (logs in $LOGS)"
printf '  %s\n' "${summary[@]}"
echo "test binaries: $passed passed, $failed failed ${failed_names[*]}"
[ "$failed" = 0 ]
