"""Every algorithm and convention option against an fp64 reference written from the
equation (tests/references.py), over 20 steps, on random shapes including a scalar and
a 0-element tensor."""

from __future__ import annotations

import pytest
import torch
from cases import CASES, SHAPES, Case, reference_kwargs
from references import REFERENCES

STEPS = 20


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_fp64_reference(case: Case, gen: torch.Generator) -> None:
    shapes = [case.shape(shape) for shape in SHAPES]
    initial = [torch.randn(shape, dtype=torch.float64, generator=gen) for shape in shapes]
    grads = [[torch.randn(shape, dtype=torch.float64, generator=gen) * 3 for _ in range(STEPS)]
             for shape in shapes]
    params = [p.clone().requires_grad_() for p in initial]
    optimizer = case.build(params, **case.exact)
    for step in range(STEPS):
        for param, history in zip(params, grads, strict=True):
            param.grad = history[step].clone()
        optimizer.step()
    reference = REFERENCES[case.name]
    for param, start, history in zip(params, initial, grads, strict=True):
        expected = reference(start, history, **reference_kwargs(case))
        torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=1e-12)
        assert not torch.equal(param.detach(), start) or start.numel() == 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_fp64_reference_under_an_lr_schedule(case: Case, gen: torch.Generator) -> None:
    """The lr changes every step (warmup, then decay), as it does in training: where the lr
    meets the momentum buffer and the weight decay then matters (lr_in_momentum)."""
    peak = case.kwargs["lr"]
    lrs = [peak * min(1.0, (t + 1) / 5) * (1 - t / (2 * STEPS)) for t in range(STEPS)]
    start = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    grads = [torch.randn(3, 4, dtype=torch.float64, generator=gen) for _ in range(STEPS)]
    param = start.clone().requires_grad_()
    optimizer = case.build([param], **case.exact)
    for lr, grad in zip(lrs, grads, strict=True):
        optimizer.param_groups[0]["lr"] = lr
        param.grad = grad.clone()
        optimizer.step()
    kwargs = {**reference_kwargs(case), "lr": lrs}
    expected = REFERENCES[case.name](start, grads, **kwargs)
    torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=1e-12)
