#!/usr/bin/env bash
# Build the tests' FireLens log router image: berth-forward-receiver (a Fluentd
# forward-protocol receiver, tests/src/bin) with the shared libraries it links, on
# the demo image's busybox, pushed as berth/forward-receiver:latest.
#
# Usage: scripts/build-receiver-image.sh REGISTRY RECEIVER_BINARY
#
# No Fluent Bit image is reachable from the machines the tests run on, so the
# router the tests run is this one, assembled offline like the demo image.
set -euo pipefail

REGISTRY=${1:?usage: $0 REGISTRY RECEIVER_BINARY}
BINARY=${2:?usage: $0 REGISTRY RECEIVER_BINARY}
REPO="$REGISTRY/berth/forward-receiver"
BUSYBOX=${BUSYBOX:-/bin/busybox}
EPOCH=1970-01-01T00:00:00Z
[ -x "$BINARY" ] || { echo "missing $BINARY (cargo build --workspace --bins)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "missing $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }
case "$(uname -m)" in
  x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;;
esac

W=$(mktemp -d /tmp/berth-receiver-image.XXXXXX)
trap 'rm -rf "$W"' EXIT
IMG="$W/oci:latest"
umoci init --layout "$W/oci"
umoci new --image "$IMG"
umoci unpack --image "$IMG" "$W/bundle"
R="$W/bundle/rootfs"
mkdir -p "$R"/{bin,usr/local/bin,proc,sys,dev,tmp,var/run,fluent-bit/etc}
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
ln -sf busybox "$R/bin/sh"
install -m 0755 "$BINARY" "$R/usr/local/bin/berth-forward-receiver"
# The receiver is linked against the host's glibc: bring its libraries and loader.
for lib in $(ldd "$BINARY" | grep -o '/[^ ]*'); do
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"
done
chmod 1777 "$R/tmp"
find "$R" -exec touch -h -d "$EPOCH" {} +
umoci repack --image "$IMG" --history.created "$EPOCH" \
  --history.created_by "berth scripts/build-receiver-image.sh" "$W/bundle"
umoci config --image "$IMG" --no-history --created "$EPOCH" \
  --os linux --architecture "$ARCH" \
  --config.env 'PATH=/usr/local/bin:/bin' \
  --config.cmd /usr/local/bin/berth-forward-receiver
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:latest" "docker://$REPO:latest"
echo "pushed $REPO:latest (linux/$ARCH)"
