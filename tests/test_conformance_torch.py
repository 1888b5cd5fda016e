"""preset="torch" (the default) against torch.optim itself, on the conformance problem:
fp64, 60 steps of warmup + cosine, every step within 1e-10, every torch configuration of
the registry. (test_torch_parity.py covers more shapes, groups and fp32.)"""

from __future__ import annotations

import pytest
from cases import TORCH_CASES, Case, torch_class
from conformance import assert_conforms, make_problem, run_torch_style

from optimlab.rules import MATRIX


# the problem trains a bias beside its matrix, which a matrix rule (Muon) does not take:
# Muon under a schedule is in tests/test_factored.py
@pytest.mark.parametrize("case", [c for c in TORCH_CASES if c.cls.rule.structure != MATRIX],
                         ids=lambda c: c.id)
def test_preset_torch_follows_torch_optim_under_a_schedule(case: Case, seed: int) -> None:
    peak = {"SGD": 0.05, "Adagrad": 0.1, "Adadelta": 1.0}.get(case.name, 0.01)
    problem = make_problem(seed, peak_lr=peak)
    theirs = run_torch_style(problem,
                             lambda params: torch_class(case.name)(params, **case.kwargs))
    assert_conforms(problem, case.name, {**case.kwargs, "preset": "torch"}, theirs,
                    torch_differs=False)
