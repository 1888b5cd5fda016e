"""ASGD: SGD with a decaying step and Polyak–Ruppert averaging of the iterates."""

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


def asgd(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Averaged SGD (Polyak & Juditsky 1992), with torch's step size (Bottou 2012,
    "Stochastic Gradient Descent Tricks", section 5.3):

        θ ← θ (1 − λ η_t) − η_t g
        θ̄ ← μ_t θ + (1 − μ_t) θ̄        (θ̄ = θ exactly while μ_t = 1, i.e. t ≤ t₀ + 1)

    with η_{t+1} = η / (1 + λ η t)^α and μ_{t+1} = 1 / max(1, t − t₀), computed after step
    t from that step's lr η (so η_t lags the lr by one step, as torch's does) and kept in
    the state; η₁ = the lr of the first step, μ₁ = 1. θ̄ is the average the user evaluates
    (``state["ax"]``); the iterate θ itself is plain decayed SGD.

    Symbols: θ̄=state["ax"], λ=lambd, α=alpha, t₀=t0; η_t and μ_t arrive as
    ``hp["eta"]`` and ``hp["mu"]``, read from the 0-d ``eta`` and ``mu`` of the state
    (``asgd_scalar_step``).
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    eta, mu = hp["eta"], hp["mu"]
    param = param * (1 - hp["lambd"] * eta) - eta * g
    return param, {"ax": mu * param + (1 - mu) * state["ax"]}


def _at_least_one(value: Any) -> Any:
    return torch.clamp(value, min=1.0) if isinstance(value, Tensor) else max(1.0, value)


def asgd_scalar_step(hp: Mapping[str, Any], t: Any, kept: Mapping[str, Tensor]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """This step reads the η_t and μ_t kept in the state; after it they become
    η_{t+1} = η / (1 + λ η t)^α and μ_{t+1} = 1 / max(1, t − t₀), from this step's lr."""
    lr = hp["lr"]
    following = {"eta": lr / (1 + hp["lambd"] * lr * t) ** hp["alpha"],
                 "mu": 1 / _at_least_one(t - hp["t0"])}
    eta, mu = kept["eta"], kept["mu"]
    if not torch.compiler.is_compiling():
        # as torch reads them under autograd: η_t as a number (no gradient flows into the
        # state's eta), μ_t as the tensor, except at 1, where θ̄ is a copy of θ
        eta = float(eta)
        mu = 1.0 if float(mu) == 1 else mu
    return {"eta": eta, "mu": mu}, following


def asgd_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """η_t and μ_t, as ``asgd_scalar_step`` read them from the state."""
    return {"eta": hp["eta"], "mu": hp["mu"]}


ASGD_RULE = Rule(
    "asgd",
    asgd,
    numbers=(*COMMON_NUMBERS, "lambd", "alpha", "t0"),
    options=COMMON_OPTIONS,
    step_scalars=asgd_scalars,
    step_numbers=("eta", "mu"),
    state_keys=lambda hp: ("ax",),
    scalar_state=("eta", "mu"),
    scalar_initial=lambda hp: {"eta": hp["lr"], "mu": 1.0},
    scalar_step=asgd_scalar_step,
)
