"""NAdam (Dozat 2016): Adam with Nesterov momentum, and torch's momentum-decay schedule."""

from __future__ import annotations

from collections.abc import Mapping
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

MOMENTUM_SCHEDULES = ("dozat", "constant")


def nadam(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"), as torch and Keras
    run it, and NAdamW through ``weight_decay_form="decoupled"``.

        m ← β₁ m + (1 − β₁) g ;   v ← β₂ v + (1 − β₂) g²
        d = √(v / (1 − β₂ᵗ)) + ε
        θ ← θ − η (1 − μ_t) / (1 − Π_t) · g / d − η μ_{t+1} / (1 − Π_{t+1}) · m / d

    with Π_t = μ₁ ··· μ_t and the momentum schedule (``momentum_schedule``)
    μ_t = β₁ (1 − ½ · 0.96^{tψ})  ("dozat": torch, Keras; ψ = ``momentum_decay``) or
    μ_t = β₁                       ("constant": optax's ``nadam``, whose Π_t is β₁ᵗ).

    Symbols: m=state["exp_avg"], v=state["exp_avg_sq"], β₁,β₂=betas, η=lr, ε=eps;
    μ_t, μ_{t+1}, Π_t, Π_{t+1} and 1 − β₂ᵗ arrive as ``hp["mu"]``, ``hp["mu_next"]``,
    ``hp["mu_product"]``, ``hp["mu_product_next"]`` and ``hp["bias_correction2"]``.
    Π_t is the 0-d ``mu_product`` torch keeps in each parameter's state (``nadam_scalars``).
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * g
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    denominator = torch.sqrt(exp_avg_sq / hp["bias_correction2"]) + hp["eps"]
    lr, mu, mu_next = hp["lr"], hp["mu"], hp["mu_next"]
    grad_weight = lr * (1 - mu) / (1 - hp["mu_product"])
    momentum_weight = lr * mu_next / (1 - hp["mu_product_next"])
    param = param - grad_weight * g / denominator - momentum_weight * exp_avg / denominator
    return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def momentum_at(hp: Hyper, t: Any) -> Any:
    """μ_t: β₁ (1 − ½ · 0.96^{tψ}) under Dozat's schedule, β₁ under a constant one."""
    if hp["momentum_schedule"] == "constant":
        return hp["beta1"]
    return hp["beta1"] * (1.0 - 0.5 * 0.96 ** (t * hp["momentum_decay"]))


def nadam_scalar_step(hp: Mapping[str, Any], t: Any, kept: Mapping[str, Tensor]
                      ) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Π_t = Π_{t−1} · μ_t, from the ``mu_product`` kept in the state as torch keeps it (a
    0-d fp32 tensor, multiplied in fp32), so that a checkpoint of either continues the
    other's product, a ``momentum_decay`` changed mid-run included. Under the constant
    schedule Π_t = β₁ᵗ in closed form (in double, as optax computes it; the state keeps
    its rounding, for checkpoints)."""
    if hp["momentum_schedule"] == "constant":
        mu_product = hp["beta1"] ** t
        return {"mu_product": mu_product}, {"mu_product": mu_product}
    mu_product = kept["mu_product"] * momentum_at(hp, t)
    return {"mu_product": mu_product}, {"mu_product": mu_product}


def nadam_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """μ_t, μ_{t+1}, Π_{t+1} = Π_t μ_{t+1} and 1 − β₂ᵗ (Π_t: ``nadam_scalar_step``)."""
    mu_next = momentum_at(hp, step + 1)
    return {"mu": momentum_at(hp, step), "mu_next": mu_next,
            "mu_product": hp["mu_product"], "mu_product_next": hp["mu_product"] * mu_next,
            "bias_correction2": 1 - hp["beta2"] ** step}


NADAM_RULE = Rule(
    "nadam",
    nadam,
    numbers=(*COMMON_NUMBERS, "beta1", "beta2", "eps", "momentum_decay"),
    options=(*COMMON_OPTIONS, "momentum_schedule"),
    step_scalars=nadam_scalars,
    step_numbers=("mu", "mu_next", "mu_product", "mu_product_next", "bias_correction2"),
    state_keys=lambda hp: ("exp_avg", "exp_avg_sq"),
    pairs=(("betas", ("beta1", "beta2")),),
    scalar_state=("mu_product",),
    scalar_initial=lambda hp: {"mu_product": 1.0},
    scalar_step=nadam_scalar_step,
)
