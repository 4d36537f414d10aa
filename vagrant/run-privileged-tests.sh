#!/usr/bin/env bash
# Runs Berth's test suite, the privileged tests included (namespaces,
# containerd, cgroups), inside a lab VM, where cgroup v2 is real: the build
# machines are cgroup v1, so this is where the v2 path runs for real.
#
# Builds the test binaries here (the guest needs no Rust), copies them and
# the source tree to the same path in the guest, and runs each one there
# against a private containerd and registry (scripts/test-env.sh).
#
# Usage: vagrant/run-privileged-tests.sh [TEST-ARGS...]
#   TEST-ARGS go to every test binary (e.g. a name filter).
#   BERTH_LAB_VM  the VM to use (default berth-agent-1); `vagrant up` first.
#   BERTH_CARGO_LOCK  a lock file every cargo run here holds (flock), for a
#                 build machine whose cores are shared with other builds.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VM=${BERTH_LAB_VM:-berth-agent-1}
export PATH="$HOME/.cargo/bin:$PATH"
cargo() {
  if [ -n "${BERTH_CARGO_LOCK:-}" ]; then flock "$BERTH_CARGO_LOCK" cargo "$@"; else command cargo "$@"; fi
}

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
echo "==> syncing the source tree to $VM"
vagrant rsync "$VM"
# This build's test binaries and debug daemons go separately: `vagrant rsync`
# reuses the synced-folder settings of the last `vagrant up`, and
# target/debug/deps also keeps every earlier build's binaries (gigabytes,
# more than the guest's disk). The tree's sync excludes target/debug, so it
# leaves these alone.
echo "==> copying this build's test binaries and daemons to $VM"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vagrant ssh-config "$VM" >"$tmp/ssh-config"
{
  cat "$REPO/target/debug/berth-lab-tests.txt"
  echo "$REPO/target/debug/berth-lab-tests.txt"
  for b in "$REPO"/target/debug/berth*; do
    if [ -f "$b" ] && [ -x "$b" ]; then echo "$b"; fi
  done
} >"$tmp/files"
rsync -a --files-from="$tmp/files" -e "ssh -F $tmp/ssh-config" --rsync-path="sudo rsync" / "$VM:/"
args=$(printf ' %q' "$@")
vagrant ssh "$VM" -c "sudo bash $REPO/vagrant/guest-tests.sh $REPO${args}"
