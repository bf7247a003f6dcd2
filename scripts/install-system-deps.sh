#!/usr/bin/env bash
# Ensure the PostgreSQL 15 toolchain the test suite needs is installed
# (Debian 12 / bookworm): server + client, contrib, PostGIS 3, pgRouting.
#
# - Idempotent: when every package is already installed it only runs
#   dpkg-query and exits.
# - Never creates, starts or enables the Debian "15 main" cluster: the plugin
#   runs its own throwaway servers with initdb/pg_ctl.
# - Run as root (no sudo). As non-root with packages missing it prints the
#   command to run and exits 1.
set -euo pipefail

PACKAGES=(
  postgresql-15
  postgresql-client-15
  postgresql-15-postgis-3
  postgresql-15-pgrouting
)
# contrib (pg_trgm, citext, uuid-ossp, ...) ships inside postgresql-15 on bookworm.

CREATECLUSTER_CONF=/etc/postgresql-common/createcluster.conf
POLICY_RC_D=/usr/sbin/policy-rc.d

is_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-system-deps: all present (${PACKAGES[*]}); nothing to do"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-system-deps: missing ${missing[*]}; as root run:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# 1. Tell postgresql-common not to create a "main" cluster when postgresql-15
#    is configured. The file is ucf-managed; we keep our version on install.
mkdir -p "$(dirname "$CREATECLUSTER_CONF")"
if [[ -f "$CREATECLUSTER_CONF" ]]; then
  if grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=' "$CREATECLUSTER_CONF"; then
    sed -Ei 's/^[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
      "$CREATECLUSTER_CONF"
  else
    printf '\ncreate_main_cluster = false\n' >>"$CREATECLUSTER_CONF"
  fi
else
  printf '# written by scripts/install-system-deps.sh\ncreate_main_cluster = false\n' \
    >"$CREATECLUSTER_CONF"
fi

# 2. Keep invoke-rc.d from starting any service during the install (a
#    pre-existing cluster would otherwise be started by postgresql's postinst).
cleanup_policy=false
if [[ ! -e "$POLICY_RC_D" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC_D"
  chmod 755 "$POLICY_RC_D"
  cleanup_policy=true
fi
had_main=false
[[ -d /etc/postgresql/15/main ]] && had_main=true
cleanup() {
  if $cleanup_policy; then rm -f "$POLICY_RC_D"; fi
}
trap cleanup EXIT

# 3. Install.
apt-get update -qq
DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y -qq \
  --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/dev/null

# 4. Belt and braces: if a "15 main" cluster appeared anyway, remove it.
if ! $had_main && [[ -d /etc/postgresql/15/main ]] && command -v pg_dropcluster >/dev/null; then
  pg_dropcluster --stop 15 main || true
fi

echo "install-system-deps: installed ${missing[*]} (no cluster created or started)"
