"""Schedule-free AdamW and SGD (Defazio et al. 2024, "The Road Less Scheduled").

Three sequences replace a learning-rate schedule: z, the base iterate, takes the
gradient steps; x, the average of the z's weighted by c_{t+1}, is the point to evaluate;
y, between the two, is where the gradient is taken:

    y_t     = (1 − β) z_t + β x_t
    z_{t+1} = z_t − η_t u_t                     u_t: the step direction at y_t
    x_{t+1} = (1 − c_{t+1}) x_t + c_{t+1} z_{t+1}

As in the authors' package (facebookresearch/schedulefree), the params hold y while
training and the state keeps z (``state["z"]``), never x: y_{t+1} follows from y_t and
z_t directly (``_interpolate``), and ``optimizer.eval()`` moves the params to
x = (y − (1 − β) z)/β, ``train()`` back. The per-element update is elementwise, so every
engine that runs elementwise rules runs it; c_{t+1}, the warmed-up lr and Adam's bias
correction are per-step numbers, derived once per param group and step by
``schedulefree_group_step`` from the values kept in the group (``k``, ``weight_sum``,
``lr_max``: the package's names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from optimlab.rules.base import Hyper, Rule, State, direction, no_scalars

#: the numbers schedule-free keeps in each param group across steps (the package's names)
GROUP_VALUES = ("k", "weight_sum", "lr_max", "scheduled_lr")


def _interpolate(y: Tensor, z: Tensor, u: Tensor, beta: Any, hp: Hyper) -> tuple[Tensor, Tensor]:
    """(y_{t+1}, z_{t+1}) from y_t, z_t and the direction u, x never formed.

    With β x_t = y_t − (1 − β) z_t, the three equations above give
        y_{t+1} = y_t + c (z_t − y_t) + η_t (β (1 − c) − 1) u ,   z_{t+1} = z_t − η_t u
    with c = c_{t+1} (``hp["ckp1"]``) and η_t the warmed-up lr (``hp["scheduled_lr"]``).
    """
    lr, c = hp["scheduled_lr"], hp["ckp1"]
    return y + c * (z - y) + lr * (beta * (1 - c) - 1) * u, z - lr * u


def adamw_schedulefree(param: Tensor, grad: Tensor, state: State, hp: Hyper
                       ) -> tuple[Tensor, State]:
    """Schedule-free AdamW: the step direction is Adam's normalised gradient, without
    a first moment (β₁ is the interpolation β), plus weight decay taken at y.

        v ← β₂ v + (1 − β₂) g²
        u = g / (√(v / (1 − β₂ᵗ)) + ε) + λ y
        y ← y + c (z − y) + η_t (β₁ (1 − c) − 1) u ;   z ← z − η_t u

    Symbols: y=param, g=grad, z=state["z"], v=state["exp_avg_sq"], β₁,β₂=betas, ε=eps,
    λ=weight_decay, t = k + 1 (the group's step), 1 − β₂ᵗ=``hp["bias_correction2"]``,
    c, η_t: see ``_interpolate``.
    """
    g = direction(grad, hp)
    beta2 = hp["beta2"]
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    u = g / ((exp_avg_sq / hp["bias_correction2"]).sqrt() + hp["eps"]) + \
        hp["weight_decay"] * param
    y, z = _interpolate(param, state["z"], u, hp["beta1"], hp)
    return y, {"z": z, "exp_avg_sq": exp_avg_sq}


def sgd_schedulefree(param: Tensor, grad: Tensor, state: State, hp: Hyper
                     ) -> tuple[Tensor, State]:
    """Schedule-free SGD: the step direction is the gradient, with weight decay at y.

        u = g + λ y
        y ← y + c (z − y) + η_t (μ (1 − c) − 1) u ;   z ← z − η_t u

    Symbols: y=param, g=grad, z=state["z"], μ=momentum (the interpolation β),
    λ=weight_decay; c, η_t: see ``_interpolate``.
    """
    u = direction(grad, hp) + hp["weight_decay"] * param
    y, z = _interpolate(param, state["z"], u, hp["momentum"], hp)
    return y, {"z": z}


def schedulefree_group_step(hp: Hyper, kept: Mapping[str, Any]) -> dict[str, Any]:
    """One step of the values kept per group, before the update (the package's order).

        t = k + 1 ;  η_t = η · t / warmup_steps while k < warmup_steps, else η
        lr_max ← max(lr_max, η_t) ;   w_t = tʳ · lr_maxᵖ ;   W ← W + w_t
        c_{t+1} = w_t / W   (0 while W = 0: an lr of 0 from the start)

    with p = ``weight_lr_power`` and r = ``r``; for AdamW also 1 − β₂ᵗ. Returns the new
    kept values (``k``, ``weight_sum``, ``lr_max``, ``scheduled_lr``) and the numbers the
    update reads (``scheduled_lr``, ``ckp1``, ``bias_correction2``). η_t stays a tensor
    where the lr is one (``differentiable=True``); lr_max and W are plain numbers.
    """
    k = kept["k"]
    warmup = hp["warmup_steps"]
    lr = hp["lr"] * ((k + 1) / warmup if k < warmup else 1.0)
    lr_max = max(float(lr), kept["lr_max"])
    weight = (k + 1) ** hp["r"] * lr_max ** hp["weight_lr_power"]
    weight_sum = kept["weight_sum"] + weight
    numbers = {"k": k + 1, "weight_sum": weight_sum, "lr_max": lr_max, "scheduled_lr": lr,
               "ckp1": weight / weight_sum if weight_sum != 0 else 0.0}
    if "beta2" in hp:
        numbers["bias_correction2"] = 1 - hp["beta2"] ** (k + 1)
    return numbers


_COMMON = ("lr", "weight_decay", "warmup_steps", "r", "weight_lr_power")
ADAMW_SCHEDULEFREE_RULE = Rule(
    "adamw_schedulefree",
    adamw_schedulefree,
    numbers=(*_COMMON, "beta1", "beta2", "eps"),
    options=("maximize",),
    step_scalars=no_scalars,
    step_numbers=("scheduled_lr", "ckp1", "bias_correction2"),
    state_keys=lambda hp: ("z", "exp_avg_sq"),
    pairs=(("betas", ("beta1", "beta2")),),
    counts_steps=False,
    group_values=GROUP_VALUES,
    group_step=schedulefree_group_step,
    copies_param=("z",),
)
SGD_SCHEDULEFREE_RULE = Rule(
    "sgd_schedulefree",
    sgd_schedulefree,
    numbers=(*_COMMON, "momentum"),
    options=("maximize",),
    step_scalars=no_scalars,
    step_numbers=("scheduled_lr", "ckp1"),
    state_keys=lambda hp: ("z",),
    counts_steps=False,
    group_values=GROUP_VALUES,
    group_step=schedulefree_group_step,
    copies_param=("z",),
)
