#!/usr/bin/env bash
# Installs ddserver for production from this checkout (docs/install.md): the system user, the folders, one
# virtual environment per component built from wheels, the systemd units, the configuration and `ddserver init`.
# Run again with a newer checkout to upgrade: the new environments go beside the old ones (docs/install.md).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/install.sh [--component NAME]... [OPTIONS]   (as root)

  --component NAME   bundle, updater, interface, recursor or rfc2136 (repeat for several; default: bundle)
  --prefix DIR       where the virtual environments go (default: /opt/ddserver)
  --user NAME        the system user (and group) the services run as (default: ddserver)
  --wheels DIR       ddserver's wheels (and, for --no-index, every dependency) instead of building them here
  --no-index         install from --wheels only, never from the package index (a machine without internet)
  --database-url URL the database a new /etc/ddserver/ddserver.conf names
                     (default: sqlite:////var/lib/ddserver/ddserver.sqlite3)
  --no-init          do not run `ddserver init` (the database is not reachable yet, say)
EOF
}

die() {
  echo "install: $*" >&2
  exit 1
}

checkout=$(cd "$(dirname "$0")/.." && pwd)
components=()
prefix=/opt/ddserver
user=ddserver
wheels=""
no_index=no
database_url="sqlite:////var/lib/ddserver/ddserver.sqlite3"
init=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --component) [ $# -ge 2 ] || die "--component needs a NAME"; components+=("$2"); shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a DIR"; prefix=${2%/}; shift 2 ;;
    --user) [ $# -ge 2 ] || die "--user needs a NAME"; user=$2; shift 2 ;;
    --wheels) [ $# -ge 2 ] || die "--wheels needs a DIR"; wheels=$(cd "$2" && pwd); shift 2 ;;
    --no-index) no_index=yes; shift ;;
    --database-url) [ $# -ge 2 ] || die "--database-url needs a URL"; database_url=$2; shift 2 ;;
    --no-init) init=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ ${#components[@]} -gt 0 ] || components=(bundle)
for component in "${components[@]}"; do
  case "$component" in
    bundle | updater | interface | recursor | rfc2136) ;;
    *) die "unknown component '$component' (bundle, updater, interface, recursor, rfc2136)" ;;
  esac
