#!/usr/bin/env bash
# The README's second command: set up everything the tests need, then lint and run the whole suite.
# Arguments go to pytest (for example: scripts/test.sh tests/unit -k store).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh --test
.venv/bin/ruff check ddserver tests
.venv/bin/ruff format --check -q ddserver tests
.venv/bin/mypy
workers=${DDSERVER_TEST_WORKERS:-2}
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
