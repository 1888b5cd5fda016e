"""preset="torch" (the default) against torch.optim itself, on the conformance problem:
fp64, 60 steps of warmup + cosine, every step within 1e-10, every torch configuration of
the registry. (test_torch_parity.py covers more shapes, groups and fp32.)"""

from __future__ import annotations

import pytest
import torch
from cases import TORCH_CASES, Case
from conformance import Problem, assert_conforms, gradients, make_problem


def run_torch(problem: Problem, case: Case) -> list[list[torch.Tensor]]:
    params = [p.clone().requires_grad_() for p in problem.start]
    optimizer = getattr(torch.optim, case.name)(params, **case.kwargs)
    trajectory = []
    for step, lr in enumerate(problem.lrs):
        optimizer.param_groups[0]["lr"] = lr
        for param, grad in zip(params, gradients(problem, step, params), strict=True):
            param.grad = grad
        optimizer.step()
        trajectory.append([p.detach().clone() for p in params])
    return trajectory


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_preset_torch_follows_torch_optim_under_a_schedule(case: Case, seed: int) -> None:
    peak = {"SGD": 0.05, "Adagrad": 0.1}.get(case.name, 0.01)
    problem = make_problem(seed, peak_lr=peak)
    theirs = run_torch(problem, case)
    assert_conforms(problem, case.name, {**case.kwargs, "preset": "torch"}, theirs,
                    torch_differs=False)
