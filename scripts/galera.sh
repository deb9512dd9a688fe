#!/usr/bin/env bash
# A three-node Galera cluster of private mariadbd on 127.0.0.1, for trying ddserver on Galera by hand (the
# tests in tests/cluster/ start their own). Needs galera-4, rsync and mariadb-server (scripts/setup-system.sh
# --test). Usage: scripts/galera.sh up|down|status [FOLDER]   (FOLDER: /tmp/ddserver-galera by default;
# `up` prints each node's URL, e.g. mysql://root@127.0.0.1:PORT/ for [database] url).
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:-}
folder=${2:-/tmp/ddserver-galera}
case "$command" in
  up | down | status) ;;
  *)
    echo "usage: $0 up|down|status [FOLDER]" >&2
    exit 2
    ;;
esac
exec .venv/bin/python -m tests.cluster.galera "$command" "$folder"
