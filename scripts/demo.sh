#!/usr/bin/env bash
# Set up .venv from scratch if needed, then run keyrot against a local IAM endpoint that the demo
# starts on 127.0.0.1 and stops afterwards. No AWS account or real credentials are used.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet '.[demo]'

.venv/bin/python scripts/demo.py
