#!/usr/bin/env bash
# The README's first command: set everything up on this machine and run ddserver on SQLite
# (web interface and updater, and a private PowerDNS when it is installed). Arguments go to `ddserver run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
exec .venv/bin/ddserver run "$@"
