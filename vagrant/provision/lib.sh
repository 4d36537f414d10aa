# Shared by the lab's provisioning scripts (sourced; runs as root in a guest).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Installs the Debian packages not installed yet; apt is left alone when the
# box already has them all (a box built with vagrant/build-box.sh does), so an
# offline lab never needs a mirror.
apt_install() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# set_env FILE KEY VALUE: sets KEY in a systemd EnvironmentFile, replacing the
# commented default install.sh put there (or an earlier value), else appending.
set_env() {
  local file=$1 key=$2 value=$3
  if grep -qE "^#?${key}=" "$file"; then
    sed -i -E "s|^#?${key}=.*|${key}=${value}|" "$file"
  else
    echo "${key}=${value}" >>"$file"
  fi
}

# wait_for SECONDS WHAT CMD...: polls CMD once a second, fails after SECONDS.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "timed out after ${secs}s waiting for $what" >&2
  return 1
}
