"""Adadelta (Zeiler 2012): a step whose units match θ's, from two running averages."""

from __future__ import annotations

import torch
from torch import Tensor

from optimlab.rules.base import (
    COMMON_NUMBERS,
    COMMON_OPTIONS,
    Hyper,
    Rule,
    State,
    direction,
    no_scalars,
    weight_decay,
)


def adadelta(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1).

        E[g²] ← ρ E[g²] + (1 − ρ) g²
        Δ = √(E[Δx²] + ε) / √(E[g²] + ε) · g          (RMS[x] = √(E[x²] + ε))
        E[Δx²] ← ρ E[Δx²] + (1 − ρ) Δ²
        θ ← θ − η Δ

    The paper has no η (η = 1, torch's default). torch, Keras and optax all put ε inside
    both roots, as the paper does.

    Symbols: E[g²]=state["square_avg"], E[Δx²]=state["acc_delta"], ρ=rho, η=lr, ε=eps.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    rho, eps = hp["rho"], hp["eps"]
    square_avg = rho * state["square_avg"] + (1 - rho) * g * g
    delta = torch.sqrt(state["acc_delta"] + eps) / torch.sqrt(square_avg + eps) * g
    acc_delta = rho * state["acc_delta"] + (1 - rho) * delta * delta
    return param - hp["lr"] * delta, {"square_avg": square_avg, "acc_delta": acc_delta}


ADADELTA_RULE = Rule(
    "adadelta",
    adadelta,
    numbers=(*COMMON_NUMBERS, "rho", "eps"),
    options=COMMON_OPTIONS,
    step_scalars=no_scalars,
    step_numbers=(),
    state_keys=lambda hp: ("square_avg", "acc_delta"),
)
