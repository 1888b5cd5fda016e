"""The seeds' worked claims, as tests — including the one seed 002 gets wrong."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from cases import optimizer_class

import optimlab


def _one_step(optimizer_class, start, grad, **kwargs):
    param = start.clone().requires_grad_()
    optimizer = optimizer_class([param], **kwargs)
    param.grad = grad.clone()
    optimizer.step()
    return param.detach() - start, optimizer.state[param]


def test_seed_000_bias_correction_example(gen) -> None:
    """At t=1 with β₁ = 0.9: m₁ = 0.06 gives m̂₁ = 0.06 / (1 − 0.9) = 0.6."""
    start = torch.randn(5, dtype=torch.float64, generator=gen)
    grad = torch.full((5,), 0.6, dtype=torch.float64)
    update, state = _one_step(optimlab.Adam, start, grad, lr=1e-3, betas=(0.9, 0.999))
    torch.testing.assert_close(state["exp_avg"], torch.full_like(start, 0.06))
    torch.testing.assert_close(state["exp_avg"] / (1 - 0.9**1), torch.full_like(start, 0.6))
    # and the step uses m̂ = 0.6, v̂ = 0.36: Δθ = −η·0.6/(0.6 + ε) ≈ −η
    torch.testing.assert_close(update, torch.full_like(start, -1e-3 * 0.6 / (0.6 + 1e-8)))


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_adams_first_update_is_lr_whatever_the_gradient_scale(scale, gen) -> None:
    """m̂₁ = g and √v̂₁ = |g|: the first step is η·sign(g) (up to ε, set to 0 here)."""
    start = torch.randn(100, dtype=torch.float64, generator=gen)
    grad = torch.randn(100, dtype=torch.float64, generator=gen) * scale
    update, _ = _one_step(optimlab.Adam, start, grad, lr=1e-3, eps=0.0)
    torch.testing.assert_close(update.abs(), torch.full_like(start, 1e-3), rtol=1e-9, atol=0)
    default_eps, _ = _one_step(optimlab.Adam, start, grad, lr=1e-3)
    assert (default_eps.abs() > 0.9e-3).float().mean() > 0.9 or scale < 1e-3


def test_without_bias_correction_the_first_step_is_larger_not_tiny(gen) -> None:
    """Seed 002 says early updates without bias correction are "tiny". The first moment alone
    is 10x too small (m₁ = 0.1 g), but √v₁ = √0.001·|g| is underestimated more, so the
    first step is (1 − β₁)/√(1 − β₂) = 0.1/√0.001 ≈ 3.16 times *larger* than with it."""
    start = torch.randn(100, dtype=torch.float64, generator=gen)
    grad = torch.randn(100, dtype=torch.float64, generator=gen)
    with_bc, state = _one_step(optimlab.Adam, start, grad, lr=1e-3, eps=1e-12)
    without, _ = _one_step(optimlab.Adam, start, grad, lr=1e-3, eps=1e-12,
                           bias_correction=False)
    torch.testing.assert_close(state["exp_avg"], 0.1 * grad)  # m₁: 10x smaller than g
    ratio = without.abs() / with_bc.abs()
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.1 / math.sqrt(0.001)), rtol=1e-6,
                               atol=0)
    assert ratio.min() > 3.16


def _decay_effect(optimizer_class, gen, scales, **kwargs):
    """How much one step's weight decay moves each parameter, relative to its value:
    (θ(step with λ) − θ(step without λ)) / θ, after 30 steps that build up the moments
    from gradients of a different scale for each parameter."""
    param = torch.ones(len(scales), dtype=torch.float64).requires_grad_()
    warm = optimizer_class([param], **{**kwargs, "weight_decay": 0.0})
    for _ in range(30):
        param.grad = torch.randn(len(scales), dtype=torch.float64, generator=gen) * scales
        warm.step()
    grad = torch.randn(len(scales), dtype=torch.float64, generator=gen) * scales
    moved = []
    for decay in (kwargs["weight_decay"], 0.0):
        twin = param.detach().clone().requires_grad_()
        optimizer = optimizer_class([twin], **kwargs)
        optimizer.load_state_dict(copy.deepcopy(warm.state_dict()))  # no shared tensors
        optimizer.param_groups[0]["weight_decay"] = decay
        twin.grad = grad
        optimizer.step()
        moved.append(twin.detach())
    return (moved[0] - moved[1]) / param.detach(), warm.state[param]


def test_adam_l2_decay_shrinks_with_gradient_scale_adamw_does_not(gen) -> None:
    """Seeds 000/002/004: Adam's L2 decay is divided by √v̂ — parameters with large gradients
    are barely regularised — while AdamW decays every parameter by the same fraction ηλ."""
    scales = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    adam_effect, state = _decay_effect(optimlab.Adam, gen, scales, lr=1e-3, weight_decay=1e-2)
    adamw_effect, _ = _decay_effect(optimlab.AdamW, gen, scales, lr=1e-3, weight_decay=1e-2)
    assert (adam_effect < 0).all()
    assert adam_effect[0] / adam_effect[2] > 30  # ~ 1/√v̂, and the scales are 100x apart
    v_hat = state["exp_avg_sq"] / (1 - 0.999 ** float(state["step"]))
    undone = adam_effect * v_hat.sqrt()  # multiply the 1/√v̂ back: about equal
    assert undone.max() / undone.min() < 1.5
    torch.testing.assert_close(adamw_effect, torch.full_like(adamw_effect, -1e-3 * 1e-2),
                               rtol=1e-9, atol=0)


def test_rmsprops_step_is_invariant_to_the_gradient_scale(gen) -> None:
    """g/√E[g²] does not change when every gradient is scaled by c (exactly so as ε → 0;
    ε only matters where |g| is as small as ε)."""
    start = torch.randn(50, dtype=torch.float64, generator=gen)
    grads = [torch.randn(50, dtype=torch.float64, generator=gen) for _ in range(20)]
    paths = []
    for scale in (1e-3, 1.0, 1e3):
        param = start.clone().requires_grad_()
        optimizer = optimlab.RMSprop([param], lr=1e-2, eps=0.0)
        for grad in grads:
            param.grad = grad * scale
            optimizer.step()
        paths.append(param.detach() - start)
    torch.testing.assert_close(paths[0], paths[1], rtol=1e-9, atol=0)
    torch.testing.assert_close(paths[2], paths[1], rtol=1e-9, atol=0)


def test_adagrads_rate_dies(gen) -> None:
    """Seed 002: G only grows, so under gradients of constant size the step is η/√t and
    heads to zero; RMSprop's moving average forgets, and its step settles at η."""
    steps = {}
    for name in ("Adagrad", "RMSprop"):
        param = torch.randn(1, dtype=torch.float64, generator=gen).requires_grad_()
        optimizer = optimizer_class(name)([param], lr=0.1, eps=0.0)
        sizes = []
        for _ in range(400):
            before = param.detach().clone()
            param.grad = torch.full((1,), 2.5, dtype=torch.float64)
            optimizer.step()
            sizes.append((param.detach() - before).abs().item())
        steps[name] = sizes
    for t in (1, 100, 400):
        assert steps["Adagrad"][t - 1] == pytest.approx(0.1 / math.sqrt(t), rel=1e-9)
    assert steps["RMSprop"][-1] == pytest.approx(0.1 / math.sqrt(1 - 0.99**400), rel=1e-9)