done
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path" ;; esac
[[ "$user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user '$user' is not a valid user name"
[ "$no_index" = no ] || [ -n "$wheels" ] || die "--no-index needs --wheels DIR"
[ "$(id -u)" = 0 ] || die "run as root (it creates a system user, folders in /etc, /var/lib and $prefix)"
has() {
  local wanted=$1 component
  for component in "${components[@]}"; do [ "$component" = "$wanted" ] && return 0; done
  return 1
}
if has recursor && ! getent group pdns >/dev/null; then
  die "the recursor runs beside PowerDNS: install it first (apt install pdns-server pdns-backend-remote)"
fi
python=${PYTHON:-python3}
"$python" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null ||
  die "$python is not Python 3.11+ with venv (Debian: apt install python3-venv)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Wheels of ddserver and its component packages.
if [ -z "$wheels" ]; then
  wheels=$work/wheels
  echo "install: building wheels from $checkout"
  # From a copy: setuptools writes into the tree it builds, and the checkout may be read-only.
  mkdir "$work/src"
  tar -C "$checkout" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build --exclude='*.egg-info' \
    -cf - . | tar -C "$work/src" -xf -
  "$python" -m venv "$work/build"
  "$work/build/bin/python" -m pip wheel -q --no-deps -w "$wheels" "$work/src" "$work/src"/packages/ddserver-* \
    >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; die "building the wheels failed"; }
fi
core_wheel=$(ls "$wheels"/ddserver-[0-9]*.whl 2>/dev/null | sort -V | tail -n 1)
[ -n "$core_wheel" ] || die "no ddserver wheel in $wheels"
version=$(basename "$core_wheel" | cut -d- -f2)

# 2. The system user, with a group of its own and no login.
group=$user
if ! getent passwd "$user" >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/ddserver --no-create-home --shell /usr/sbin/nologin \
    --comment "ddserver dynamic DNS" "$user"
  echo "install: created the system user $user"
fi

# 3. Folders: the configuration is the service's to read and root's to write; the data is the service's.
install -d -m 0750 -o root -g "$group" /etc/ddserver
install -d -m 0750 -o "$user" -g "$group" /var/lib/ddserver
if has recursor; then
  # The index snapshot ([recursor] snapshot_dir), private to the service.
  install -d -m 0750 -o "$user" -g "$group" /var/lib/ddserver/recursor
  # The recursor's socket folder, created at every boot: its group is PowerDNS's (the set-group-ID bit gives
  # the socket that group too), so PowerDNS, and nobody else, reaches the socket ([recursor] socket_mode 0660).
  install -d -m 0755 /etc/tmpfiles.d
  echo "d /run/ddserver-recursor 2750 $user pdns -" >/etc/tmpfiles.d/ddserver-recursor.conf
  if command -v systemd-tmpfiles >/dev/null; then
    systemd-tmpfiles --create /etc/tmpfiles.d/ddserver-recursor.conf
  else
    install -d -m 2750 -o "$user" -g pdns /run/ddserver-recursor
  fi
fi

# 4. One virtual environment per component, in a release folder of its own: services still running keep the
# code they started with until they are restarted; $prefix/COMPONENT points at the newest.
release=$(date -u +%Y%m%dT%H%M%SZ)-$version
install -d -m 0755 "$prefix" "$prefix/releases"
pip_source=(--find-links "$wheels")
[ "$no_index" = yes ] && pip_source+=(--no-index)
for component in "${components[@]}"; do
  case "$component" in
    rfc2136) spec="ddserver[rfc2136]"; own="" ;;
    *) spec="ddserver-$component"; own="ddserver_$component" ;;
  esac
  venv=$prefix/releases/$release/$component
  echo "install: $spec $version into $venv"
  "$python" -m venv "$venv"
  {
    "$venv/bin/python" -m pip install -q "${pip_source[@]}" "$spec" &&
      # The wheels given, even when the version number did not change since the last install.
      "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$core_wheel" \
        ${own:+$(ls "$wheels/$own"-"$version"-*.whl)}
  } >"$work/pip.log" 2>&1 || { tail -n 40 "$work/pip.log" >&2; die "installing $spec failed"; }
  ln -sfn "releases/$release/$component" "$prefix/$component.new"
  mv -T "$prefix/$component.new" "$prefix/$component"
done
# The admin command (ddserver) and the daily prune come from one of them; web ones have passlib for `user add`.
for admin in bundle interface updater rfc2136 recursor; do
  [ -d "$prefix/$admin" ] && break
