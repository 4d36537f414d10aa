#!/usr/bin/env bash
# Build the Berth demo image (busybox httpd) offline and push it to a local
# registry as berth/demo:latest and berth/demo:v2.
#
# Usage: scripts/build-demo-image.sh REGISTRY      (e.g. 127.0.0.1:5000)
#        BERTH_DEMO_FORMAT=v2s2 scripts/build-demo-image.sh REGISTRY
# Default manifest format is OCI; v2s2 (Docker schema 2) exercises the other
# media types a pull client must handle.
#
# Tests must not depend on the internet, so the image is assembled from the
# host's busybox-static binary with umoci instead of being pulled.
set -euo pipefail

REGISTRY=${1:?usage: $0 REGISTRY (e.g. 127.0.0.1:5000)}
REPO="$REGISTRY/berth/demo"
BUSYBOX=${BUSYBOX:-/bin/busybox}
# A fixed timestamp keeps the layer/config bytes, hence the digest, identical
# across runs: re-running is a no-op for the registry and tests can compare digests.
EPOCH=1970-01-01T00:00:00Z
FORMAT=${BERTH_DEMO_FORMAT:-oci}

[ -x "$BUSYBOX" ] || { echo "missing $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }
# A dynamically linked busybox would need the host's libc inside the image.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "$BUSYBOX is dynamically linked; need busybox-static" >&2; exit 1
fi

case "$(uname -m)" in
  x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;;
esac

W=$(mktemp -d /tmp/berth-demo-image.XXXXXX)
trap 'rm -rf "$W"' EXIT
IMG="$W/oci:latest"

umoci init --layout "$W/oci"
umoci new --image "$IMG"
umoci unpack --image "$IMG" "$W/bundle"

R="$W/bundle/rootfs"
mkdir -p "$R"/{bin,etc,root,www,proc,sys,dev,tmp}
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
# Link every applet: tests and task definitions may use any of them
# (sed, timeout, nc, ip, ...) and the links cost nothing.
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done
# Some scripts hard-code /usr/bin/env or /usr/bin/X.
mkdir -p "$R/usr" && ln -sfn ../bin "$R/usr/bin"
chmod 1777 "$R/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$R/etc/group"
echo 'hello from berth' >"$R/www/index.html"
echo 'ok' >"$R/www/health"
find "$R" -exec touch -h -d "$EPOCH" {} +

umoci repack --image "$IMG" --history.created "$EPOCH" \
  --history.created_by "berth scripts/build-demo-image.sh" "$W/bundle"
umoci config --image "$IMG" --no-history --created "$EPOCH" \
  --os linux --architecture "$ARCH" \
  --config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --config.workingdir / \
  --config.cmd httpd --config.cmd -f --config.cmd -p --config.cmd 80 \
  --config.cmd -h --config.cmd /www

for tag in latest v2; do
  skopeo copy -q --format "$FORMAT" --dest-tls-verify=false \
    "oci:$W/oci:latest" "docker://$REPO:$tag"
done
echo "pushed $REPO:latest and $REPO:v2 ($FORMAT, linux/$ARCH)"
