#!/usr/bin/env bash
# Every lab VM: the runtime packages, then the Berth binaries built on the
# host (target/release, synced to the same path here), units and default
# settings, through scripts/install.sh as an operator would install them.
# Usage: common.sh REPO
REPO=${1:?usage: common.sh REPO}
. "$REPO/vagrant/provision/lib.sh"

# tini: the init binary of containers with initProcessEnabled.
apt_install containerd runc tini iproute2 iptables ca-certificates
for b in berth-controlplane berth-agent berth; do
  [ -x "$REPO/target/release/$b" ] || {
    echo "$REPO/target/release/$b is missing: run 'cargo build --release --bins' on the host, then 'vagrant provision'" >&2
    exit 1
  }
done
"$REPO/scripts/install.sh" --bin-dir "$REPO/target/release"
echo "cgroup filesystem: $(stat -fc %T /sys/fs/cgroup) (cgroup2fs means v2)"
