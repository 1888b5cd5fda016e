#!/usr/bin/env bash
# Hunt for failures the fixed CI run cannot find: hypothesis's "explore" profile (fresh
# examples, 10x as many, failures kept in .hypothesis/ and tried first next time), a
# fresh random seed for every test (OPTIMLAB_TEST_SEED=random) and the registry's full
# matrix (OPTIMLAB_TEST_MATRIX=full: every case on every engine with bf16 and 8-bit
# moments, tests/cases.py). A failure prints the command that replays it. Arguments go
# to pytest:
#   scripts/explore.sh                              the whole suite (about an hour on 2 cores)
#   scripts/explore.sh tests/test_fuzz.py -n 1      the fuzz tests, on one core
# Turn what it finds into an @example (tests/test_fuzz.py) or a case (tests/cases.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/pytest ]; then  # the set-up of scripts/test.sh
    scripts/setup.sh lab,test,conformance
    .venv/bin/python -m pip install --quiet --no-deps "timm>=1.0" "torch==2.13.0"
fi
export OPTIMLAB_TEST_SEED="${OPTIMLAB_TEST_SEED:-random}"
export OPTIMLAB_TEST_MATRIX="${OPTIMLAB_TEST_MATRIX-full}"  # OPTIMLAB_TEST_MATRIX= for the CI matrix
exec .venv/bin/python -m pytest -n 2 --hypothesis-profile=explore "$@"
