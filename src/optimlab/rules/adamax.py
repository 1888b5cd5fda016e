"""Adamax (Kingma & Ba 2014, section 7.1): Adam with the infinity norm."""

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

ADAMAX_EPS_PLACEMENTS = ("max", "outside")


def adamax(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Adamax (Kingma & Ba 2014, section 7.1, Algorithm 2): v_t = ‖g₁..g_t‖_∞ with decay.

        m ← β₁ m + (1 − β₁) g
        u ← max(β₂ u, |g| + ε)           θ ← θ − η/(1 − β₁ᵗ) · m / u
                                        (``eps_placement="max"``: torch, optax)
        u ← max(β₂ u, |g|)               θ ← θ − η/(1 − β₁ᵗ) · m / (u + ε)
                                        (``eps_placement="outside"``: Keras)

    The paper has no ε (u > 0 once any gradient is not zero).

    Symbols: m=state["exp_avg"], u=state["exp_inf"], β₁,β₂=betas, η=lr, ε=eps, t=step;
    1 − β₁ᵗ arrives as ``hp["bias_correction1"]``.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    beta1 = hp["beta1"]
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * g
    if hp["eps_placement"] == "max":
        exp_inf = torch.maximum(hp["beta2"] * state["exp_inf"], torch.abs(g) + hp["eps"])
        denominator = exp_inf
    else:
        exp_inf = torch.maximum(hp["beta2"] * state["exp_inf"], torch.abs(g))
        denominator = exp_inf + hp["eps"]
    param = param - hp["lr"] / hp["bias_correction1"] * exp_avg / denominator
    return param, {"exp_avg": exp_avg, "exp_inf": exp_inf}


def adamax_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """1 − β₁ᵗ."""
    return {"bias_correction1": 1 - hp["beta1"] ** step}


ADAMAX_RULE = Rule(
    "adamax",
    adamax,
    numbers=(*COMMON_NUMBERS, "beta1", "beta2", "eps"),
    options=(*COMMON_OPTIONS, "eps_placement"),
    step_scalars=adamax_scalars,
    step_numbers=("bias_correction1",),
    state_keys=lambda hp: ("exp_avg", "exp_inf"),
    pairs=(("betas", ("beta1", "beta2")),),
)
