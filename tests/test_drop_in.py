"""Replacing torch.optim.X by optimlab.X changes nothing else in a training script."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from cases import (
    CASES,
    TWINNED_NAMES,
    Case,
    groups_for,
    optimizer_class,
    reference_kwargs,
    taken_shape,
)
from cases import NAMES as CLASS_NAMES
from references import REFERENCES

import optimlab


@pytest.mark.parametrize("name", TWINNED_NAMES)
def test_every_torch_keyword_in_the_same_position_with_the_same_default(name) -> None:
    twin = optimlab.registry.torch_twin(getattr(optimlab, name))
    theirs = inspect.signature(twin.__init__).parameters
    ours = inspect.signature(getattr(optimlab, name).__init__).parameters
    positional = [p for p, v in theirs.items() if v.kind == v.POSITIONAL_OR_KEYWORD]
    assert list(ours)[: len(positional)] == positional
    assert set(theirs) <= set(ours)
    param = torch.randn(taken_shape(getattr(optimlab, name), (2,)), requires_grad=True)
    mine, other = getattr(optimlab, name)([param]), twin([param])
    for key, value in other.defaults.items():
        assert mine.defaults[key] == value, key
    assert issubclass(optimizer_class(name), torch.optim.Optimizer)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_a_torch_training_loop_runs_unchanged(name, gen) -> None:
    model = _model()
    cls = getattr(optimlab, name)
    optimizer = cls(groups_for(cls, list(model.parameters())), lr=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=30)
    calls = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    x = torch.randn(64, 5, generator=gen)
    y = x.sum(dim=1, keepdim=True).sin()
    losses = []
    for _ in range(30):
        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss
        losses.append(optimizer.step(closure).item())
        scheduler.step()
    assert losses[-1] < losses[0] and len(calls) == 30
    assert all(p.grad is not None for p in model.parameters())
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    clone = copy.deepcopy(optimizer)
    assert clone.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_params_without_grad_are_skipped(name, gen) -> None:
    shape = taken_shape(getattr(optimlab, name), (3,))
    used, unused = torch.randn(shape, requires_grad=True), torch.randn(shape, requires_grad=True)
    before = unused.detach().clone()
    optimizer = getattr(optimlab, name)([used, unused], lr=0.1, weight_decay=0.1)
    used.grad = torch.randn(shape, generator=gen)
    optimizer.step()
    assert torch.equal(unused, before)
    assert unused not in optimizer.state or name == "Adagrad"  # torch's Adagrad: eager state


def test_named_parameters_are_accepted_as_torch_does() -> None:
    model = _model()
    optimizer = optimlab.AdamW(model.named_parameters())
    assert optimizer.param_groups[0]["param_names"] == [n for n, _ in model.named_parameters()]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("Adam", "AdamW", "RMSprop")
                                  or "momentum" in c.kwargs][::3], ids=lambda c: c.id)
def test_low_precision_params(case: Case, dtype, gen) -> None:
    """Moments live in the param's dtype as torch keeps them, or in fp32 when asked; the
    trajectory follows the fp64 reference within the precision of the dtype."""
    start = torch.randn(64, dtype=torch.float64, generator=gen)
    # |g| in [0.5, 2]: g² must not underflow fp16 (as with torch.optim, fp16 moments need
    # gradients well above 2**-12, or state_dtype=torch.float32)
    grads = [(torch.rand(64, dtype=torch.float64, generator=gen) * 1.5 + 0.5)
             * torch.randn(64, dtype=torch.float64, generator=gen).sign() for _ in range(10)]
    expected = REFERENCES[case.name](start.to(dtype).double(), grads, **reference_kwargs(case))
    errors = {}
    for state_dtype in (None, torch.float32):
        param = start.to(dtype).requires_grad_()
        optimizer = case.build([param], state_dtype=state_dtype)
        for grad in grads:
            param.grad = grad.to(dtype)
            optimizer.step()
        assert param.dtype == dtype and torch.isfinite(param).all()
        for key, value in optimizer.state[param].items():
            if key != "step":
                assert value.dtype == (state_dtype or dtype)
        errors[state_dtype] = (param.double() - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert max(errors.values()) < 0.05 * scale, errors