def test_ema_momentum_is_heavy_ball_with_lr_scaled_by_one_minus_beta(gen) -> None:
    start = torch.randn(10, dtype=torch.float64, generator=gen)
    grads = [torch.randn(10, dtype=torch.float64, generator=gen) for _ in range(15)]
    finals = []
    for kwargs in ({"lr": 0.1, "momentum_form": "ema"}, {"lr": 0.1 * (1 - 0.9)}):
        param = start.clone().requires_grad_()
        optimizer = optimlab.SGD([param], momentum=0.9, nesterov=True, **kwargs)
        for grad in grads:
            param.grad = grad
            optimizer.step()
        finals.append(param.detach())
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-12, atol=1e-14)


def test_rmsprop_with_bias_correction_identity_adam_beta1_zero(gen) -> None:
    """Adam with β₁ = 0 and no bias correction is RMSprop (α = β₂), epsilon outside."""
    start = torch.randn(10, dtype=torch.float64, generator=gen)
    grads = [torch.randn(10, dtype=torch.float64, generator=gen) for _ in range(15)]
    finals = []
    for cls, kwargs in ((optimlab.Adam, {"betas": (0.0, 0.9), "bias_correction": False}),
                        (optimlab.RMSprop, {"alpha": 0.9})):
        param = start.clone().requires_grad_()
        optimizer = cls([param], lr=0.01, eps=1e-6, **kwargs)
        for grad in grads:
            param.grad = grad
            optimizer.step()
        finals.append(param.detach())
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-12, atol=1e-14)
