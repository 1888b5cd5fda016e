"""The problem the conformance tests share (test_conformance_*.py): optimlab and a peer
framework (Keras 3, optax, timm) train the same model on the same data under the same
lr schedule, and their parameters are compared after every step.

The problem is least squares on a fresh random minibatch each step,
loss_t(W, b) = ½·mean over the batch of ‖X_t W + b − Y_t‖², so each side's gradient is
computed from its own parameters (by one function, in fp64): the trajectories must agree
through the feedback of training, not only on a fixed gradient list. The lr warms up for
10 steps, then follows a cosine down to a tenth of its peak: where the lr meets the
momentum buffer and the weight decay matters.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from cases import optimizer_class
from torch import Tensor

STEPS = 60
FP64_TOLERANCE = 1e-10  # relative: max |ours − peer| / max |peer|, every param, every step
BATCH, FEATURES, OUTPUTS = 8, 4, 3


@dataclass(frozen=True)
class Problem:
    start: list[Tensor]  # W (FEATURES, OUTPUTS) and b (OUTPUTS,)
    inputs: list[Tensor]  # X_t, one minibatch per step
    targets: list[Tensor]  # Y_t
    lrs: list[float]  # the lr of each step


def schedule(peak: float, steps: int = STEPS, warmup: int = 10) -> list[float]:
    """Linear warmup to ``peak``, then a cosine down to peak/10."""
    def lr(t: int) -> float:
        if t < warmup:
            return peak * (t + 1) / warmup
        progress = (t - warmup) / (steps - warmup)
        return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return [lr(t) for t in range(steps)]


def make_problem(seed: int, peak_lr: float, steps: int = STEPS) -> Problem:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(shape, dtype=torch.float64, generator=gen)

    true_weight, true_bias = randn(FEATURES, OUTPUTS), randn(OUTPUTS)
    inputs = [randn(BATCH, FEATURES) for _ in range(steps)]
    targets = [x @ true_weight + true_bias + 0.3 * randn(BATCH, OUTPUTS) for x in inputs]
    return Problem([randn(FEATURES, OUTPUTS), randn(OUTPUTS)], inputs, targets,
                   schedule(peak_lr, steps))


def gradients(problem: Problem, step: int, params: list[Tensor]) -> list[Tensor]:
    """∇loss_step at ``params`` (fp64): (Xᵀr/n, Σr/n) with r = XW + b − Y."""
    weight, bias = (p.detach().to(torch.float64) for p in params)
    x = problem.inputs[step]
    residual = x @ weight + bias - problem.targets[step]
    return [x.T @ residual / BATCH, residual.sum(0) / BATCH]


def run_torch_style(problem: Problem, build) -> list[list[Tensor]]:
    """The trajectory of ``build(params)``, any torch.optim.Optimizer (optimlab's, torch's,
    timm's): the params after each step, the lr set from the schedule before each step
    (as torch's LR schedulers do)."""
    params = [p.clone().requires_grad_() for p in problem.start]
    optimizer = build(params)
    trajectory = []
    for step, lr in enumerate(problem.lrs):
        optimizer.param_groups[0]["lr"] = lr
        for param, grad in zip(params, gradients(problem, step, params), strict=True):
            param.grad = grad
        optimizer.step()
        trajectory.append([p.detach().clone() for p in params])
    return trajectory


def run_optimlab(problem: Problem, name: str, kwargs: dict) -> list[list[Tensor]]:
    """optimlab's trajectory (``run_torch_style``)."""
    return run_torch_style(problem, lambda params: optimizer_class(name)(params, **kwargs))


def relative_error(ours: list[list[Tensor]], theirs: list[list[Tensor]]) -> float:
    """max over steps and params of max |ours − theirs| / max |theirs|."""
    worst = 0.0
    for mine, other in zip(ours, theirs, strict=True):
        for a, b in zip(mine, other, strict=True):
            b = b.to(torch.float64)
            worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    return worst


def assert_conforms(problem: Problem, name: str, kwargs: dict, theirs: list[list[Tensor]],
                    *, torch_differs: bool, tolerance: float = FP64_TOLERANCE) -> float:
    """optimlab with ``kwargs`` follows the peer's trajectory within ``tolerance``; the
    params moved; and, where ``torch_differs``, the same keywords under preset="torch"
    miss the peer by over 100 times the tolerance (the preset is what makes the match).
    Returns the measured relative error."""
    ours = run_optimlab(problem, name, kwargs)
    error = relative_error(ours, theirs)
    print(f"{name}({kwargs}): max relative error {error:.2e}")
    assert error < tolerance, f"max relative error {error:.3e} >= {tolerance:g}"
    moved = relative_error([problem.start], [ours[-1]])
    assert moved > 1e-2, f"the params barely moved ({moved:.2e}): the test proves nothing"
    if torch_differs:
        as_torch = run_optimlab(problem, name, {**kwargs, "preset": "torch"})
        gap = relative_error(as_torch, theirs)
        assert gap > 100 * tolerance, f"preset='torch' also matches (gap {gap:.2e})"
    return error


def timm_class(module: str, name: str) -> type:
    """timm's optimizer ``name`` (from timm/optim/<module>.py), through ``timm.optim`` when
    it imports, else straight from the installed file (timm's optim modules import nothing
    of timm's outside optim/): timm is installed without torchvision, which its package
    imports for its models. Skips the calling module where timm is missing."""
    try:
        import timm.optim
    except Exception:  # torchvision missing, or (built for another torch) failing to load
        pass
    else:
        return getattr(timm.optim, name)
    try:
        spec = importlib.util.find_spec("timm")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("timm is not installed (pip install --no-deps timm)",
                    allow_module_level=True)
    optim_dir = Path(next(iter(spec.submodule_search_locations))) / "optim"
    package = types.ModuleType("_timm_optim")  # a stand-in package for the relative imports
    package.__path__ = [str(optim_dir)]
    sys.modules.setdefault("_timm_optim", package)
    try:
        return getattr(importlib.import_module(f"_timm_optim.{module}"), name)
    except ImportError as error:
        pytest.skip(f"timm's {name} could not be loaded without torchvision: {error}",
                    allow_module_level=True)
