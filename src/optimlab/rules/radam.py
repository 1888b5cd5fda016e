"""RAdam (Liu et al. 2019): Adam whose adaptive step is switched on, and rectified, once
the variance of its adaptive lr is tractable."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.rules.base import (
    COMMON_NUMBERS,
    COMMON_OPTIONS,
    Hyper,
    Rule,
    State,
    direction,
    weight_decay,
)

RADAM_EPS_PLACEMENTS = ("hat", "outside")


def radam(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """RAdam (Liu et al. 2019, "On the Variance of the Adaptive Learning Rate and Beyond",
    Algorithm 2), and RAdamW through ``weight_decay_form="decoupled"``.

        m ← β₁ m + (1 − β₁) g ;   v ← β₂ v + (1 − β₂) g² ;   m̂ = m / (1 − β₁ᵗ)
        ρ∞ = 2 / (1 − β₂) − 1 ;   ρ_t = ρ∞ − 2t β₂ᵗ / (1 − β₂ᵗ)
        ρ_t > ρ_min:  r_t = √((ρ_t − 4)(ρ_t − 2) ρ∞ / ((ρ∞ − 4)(ρ∞ − 2) ρ_t))
                      θ ← θ − η r_t m̂ √(1 − β₂ᵗ) / (√v + ε)     (``eps_placement="hat"``, torch)
                      θ ← θ − η r_t m̂ / (√(v / (1 − β₂ᵗ)) + ε)  (``"outside"``, optax)
        otherwise:    θ ← θ − η m̂                               (SGD with momentum)

    ρ_min = ``threshold`` (5 in torch, optax and the paper's code; the paper's text says 4).

    Symbols: m=state["exp_avg"], v=state["exp_avg_sq"], β₁,β₂=betas, η=lr, ε=eps;
    1 − β₁ᵗ, 1 − β₂ᵗ, r_t and whether ρ_t > ρ_min (1 or 0) arrive as
    ``hp["bias_correction1"]``, ``hp["bias_correction2"]``, ``hp["rectification"]`` and
    ``hp["rectified"]`` (``radam_scalars``). The switch is arithmetic, not a branch, so
    that one kernel runs every step: (r_t c + (1 − rectified) d) / d is r_t c / d when
    rectified and exactly 1 otherwise (d = the denominator, c = √(1 − β₂ᵗ) or 1).
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * g
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    m_hat = exp_avg / hp["bias_correction1"]
    if hp["eps_placement"] == "hat":
        scale = hp["bias_correction2"] ** 0.5
        denominator = torch.sqrt(exp_avg_sq) + hp["eps"]
    else:
        scale = 1.0
        denominator = torch.sqrt(exp_avg_sq / hp["bias_correction2"]) + hp["eps"]
    adaptive = (hp["rectification"] * scale + (1 - hp["rectified"]) * denominator) / denominator
    return param - hp["lr"] * m_hat * adaptive, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def radam_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """1 − β₁ᵗ, 1 − β₂ᵗ, and ρ_t's verdict: r_t and 1 where ρ_t > ρ_min, 0 and 0 else."""
    beta1, beta2 = hp["beta1"], hp["beta2"]
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho = rho_inf - 2 * step * beta2 ** step / bias_correction2
    ratio = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
    scalars = {"bias_correction1": 1 - beta1 ** step, "bias_correction2": bias_correction2}
    if isinstance(rho, Tensor):  # a counter on a device, or traced: no branch on its value
        rectified = rho > hp["threshold"]
        scalars["rectified"] = rectified.to(rho.dtype)
        scalars["rectification"] = torch.where(rectified, ratio.clamp(min=0) ** 0.5, 0.0)
    elif rho > hp["threshold"]:
        scalars["rectified"], scalars["rectification"] = 1.0, ratio ** 0.5
    else:
        scalars["rectified"], scalars["rectification"] = 0.0, 0.0
    return scalars


RADAM_RULE = Rule(
    "radam",
    radam,
    numbers=(*COMMON_NUMBERS, "beta1", "beta2", "eps", "threshold"),
    options=(*COMMON_OPTIONS, "eps_placement"),
    step_scalars=radam_scalars,
    step_numbers=("bias_correction1", "bias_correction2", "rectified", "rectification"),
    state_keys=lambda hp: ("exp_avg", "exp_avg_sq"),
    pairs=(("betas", ("beta1", "beta2")),),
)
