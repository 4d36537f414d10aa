#!/usr/bin/env bash
# Pull + unpack of a ~50 MB image from the loopback registry: Berth's
# Containerd::pull_image beside `ctr images pull --plain-http`, each into a
# fresh containerd namespace, median of 5 each (BERTH_BENCH_RUNS to change).
#
# Usage: scripts/bench-pull.sh [DIR]   (DIR: a test environment; default
#        /tmp/berth-bench-env, started and stopped here unless DIR/env exists)
#        BERTH_BENCH_PROFILE=dev builds the test without optimisation
#        (default: release, as the agent ships).
# Output: the two medians and every run, in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
DIR=${1:-/tmp/berth-bench-env}
MB=${BERTH_BENCH_MB:-50}

W=$(mktemp -d /tmp/berth-bench-image.XXXXXX)
STARTED=
cleanup() {
  rm -rf "$W"
  [ -z "$STARTED" ] || scripts/test-env.sh stop "$DIR"
}
trap cleanup EXIT
if [ ! -f "$DIR/env" ]; then
  STARTED=1
  scripts/test-env.sh start "$DIR" >/dev/null
fi
set -a; . "$DIR/env"; set +a

# Demo rootfs plus MB of random bytes (incompressible, so the gzip layer is
# ~MB too), as a second layer. Random content also means no earlier run's
# blob can be in containerd's store.
skopeo copy -q --src-tls-verify=false "docker://$BERTH_DEMO_IMAGE" "oci:$W/oci:latest"
umoci unpack --image "$W/oci:latest" "$W/bundle" >/dev/null
mkdir -p "$W/bundle/rootfs/data"
head -c "${MB}M" /dev/urandom >"$W/bundle/rootfs/data/random.bin"
umoci repack --image "$W/oci:latest" "$W/bundle"
IMAGE="$BERTH_REGISTRY/berth/bench${MB}:$(date +%s)"
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:latest" "docker://$IMAGE"
echo "bench-pull: $IMAGE ($(du -sh "$W/oci/blobs" | cut -f1) of blobs)"

PROFILE=${BERTH_BENCH_PROFILE:-release}
BERTH_BENCH_IMAGE=$IMAGE cargo test -q --profile "$PROFILE" -p berth-agent --test images bench_pull \
  -- --ignored --nocapture 2>&1 | grep -E '^(berth|ctr) |panicked|FAILED'
