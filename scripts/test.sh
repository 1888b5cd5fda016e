#!/usr/bin/env bash
# Set up .venv with the test extras, then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh lab,test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n 2 "$@"
