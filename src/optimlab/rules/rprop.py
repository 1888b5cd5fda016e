"""Rprop (Riedmiller & Braun 1993), in torch's variant iRprop⁻ (Igel & Hüsken 2000)."""

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


def rprop(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Resilient backpropagation: each weight's own step size Δ, grown while its
    gradient keeps its sign and shrunk when the sign flips; only the sign of g is used.

        s = sign(g · g_prev)
        Δ ← clamp(Δ · (η⁺ if s > 0, η⁻ if s < 0, 1 if s = 0), Δ_min, Δ_max)
        g ← 0 where s < 0                  (iRprop⁻: no step after a sign flip, and the
                                            next step counts as a fresh start)
        θ ← θ − sign(g) · Δ ;   g_prev ← g

    Δ starts at the lr (torch; the paper's Δ₀ = 0.1), g_prev at 0.

    Symbols: g_prev=state["prev"], Δ=state["step_size"], η⁻,η⁺=etas,
    Δ_min,Δ_max=step_sizes.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    sign = torch.sign(g * state["prev"])
    one = torch.ones_like(g)
    factor = torch.where(sign > 0, one * hp["eta_plus"],
                         torch.where(sign < 0, one * hp["eta_minus"], one))
    step_size = torch.clamp(state["step_size"] * factor, hp["step_size_min"],
                            hp["step_size_max"])
    g = torch.where(sign < 0, torch.zeros_like(g), g)
    return param - torch.sign(g) * step_size, {"prev": g, "step_size": step_size}


RPROP_RULE = Rule(
    "rprop",
    rprop,
    numbers=(*COMMON_NUMBERS, "eta_minus", "eta_plus", "step_size_min", "step_size_max"),
    options=COMMON_OPTIONS,
    step_scalars=no_scalars,
    step_numbers=(),
    state_keys=lambda hp: ("prev", "step_size"),
    pairs=(("etas", ("eta_minus", "eta_plus")),
           ("step_sizes", ("step_size_min", "step_size_max"))),
    initial_values=lambda hp: {"step_size": hp["lr"]},
)
