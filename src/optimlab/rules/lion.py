"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of
an interpolated momentum. Elementwise: every engine runs it."""

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


def lion(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Lion, the paper's Algorithm 2:

        u = sign(β₁ m + (1 − β₁) g)
        θ ← θ − η u                 (after θ ← θ(1 − ηλ): ``weight_decay_form="decoupled"``,
                                     the paper's, timm's, lion-pytorch's and optax's)
        m ← β₂ m + (1 − β₂) g

    sign(0) = 0, and sign(NaN) = 0, as torch.sign gives them (a NaN gradient does not reach
    θ, but stays in m).

    Symbols: θ=param, g=grad, m=state["exp_avg"], β₁,β₂=betas, η=lr, λ=weight_decay.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    exp_avg = state["exp_avg"]
    update = torch.sign(beta1 * exp_avg + (1 - beta1) * g)
    return param - hp["lr"] * update, {"exp_avg": beta2 * exp_avg + (1 - beta2) * g}


LION_RULE = Rule(
    "lion",
    lion,
    numbers=(*COMMON_NUMBERS, "beta1", "beta2"),
    options=COMMON_OPTIONS,
    step_scalars=no_scalars,
    step_numbers=(),
    state_keys=lambda hp: ("exp_avg",),
    pairs=(("betas", ("beta1", "beta2")),),
    counts_steps=False,
)
