"""Lion against timm.optim.Lion and lion_pytorch.Lion, LAMB against timm.optim.Lamb: the
same problem, gradients and lr schedule as the other conformance tests (tests/
conformance.py), in fp64 (every step within 1e-10) and fp32, with checkpoints taken by
the peer mid-run loaded into optimlab and the other way round.

timm and lion-pytorch are optional peers (``scripts/test.sh`` installs them); without
them these tests skip, saying so.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conformance import Problem, gradients, make_problem, relative_error, timm_class

import optimlab

LION_OPTIONS = [{}, {"weight_decay": 0.1}, {"betas": (0.8, 0.95), "weight_decay": 0.3}]
LAMB_OPTIONS = [{}, {"max_grad_norm": 0.5}, {"max_grad_norm": None},
                {"weight_decay": 0.0, "always_adapt": True},
                {"trust_clip": True, "weight_decay": 0.1},
                {"grad_averaging": False, "bias_correction": False},
                {"decoupled_decay": True, "weight_decay": 0.1, "max_grad_norm": 0.5}]


def _peer(name: str) -> Any:
    if name == "lion_pytorch":
        return pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed "
                                   "(scripts/test.sh installs the conformance peers)").Lion
    return timm_class(name.lower(), name)


def _two_groups(params: list[torch.Tensor], build, **kwargs) -> torch.optim.Optimizer:
    """Weights and bias in groups of their own, the bias without decay (as recipes do): a
    global clip must read both groups' gradients."""
    return build([{"params": params[:1]}, {"params": params[1:], "weight_decay": 0.0}],
                 **kwargs)


def _run(problem: Problem, optimizer_of, dtype=torch.float64, swap_at=None,
         swap_to=None) -> list[list[torch.Tensor]]:
    """The trajectory; at step ``swap_at`` the state dict moves to ``swap_to(params)``."""
    params = [p.clone().to(dtype).requires_grad_() for p in problem.start]
    optimizer = optimizer_of(params)
    trajectory = []
    for step, lr in enumerate(problem.lrs):
        if step == swap_at:
            saved = optimizer.state_dict()
            optimizer = swap_to(params)
            optimizer.load_state_dict(saved)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for param, grad in zip(params, gradients(problem, step, params), strict=True):
            param.grad = grad.to(dtype)
        optimizer.step()
        trajectory.append([p.detach().clone().double() for p in params])
    return trajectory


@pytest.mark.parametrize("peer", ["timm", "lion_pytorch"])
@pytest.mark.parametrize("options", LION_OPTIONS, ids=str)
def test_lion_follows_its_peers(peer: str, options: dict, seed: int) -> None:
    cls = _peer("Lion" if peer == "timm" else "lion_pytorch")
    problem = make_problem(seed, 0.003)
    theirs = _run(problem, lambda params: _two_groups(params, cls, **options))
    ours = _run(problem, lambda params: _two_groups(params, optimlab.Lion, **options))
    error = relative_error(ours, theirs)
    assert error < 1e-10, f"max relative error {error:.2e}"
    assert relative_error([problem.start], [ours[-1]]) > 1e-2


@pytest.mark.parametrize("options", LAMB_OPTIONS, ids=str)
def test_lamb_follows_timm(options: dict, seed: int) -> None:
    cls = _peer("Lamb")
    problem = make_problem(seed, 0.01)
    theirs = _run(problem, lambda params: _two_groups(params, cls, **options))
    ours = _run(problem, lambda params: _two_groups(params, optimlab.Lamb, **options))
    error = relative_error(ours, theirs)
    assert error < 1e-10, f"max relative error {error:.2e}"
    assert relative_error([problem.start], [ours[-1]]) > 1e-2


@pytest.mark.parametrize("name", ["Lion", "Lamb"])
def test_fp32_and_checkpoints_both_ways(name: str, seed: int) -> None:
    """fp32 within 1e-5; timm's state dict loaded into optimlab at step 20, and optimlab's
    into timm at step 40, continue the uninterrupted trajectory."""
    theirs_cls, ours_cls = _peer(name), getattr(optimlab, name)
    options = {"weight_decay": 0.1}
    problem = make_problem(seed, 0.003 if name == "Lion" else 0.01)

    def theirs(params):
        return _two_groups(params, theirs_cls, **options)

    def ours(params):
        return _two_groups(params, ours_cls, **options)

    straight = _run(problem, theirs, torch.float32)
    assert relative_error(_run(problem, ours, torch.float32), straight) < 1e-5
    swapped = _run(problem, theirs, torch.float32, swap_at=20, swap_to=ours)
    assert relative_error(swapped, straight) < 1e-5
    back = _run(problem, ours, torch.float32, swap_at=40, swap_to=theirs)
    assert relative_error(back, straight) < 1e-5


def test_lamb_clip_reads_every_group_and_leaves_grads_alone(gen) -> None:
    """The clip divides by max(1, ‖G‖/max_grad_norm) over both groups' gradients at once
    (not per group), and p.grad is left as it was."""
    params = [torch.randn(3, 4, dtype=torch.float64, generator=gen, requires_grad=True),
              torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True)]
    grads = [torch.randn(p.shape, dtype=torch.float64, generator=gen) * 10 for p in params]
    optimizer = _two_groups(params, optimlab.Lamb, max_grad_norm=1.0, weight_decay=0.0)
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    optimizer.step()
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    for p, g in zip(params, grads, strict=True):
        assert torch.equal(p.grad, g)
        torch.testing.assert_close(optimizer.moment(p, "exp_avg"), 0.1 * g / total)
