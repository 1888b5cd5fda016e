"""state_dict round trips: optimlab -> optimlab, torch -> optimlab, optimlab -> torch.
Training N steps, checkpointing through torch.save, loading into a fresh optimizer and
training M more lands where uninterrupted training lands."""

from __future__ import annotations

import io

import pytest
import torch
from cases import CASES, TORCH_CASES, Case

import optimlab

SHAPES = [(3,), (4, 2), ()]


def _grads(gen, steps):
    return [[torch.randn(shape, dtype=torch.float64, generator=gen) for shape in SHAPES]
            for _ in range(steps)]


def _train(optimizer, params, grads):
    for step_grads in grads:
        for param, grad in zip(params, step_grads, strict=True):
            param.grad = grad.clone()
        optimizer.step()


def _through_disk(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _resumed(make_first, make_second, gen, before=7, after=8):
    """Params after `before` steps with one optimizer, a checkpoint, then `after` steps with
    a fresh optimizer of the second kind; and params after all steps uninterrupted."""
    grads = _grads(gen, before + after)
    start = [torch.randn(shape, dtype=torch.float64, generator=gen) for shape in SHAPES]
    straight = [p.clone().requires_grad_() for p in start]
    first_optimizer = make_first(straight)
    _train(first_optimizer, straight, grads)
    resumed = [p.clone().requires_grad_() for p in start]
    first = make_first(resumed)
    _train(first, resumed, grads[:before])
    second = make_second(resumed)
    second.load_state_dict(_through_disk(first.state_dict()))
    _train(second, resumed, grads[before:])
    return resumed, straight, first_optimizer, second


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_optimlab_to_optimlab_is_exact(case: Case, gen) -> None:
    resumed, straight, first, second = _resumed(case.build, case.build, gen)
    for p, q in zip(resumed, straight, strict=True):
        assert torch.equal(p, q)
    assert second.param_groups[0]["lr"] == first.param_groups[0]["lr"]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_torch_to_optimlab(case: Case, gen) -> None:
    def torch_optimizer(params):
        return getattr(torch.optim, case.name)(params, **case.kwargs)

    resumed, straight, _, second = _resumed(torch_optimizer, case.build, gen)
    for p, q in zip(resumed, straight, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
    assert isinstance(second, optimlab.Optimizer)


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_optimlab_to_torch(case: Case, gen) -> None:
    def torch_optimizer(params):
        return getattr(torch.optim, case.name)(params, **case.kwargs)

    resumed, straight, _, _ = _resumed(case.build, torch_optimizer, gen)
    for p, q in zip(resumed, straight, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_torch_adamw_checkpoint_keeps_our_constructor_conventions(gen) -> None:
    """A torch checkpoint has none of optimlab's options: the loading optimizer's own
    settings fill them, and torch's decoupled_weight_decay flag is honoured."""
    params = [torch.randn(3, requires_grad=True)]
    theirs = torch.optim.AdamW(params, lr=0.01)
    params[0].grad = torch.randn(3, generator=gen)
    theirs.step()
    ours = optimlab.AdamW(params, bias_correction=False, eps_root=1e-6)
    ours.load_state_dict(theirs.state_dict())
    group = ours.param_groups[0]
    assert (group["bias_correction"], group["eps_root"]) == (False, 1e-6)
    assert group["weight_decay_form"] == "decoupled" and group["lr"] == 0.01
    adam = optimlab.Adam([torch.randn(3, requires_grad=True)])
    adam.load_state_dict(torch.optim.AdamW([torch.randn(3, requires_grad=True)]).state_dict())
    assert adam.param_groups[0]["weight_decay_form"] == "decoupled"


def test_state_uses_torch_names_and_layout(gen) -> None:
    param = torch.randn(4, 3, requires_grad=True)
    expected = {
        optimlab.SGD([param], momentum=0.9): {"momentum_buffer"},
        optimlab.Adagrad([param]): {"step", "sum"},
        optimlab.RMSprop([param], momentum=0.9, centered=True):
            {"step", "square_avg", "momentum_buffer", "grad_avg"},
        optimlab.Adam([param], amsgrad=True): {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        optimlab.AdamW([param]): {"step", "exp_avg", "exp_avg_sq"},
    }
    for optimizer, keys in expected.items():
        param.grad = torch.randn(4, 3, generator=gen)
        optimizer.step()
        state = optimizer.state_dict()["state"][0]
        assert set(state) == keys
        for key in keys - {"step"}:
            assert state[key].shape == param.shape and state[key].dtype == param.dtype
        if "step" in keys:
            assert state["step"].dim() == 0 and state["step"].dtype == torch.float32
            assert float(state["step"]) == 1.0
