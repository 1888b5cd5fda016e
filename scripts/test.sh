#!/usr/bin/env bash
# Set up .venv with the test extras and the conformance peers, then lint and run the
# whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh lab,test,conformance
# timm (for its RMSpropTF) without its dependencies: they include torchvision, whose wheel
# pins another torch; RMSpropTF needs only torch (tests/test_conformance_timm.py).
.venv/bin/python -m pip install --quiet --no-deps "timm>=1.0" "torch==2.13.0"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n 2 "$@"
