#!/usr/bin/env bash
# Runs Berth's test suite, the privileged tests included (namespaces,
# containerd, cgroups), inside a lab VM, where cgroup v2 is real: the build
# machines are cgroup v1, so this is where the v2 path runs for real.
#
# Builds the test binaries here (the guest needs no Rust), syncs them with
# the source tree to the same path in the guest, and runs each one there
# against a private containerd and registry (scripts/test-env.sh).
#
# Usage: vagrant/run-privileged-tests.sh [TEST-ARGS...]
#   TEST-ARGS go to every test binary (e.g. a name filter).
#   BERTH_LAB_VM  the VM to use (default berth-agent-1); `vagrant up` first.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VM=${BERTH_LAB_VM:-berth-agent-1}
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> building the daemons and the test binaries"
cargo build --workspace --bins
cargo build --release --bins   # what the lab's units run
cargo test --workspace --no-run --message-format=json 2>/dev/null \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])' >target/debug/berth-lab-tests.txt
echo "    $(wc -l <target/debug/berth-lab-tests.txt) test binaries"

cd vagrant
echo "==> syncing to $VM (target/debug executables included)"
export BERTH_LAB_SYNC_DEBUG=1
vagrant rsync "$VM"
args=$(printf ' %q' "$@")
vagrant ssh "$VM" -c "sudo bash $REPO/vagrant/guest-tests.sh $REPO${args}"
