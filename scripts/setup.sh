#!/usr/bin/env bash
# Create .venv (if missing) and install torch's pinned CPU build first, then optimlab.
# Usage: scripts/setup.sh [extras]     e.g. scripts/setup.sh lab,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-lab}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The pin comes before the project so that pip never pulls a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# Naming the pin again makes pip refuse, rather than replace torch, should an extra ask.
.venv/bin/python -m pip install --quiet -e ".[${extras}]" "torch==2.13.0"
