"""The same random inputs on every run, other ones on demand, and a replay line on failure.

* ``seed``: each test's own seed, derived from its node id (tests differ from each other,
  not from run to run). ``OPTIMLAB_TEST_SEED=<n>`` gives every test the seed n (to replay
  a failure: the failure's report prints the line); ``OPTIMLAB_TEST_SEED=random`` a fresh
  random seed per test (scripts/explore.sh). torch's and Python's global generators are
  seeded from it before every test, so a test that draws from them does not depend on
  which tests ran before it on its worker.
* Hypothesis: the ``ci`` profile (derandomized: each property test draws the same examples
  on every run, no deadline, no timing health check) unless ``--hypothesis-profile``
  names another; ``explore`` draws fresh examples, ten times as many, and keeps failing
  ones in ``.hypothesis/`` to try first next time (scripts/explore.sh).
"""

from __future__ import annotations

import hashlib
import os
import random

import pytest
import torch
from hypothesis import HealthCheck, settings

if "PYTEST_XDIST_WORKER" in os.environ:
    # one worker per core: two intra-op threads per worker would fight over the cores and
    # make the small tensors of these tests ~10x slower
    torch.set_num_threads(1)

SEED_VARIABLE = "OPTIMLAB_TEST_SEED"
EXPLORE_FACTOR = 10
settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=EXPLORE_FACTOR * settings().max_examples,
                          derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
# hypothesis's plugin loads --hypothesis-profile when pytest configures, after this file
# is imported; "ci" otherwise, also where hypothesis would pick its own profile from $CI
if settings.get_current_profile_name() in ("default", "ci"):
    settings.load_profile("ci")


def _fixed_seed() -> int | None:
    """The seed OPTIMLAB_TEST_SEED asks for: n, or None (unset, empty or 'random')."""
    value = os.environ.get(SEED_VARIABLE, "")
    if value in ("", "random"):
        return None
    if value.isdigit() and int(value) < 2**63:
        return int(value)
    raise pytest.UsageError(f"{SEED_VARIABLE}={value!r} is invalid; valid: an int "
                            "0 <= n < 2**63, or 'random' (unset: a fixed seed per test)")


def pytest_configure(config: pytest.Config) -> None:
    _fixed_seed()  # refuse a bad value before any test runs


def _seed_of(nodeid: str) -> int:
    """The test's default seed: 31 bits of a hash of its node id, the same every run
    (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:4], "big") >> 1


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    fixed = _fixed_seed()
    if fixed is not None:
        value = fixed
    elif os.environ.get(SEED_VARIABLE) == "random":
        value = random.SystemRandom().randrange(2**31)
    else:
        value = _seed_of(request.node.nodeid)
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture(autouse=True)
def _seeded_global_generators(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)


@pytest.fixture
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    seeds = [value for key, value in item.user_properties if key == "seed"]
    if report.failed and seeds:
        report.sections.append(("random seed", f"seed {seeds[0]}; replay with\n"
                                f"{SEED_VARIABLE}={seeds[0]} .venv/bin/python -m pytest "
                                f"'{item.nodeid}'"))
    return report
