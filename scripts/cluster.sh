#!/usr/bin/env bash
# A ddserver cluster on this machine, a network namespace per node (docs/cluster.md); needs root.
# Usage: scripts/cluster.sh up [--hosts N] | down [N] | status [N] | promote [db2] [--cluster N]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! command -v haproxy >/dev/null; then
  scripts/setup-system.sh --test
fi
exec .venv/bin/python -m tests.cluster.cluster "$@"
