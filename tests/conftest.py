"""Fresh random inputs for every test, reproducible on demand.

Each test that asks for ``gen`` gets a torch.Generator seeded with a new random seed; the
seed is printed with any failure. Set OPTIMLAB_TEST_SEED=<n> to replay a failure.
"""

from __future__ import annotations

import os
import random

import pytest
import torch

if "PYTEST_XDIST_WORKER" in os.environ:
    # one worker per core: two intra-op threads per worker would fight over the cores and
    # make the small tensors of these tests ~10x slower
    torch.set_num_threads(1)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    value = int(os.environ.get("OPTIMLAB_TEST_SEED", random.randrange(2**31)))
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    seeds = [value for key, value in item.user_properties if key == "seed"]
    if report.failed and seeds:
        report.sections.append(("random seed", f"replay with OPTIMLAB_TEST_SEED={seeds[0]}"))
    return report
