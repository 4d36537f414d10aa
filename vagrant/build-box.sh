#!/usr/bin/env bash
# Builds a vagrant-libvirt box of Debian 12 with debootstrap, for labs with no
# access to Vagrant Cloud. The kernel and initrd are booted directly by
# libvirt (no bootloader; root=/dev/vda, cgroup v2), and everything the lab
# and the privileged tests install is already in the image, so provisioning
# needs no mirror.
#
# Usage (root, on the libvirt host): vagrant/build-box.sh [OUT_DIR]
#   then: vagrant box add --name berth/bookworm-local OUT_DIR/berth-bookworm.box
#         BERTH_BOX=berth/bookworm-local BERTH_LIBVIRT_DRIVER=qemu vagrant up
# Needs: debootstrap qemu-utils e2fsprogs (and vagrant, for its public key).
#   BERTH_DEBIAN_MIRROR  the Debian mirror (default: the first one in this
#                        host's apt sources)
#   BERTH_BOX_SIZE       root filesystem size (default 8G)
#   BERTH_BOOT_DIR       where the kernel and initrd go, readable by qemu
#                        (default /var/lib/libvirt/boot/berth-bookworm)
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")/box}")
SIZE=${BERTH_BOX_SIZE:-8G}
BOOT_DIR=${BERTH_BOOT_DIR:-/var/lib/libvirt/boot/berth-bookworm}
[ "$(id -u)" = 0 ] || { echo "build-box.sh: run as root (debootstrap)" >&2; exit 1; }
for t in debootstrap qemu-img mkfs.ext4; do
  command -v "$t" >/dev/null || { echo "build-box.sh: missing $t (apt-get install debootstrap qemu-utils e2fsprogs)" >&2; exit 1; }
done

MIRROR=${BERTH_DEBIAN_MIRROR:-}
if [ -z "$MIRROR" ]; then
  MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
[ -n "$MIRROR" ] || { echo "build-box.sh: set BERTH_DEBIAN_MIRROR" >&2; exit 1; }

# Vagrant logs in with its well-known insecure key the first time (and then
# replaces it with a machine-specific one). Not every one of these places
# exists, and find then fails: with pipefail that would end the script here.
VAGRANT_PUB=${VAGRANT_PUB:-$(find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant /usr/share/vagrant \
  -path '*keys/vagrant.pub' 2>/dev/null | head -1 || true)}
[ -f "$VAGRANT_PUB" ] || { echo "build-box.sh: cannot find Vagrant's keys/vagrant.pub; set VAGRANT_PUB" >&2; exit 1; }

W=$(mktemp -d /var/tmp/berth-box.XXXXXX)
R="$W/rootfs"
# --one-file-system: should the unmount fail, rm must not reach into /proc.
trap 'umount "$R/proc" 2>/dev/null || true; rm -rf --one-file-system "$W"' EXIT
echo "==> debootstrap bookworm from $MIRROR"
# A minimal base, then apt: debootstrap resolves --include without virtual
# packages and alternatives, and configuring the whole list at once failed
# (python3-cryptography's dependencies).
debootstrap --variant=minbase bookworm "$R" "$MIRROR"
mount -t proc proc "$R/proc"
# Packages start their services on install; none may run in the chroot (on
# this host).
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
# Boot and login; the lab's runtime; what the privileged tests use (the
# same as scripts/install-deps.sh, less the build tools).
PKGS=(systemd-sysv udev dbus openssh-server sudo ifupdown isc-dhcp-client
      linux-image-amd64 initramfs-tools hostname rsync ca-certificates iproute2
      iptables kmod procps curl wget
      containerd runc tini docker-registry skopeo umoci busybox-static awscli jq
      python3 python3-pip apache2-utils ruby vagrant vagrant-libvirt)
echo "==> ${#PKGS[@]} packages and their dependencies"
chroot "$R" apt-get update -q
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get install -y -q --no-install-recommends "${PKGS[@]}"

echo "==> configuring the guest"
echo berth-box >"$R/etc/hostname"
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$R/etc/fstab"
# net.ifnames=0 on the command line makes the first NIC eth0 (Vagrant's
# management network, DHCP); Vagrant writes the private network's stanza.
printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' >"$R/etc/network/interfaces"
chroot "$R" useradd -m -s /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$R/etc/sudoers.d/vagrant"
chmod 0440 "$R/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$R/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$VAGRANT_PUB" "$R/home/vagrant/.ssh/authorized_keys"
echo 'UseDNS no' >"$R/etc/ssh/sshd_config.d/vagrant.conf"
chroot "$R" systemctl enable ssh serial-getty@ttyS0.service
# awscli v1 and boto3 for the tests (Debian's predate AWS_ENDPOINT_URL):
# the host's own copies when it has them for the guest's Python version
# (scripts/install-deps.sh put them there), so building the box talks to the
# Debian mirror only; otherwise from PyPI.
if [ "$(python3 -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" = \
     "$(chroot "$R" python3 -c 'import sys; print(sys.version_info[:2])')" ] &&
   python3 -c 'import awscli, boto3' 2>/dev/null; then
  echo "==> awscli and boto3 from this host's Python"
  python3 "$(dirname "$0")/copy-python-dists.py" "$R" awscli boto3
else
  chroot "$R" python3 -m pip install --break-system-packages awscli boto3
fi
# The lab enables these itself; in the box they stay off.
chroot "$R" systemctl disable containerd docker-registry 2>/dev/null || true
# Each VM gets its own host keys on first boot.
rm -f "$R"/etc/ssh/ssh_host_*
mkdir -p "$R/etc/systemd/system/ssh.service.d"
# Debian's unit starts with `sshd -t`, which fails with no host keys: make
# the keys first.
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$R/etc/systemd/system/ssh.service.d/hostkeys.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
rm -f "$R/usr/sbin/policy-rc.d"
chroot "$R" apt-get clean
umount "$R/proc"

echo "==> kernel and initrd to $BOOT_DIR"
install -d -m 0755 "$BOOT_DIR"
install -m 0644 "$R"/boot/vmlinuz-* "$BOOT_DIR/vmlinuz"
install -m 0644 "$R"/boot/initrd.img-* "$BOOT_DIR/initrd.img"

echo "==> root filesystem image ($SIZE)"
mkdir -p "$OUT"
truncate -s "$SIZE" "$W/root.raw"
# -d fills the filesystem from the directory: no loop mount needed.
mkfs.ext4 -q -L berth-root -d "$R" "$W/root.raw"
qemu-img convert -O qcow2 "$W/root.raw" "$W/box.img"
GB=$(( ($(stat -c %s "$W/root.raw") + (1 << 30) - 1) >> 30 ))
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$GB" >"$W/metadata.json"
cat >"$W/Vagrantfile" <<VF
# Boots the kernel and initrd that build-box.sh put in $BOOT_DIR.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = "$BOOT_DIR/vmlinuz"
    lv.initrd = "$BOOT_DIR/initrd.img"
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.unified_cgroup_hierarchy=1"
    lv.disk_bus = "virtio"
  end
end
VF
tar -C "$W" -czf "$OUT/berth-bookworm.box" metadata.json Vagrantfile box.img
echo "box: $OUT/berth-bookworm.box"
echo "add it: vagrant box add --name berth/bookworm-local $OUT/berth-bookworm.box"
