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
    # s's sign, by comparisons (every engine's op table has them; a NaN compares false
    # both ways, as torch's sign(NaN) = 0 leaves it: Δ kept, θ not moved)
    product, step_size = g * state["prev"], state["step_size"]
    step_size = torch.where(product > 0, step_size * hp["eta_plus"],
                            torch.where(product < 0, step_size * hp["eta_minus"], step_size))
    step_size = torch.clamp(step_size, hp["step_size_min"], hp["step_size_max"])
    g = torch.where(product < 0, 0.0, g)
    param = torch.where(g > 0, param - step_size, torch.where(g < 0, param + step_size, param))
    return param, {"prev": g, "step_size": step_size}


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
