#!/usr/bin/env bash
# Install what Berth's build and tests need on a Debian 12 host (run as root).
# Safe to re-run: it only touches apt/pip when something is missing.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "install-deps: run as root" >&2; exit 1; }

# Fail before spending minutes on apt: Rust comes from rustup, not apt
# (Debian's cargo is too old for the workspace).
if ! command -v cargo >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
  echo "install-deps: cargo not found; install Rust first: https://rustup.rs" >&2
  exit 1
fi

pkgs=(containerd runc protobuf-compiler iproute2 iptables docker-registry skopeo
      umoci busybox-static curl jq ca-certificates
      # systemd-analyze: tests/tests/ops.rs verifies the units with it.
      systemd
      # tini-static: the init process of containers with initProcessEnabled.
      tini
      # vagrant, vagrant-libvirt: tests/tests/vagrant_lab.rs runs `vagrant
      # validate` on the lab against the real providers, and ruby runs
      # vagrant/check-vagrantfile.rb. Without recommends (no libvirtd, no
      # qemu: validate needs neither) 59 packages, about 20 s.
      ruby vagrant vagrant-libvirt
      # htpasswd: agent/tests/images.rs runs a registry with basic auth.
      apache2-utils
      # openssl: a throwaway CA for the HTTPS registry tests.
      openssl
      # awscli: Debian's is the AWS CLI v2 (/usr/bin/aws), which has `aws logs
      # tail` (the pip v1 below lacks it); tests/tests/logs.rs calls it by path.
      awscli)
command -v python3 >/dev/null || pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || pkgs+=(python3-pip)

missing=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # Only refresh the index when needed: keeps re-runs offline and fast.
  apt-get update
  # No recommends: python3-pip would otherwise drag in a full C toolchain.
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# AWS CLI v1 + boto3 from PyPI: the integration tests drive Berth with them.
if ! python3 -c 'import boto3, awscli' >/dev/null 2>&1; then
  # Debian's python3 is "externally managed" (PEP 668); as a dedicated test
  # host we accept installing into it rather than managing a venv.
  if ! out=$(python3 -m pip install awscli boto3 2>&1); then
    if grep -q externally-managed-environment <<<"$out"; then
      python3 -m pip install --break-system-packages awscli boto3
    else
      echo "$out" >&2; exit 1
    fi
  fi
fi

echo "install-deps: ok ($(containerd --version | awk '{print $3}'), $(python3 -m awscli --version 2>&1 | cut -d' ' -f1))"
