#!/usr/bin/env bash
# Set up .venv, then run the main job: `optimlab compare` (its defaults, or your arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh lab
exec .venv/bin/optimlab compare "$@"
