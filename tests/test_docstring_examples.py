"""Every ``>>>`` example in optimlab's docstrings runs as a doctest (the API reference of the
documentation site shows them).

Examples may use, without building them, the names a reader has at hand: ``torch``,
``optimlab``, a ``model`` (an ``nn.Linear(4, 2)``), an ``optimizer`` over it (AdamW) and a
``loss`` of it whose ``backward()`` fills the gradients. Each docstring gets fresh ones.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest
import torch

import optimlab

# Examples that do not run yet, with why; strict, so that a fixed one must leave the list.
KNOWN_BROKEN: dict[str, str] = {}


def module_names() -> list[str]:
    names = ["optimlab"]
    for info in pkgutil.walk_packages(optimlab.__path__, prefix="optimlab."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            names.append(info.name)
    return names


def examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in module_names():
        found += [test for test in finder.find(importlib.import_module(name)) if test.examples]
    return sorted(found, key=lambda test: test.name)


def reader_namespace() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = optimlab.AdamW(model.parameters(), lr=1e-3)
    loss = model(torch.randn(8, 4)).square().mean()
    return {"torch": torch, "optimlab": optimlab, "model": model, "optimizer": optimizer,
            "loss": loss}


EXAMPLES = examples()


def test_the_docstrings_have_examples() -> None:
    assert len(EXAMPLES) >= 5, [test.name for test in EXAMPLES]


@pytest.mark.parametrize("test", EXAMPLES, ids=lambda test: test.name)
def test_docstring_example_runs(test: doctest.DocTest, request: pytest.FixtureRequest) -> None:
    if test.name in KNOWN_BROKEN:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_BROKEN[test.name], strict=True))
    test.globs = {**test.globs, **reader_namespace()}
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=report.write)
    assert runner.failures == 0, f"{test.filename}:{test.lineno}\n{report.getvalue()}"
