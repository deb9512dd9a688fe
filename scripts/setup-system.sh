#!/usr/bin/env bash
# Installs what ddserver needs from Debian's packages (only what is missing) and makes the virtual
# environment .venv with ddserver, its components and (with --test) the test tools.
# Usage: scripts/setup-system.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=no
[ "${1:-}" = "--test" ] && want_test=yes

# pdns-server & co. for the private PowerDNS; the rest only for the test suite.
packages=(python3-venv pdns-server pdns-backend-pipe pdns-backend-remote)
if [ "$want_test" = yes ]; then
  packages+=(pdns-backend-mysql bind9 bind9-dnsutils knot systemd ddclient inadyn chromium dnsperf wrk curl wget mariadb-client mariadb-server galera-4 rsync haproxy prometheus-node-exporter)
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts its own pdns, named, knot, haproxy and node-exporter when they install; ddserver's tests run their own
  # instances (the tests use Debian's MariaDB as their shared database; the cluster runs private ones).
  for service in pdns named bind9 knot haproxy prometheus-node-exporter; do
    if command -v invoke-rc.d >/dev/null && [ -e "/etc/init.d/$service" ]; then
      invoke-rc.d "$service" stop >/dev/null 2>&1 || true
    fi
  done
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras="all"
[ "$want_test" = yes ] && extras="all,test"

# The installs are editable, so code changes need none: install again only when what decides the installation
# (the packaging files, the extras) changed since the last time, which the stamp records.
stamp=.venv/.ddserver-setup-stamp
digest=$(cat setup.py pyproject.toml packages/*/setup.py packages/*/pyproject.toml | sha256sum | cut -d' ' -f1)
done_before=$(cat "$stamp" 2>/dev/null || true)
if [ "$done_before" = "$digest $extras" ] || { [ "$want_test" = no ] && [ "$done_before" = "$digest all,test" ]; }; then
  exit 0
fi
# pip and setuptools talk a lot (deprecation warnings of the build backend): into a log, shown when pip fails.
log=.venv/setup.log
echo "setup: installing ddserver and its components into .venv (log: $log)"
if ! {
  .venv/bin/python -m pip install -q --upgrade pip &&
    .venv/bin/python -m pip install -q -e ".[$extras]" \
      -e packages/ddserver-recursor -e packages/ddserver-updater \
      -e packages/ddserver-interface -e packages/ddserver-bundle
} >"$log" 2>&1; then
  echo "setup: pip failed; the end of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "$digest $extras" >"$stamp"
