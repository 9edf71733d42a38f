#!/usr/bin/env bash
# Set up .venv from scratch if needed, then run lint, type checks and the whole test suite.
# Extra arguments go to pytest, for example: bash scripts/test.sh -k rotate
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check keyrot tests scripts benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