done
ln -sfn "$admin" "$prefix/admin.new" && mv -T "$prefix/admin.new" "$prefix/admin"
# Releases other than the two newest go, unless a component of this machine still runs from one.
in_use=$(for link in "$prefix"/*; do if [ -L "$link" ]; then readlink "$link"; fi; done | cut -d/ -f2 | sort -u)
ls -1 "$prefix/releases" | sort | head -n -2 | while read -r old; do
  grep -qxF -- "$old" <<<"$in_use" || rm -rf "${prefix:?}/releases/$old"
done
install -d -m 0755 "$prefix/doc"
install -m 0644 "$checkout"/docs/*.md "$prefix/doc/"
install -m 0644 "$checkout/etc/ddserver/ddserver.conf" "$prefix/doc/ddserver.conf.example"

# 5. `ddserver` for admins: as root it runs as the service user, so files it makes (SQLite's) stay the service's.
cat >/usr/local/bin/ddserver <<EOF
#!/bin/sh
# ddserver's admin command, installed by scripts/install.sh. As root it runs as $user.
if [ "\$(id -u)" = 0 ]; then
  exec runuser -u $user -- $prefix/admin/bin/ddserver "\$@"
fi
exec $prefix/admin/bin/ddserver "\$@"
EOF
chmod 0755 /usr/local/bin/ddserver

# 6. The configuration, once (an upgrade keeps it), the secret key and the data key.
conf=/etc/ddserver/ddserver.conf
if [ ! -e "$conf" ]; then
  (
    umask 027
    cat >"$conf" <<EOF
# Written by scripts/install.sh. Every key, with its default and meaning: $prefix/doc/configuration.md
# (commented example: $prefix/doc/ddserver.conf.example). Environment variables DDSERVER_SECTION_KEY override.
[database]
url = $database_url

[auth]
secret_key_file = /etc/ddserver/secret.key
# Encrypts the secrets kept in the database (DNSSEC keys, transfer keys, relay passwords): every node
# needs the same file.
data_key_file = /etc/ddserver/data.key

[http]
# The public address of the web interface, for links in mail and the update URL shown to users.
base_url = http://localhost:8080

[recursor]
# PowerDNS reaches the socket through its group (/run/ddserver-recursor belongs to group pdns).
socket_mode = 0660
# The index snapshot, kept across restarts.
snapshot_dir = /var/lib/ddserver/recursor
EOF
  )
  chown root:"$group" "$conf"
  echo "install: wrote $conf"
fi
if [ ! -e /etc/ddserver/secret.key ]; then
  (
    umask 027
    "$prefix/admin/bin/python" -c 'from ddserver import secrets; print(secrets.new_token()[0])' >/etc/ddserver/secret.key
  )
  chown root:"$group" /etc/ddserver/secret.key
  echo "install: wrote /etc/ddserver/secret.key"
fi
if [ ! -e /etc/ddserver/data.key ]; then
  (
    umask 027
    "$prefix/admin/bin/python" -c 'from ddserver import sealing; print(sealing.new_key())' >/etc/ddserver/data.key
  )
  chown root:"$group" /etc/ddserver/data.key
  echo "install: wrote /etc/ddserver/data.key (copy it to every node: docs/install.md)"
fi
if ! grep -q '^[[:space:]]*data_key' "$conf"; then
  # A configuration from before the data key: point it at the file (the rest stays as the admin left it).
  sed -i 's|^\[auth\][[:space:]]*$|[auth]\ndata_key_file = /etc/ddserver/data.key|' "$conf"
  grep -q '^data_key_file' "$conf" || printf '\n[auth]\ndata_key_file = /etc/ddserver/data.key\n' >>"$conf"
  echo "install: added data_key_file = /etc/ddserver/data.key to $conf"
fi

# 7. The systemd units of the components, pointing at $prefix, running as $user.
units=(ddserver-prune.service ddserver-prune.timer ddserver-notify.service ddserver-notify.timer
       ddserver-delegations.service ddserver-delegations.timer)
for component in "${components[@]}"; do units+=("ddserver-$component.service"); done
for unit in "${units[@]}"; do
  sed -e "s|/opt/ddserver/|$prefix/|g" -e "s|^User=ddserver\$|User=$user|" -e "s|^Group=ddserver\$|Group=$group|" \
    "$checkout/etc/systemd/$unit" >"/etc/systemd/system/$unit.new"
  chmod 0644 "/etc/systemd/system/$unit.new"
  mv "/etc/systemd/system/$unit.new" "/etc/systemd/system/$unit"
done
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi

# 8. The database: created, or brought to this version's schema (old services keep running: docs/install.md).
if [ "$init" = yes ]; then
  runuser -u "$user" -- "$prefix/admin/bin/ddserver" --config "$conf" init
fi

services=()
for component in "${components[@]}"; do services+=("ddserver-$component.service"); done
echo "install: installed ${components[*]} ($version) in $prefix/releases/$release"
echo "install: next: check $conf, then: systemctl enable --now ${services[*]} (and on one machine: ddserver-prune.timer, ddserver-notify.timer where the interface or bundle is, and ddserver-delegations.timer if users may bring zones)"
