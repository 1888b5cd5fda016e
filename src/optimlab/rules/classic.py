"""The seeds' rules: SGD (with momentum), AdaGrad, RMSprop, Adam (and AdamW), each written
as its equation, with the per-step scalars each derives and its declaration."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from optimlab.rules.base import (
    COMMON_NUMBERS,
    COMMON_OPTIONS,
    Hyper,
    Rule,
    State,
    _root,
    direction,
    no_scalars,
    weight_decay,
)


def _centered_variance(square_avg: Tensor, grad_avg: Tensor) -> Tensor:
    """s = E[g²] − E[g]², which is >= 0 in exact arithmetic, computed so that it stays so.

    Two roundings would otherwise make √s NaN, in torch.optim.RMSprop too: when g barely
    varies, E[g²] and E[g]² agree to the last bit and their difference can come out
    slightly negative (fp32, a constant gradient, alpha=0.9: NaN within ~130 steps); and
    when g² overflows, E[g²] and E[g]² are both Inf. So s is clamped at 0, and an Inf E[g²]
    gives s = Inf: the step is then 0, as it is without centering.
    """
    variance = (square_avg - grad_avg * grad_avg).clamp_min(0)
    # E[g²] >= 0, so "== inf" is isinf; Inductor vectorises the comparison, not isinf
    return torch.where(square_avg == math.inf, square_avg, variance)


def sgd(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Stochastic gradient descent, with optional momentum.

    Without momentum (μ = 0):  θ ← θ − η g

    With momentum, u is the gradient as it enters the buffer v:
    ``lr_in_momentum=False`` (torch, optax's sgd): u = g, and the step is θ ← θ − η d;
    ``lr_in_momentum=True`` (Keras/TF):           u = η g, and the step is θ ← θ − d.

    ``momentum_form="heavy_ball"`` (torch; dampening τ, and torch's first step v₁ = u):
        v ← μ v + (1 − τ) u
        d ← u + μ v   (nesterov)   or   d ← v
    ``momentum_form="ema"`` (seed 001; v₀ = 0):
        v ← μ v + (1 − μ) u
        d ← (1 − μ) u + μ v   (nesterov)   or   d ← v

    The two lr placements agree while η is constant. Under a schedule they part: with the
    lr inside, each gradient stays in the buffer at the lr of its own step; with it
    outside, today's lr rescales the whole remembered history.
    The EMA form is the heavy-ball form scaled by (1 − μ): with the same gradients,
    EMA momentum at lr η moves exactly as heavy-ball momentum at lr η(1 − μ).

    Symbols: θ=param, g=grad, v=state["momentum_buffer"], η=lr, μ=momentum,
    τ=dampening (``hp["dampening_now"]``: 0 on the first step, as torch does).
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    lr = hp["lr"]
    if "momentum_buffer" not in state:
        return param - lr * g, state
    mu, lr_inside = hp["momentum"], hp["lr_in_momentum"]
    u = lr * g if lr_inside else g
    if hp["momentum_form"] == "ema":
        v = mu * state["momentum_buffer"] + (1 - mu) * u
        d = (1 - mu) * u + mu * v if hp["nesterov"] else v
    else:
        v = mu * state["momentum_buffer"] + (1 - hp["dampening_now"]) * u
        d = u + mu * v if hp["nesterov"] else v
    return (param - d if lr_inside else param - lr * d), {"momentum_buffer": v}


def adagrad(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """AdaGrad (Duchi et al. 2011).

        G ← G + g²
        θ ← θ − η_t g / (√G + ε)        (``eps_placement="outside"``, torch)
        θ ← θ − η_t g / √(G + ε)        (``eps_placement="inside"``, seed 002)

    with η_t = η / (1 + (t − 1)·lr_decay) and G₀ = ``initial_accumulator_value``.

    Symbols: G=state["sum"], η_t=``hp["decayed_lr"]``, t=step.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    total = state["sum"] + g * g
    return param - hp["decayed_lr"] * g / _root(total, hp), {"sum": total}


def rmsprop(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """RMSprop (Hinton 2012), optionally centered and with momentum.

        E[g²] ← α E[g²] + (1 − α) g²
        centered:  E[g] ← α E[g] + (1 − α) g ;  s = E[g²] − E[g]²    else  s = E[g²]
        r = √s + ε   (``eps_placement="outside"``: torch, seeds 001/003)
        r = √(s + ε) (``eps_placement="inside"``: seed 000, TensorFlow)
        momentum μ > 0:  b ← μ b + g / r ;    θ ← θ − η b    (``lr_in_momentum=False``: torch)
                         b ← μ b + η g / r ;  θ ← θ − b      (``lr_in_momentum=True``: Keras/TF,
                                                              optax, timm's RMSpropTF)
        otherwise:       θ ← θ − η g / r

    E[g²] starts at ``initial_accumulator_value`` (0 in torch, Keras and optax; 1 in timm's
    RMSpropTF), E[g] and b at 0.

    Symbols: E[g²]=state["square_avg"], E[g]=state["grad_avg"],
    b=state["momentum_buffer"], α=alpha, η=lr, μ=momentum.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    alpha = hp["alpha"]
    square_avg = alpha * state["square_avg"] + (1 - alpha) * g * g
    new_state = {"square_avg": square_avg}
    if "grad_avg" in state:
        grad_avg = alpha * state["grad_avg"] + (1 - alpha) * g
        new_state["grad_avg"] = grad_avg
        scaled = g / _root(_centered_variance(square_avg, grad_avg), hp)
    else:
        scaled = g / _root(square_avg, hp)
    lr = hp["lr"]
    if "momentum_buffer" not in state:
        return param - lr * scaled, new_state
    if hp["lr_in_momentum"]:
        buffer = hp["momentum"] * state["momentum_buffer"] + lr * scaled
        return param - buffer, {**new_state, "momentum_buffer": buffer}
    buffer = hp["momentum"] * state["momentum_buffer"] + scaled
    return param - lr * buffer, {**new_state, "momentum_buffer": buffer}


def adam(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Adam (Kingma & Ba 2014), and AdamW through ``weight_decay_form="decoupled"``.

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        amsgrad:  v_max ← max(v_max, v) and v_max replaces v below
        m̂ = m / (1 − β₁ᵗ) ,  v̂ = v / (1 − β₂ᵗ)     (both divisors are 1 when
                                                     ``bias_correction=False``)
        θ ← θ − η m̂ / (√(v̂ + ε_root) + ε)       (``eps_placement="outside"``, torch)
        θ ← θ − η m̂ / √(v̂ + ε_root + ε)         (``eps_placement="inside"``)
        θ ← θ − η m̂ / (√(v̂ + ε_root) + ε̂)       (``eps_placement="hat"``, Keras/TF)

    with ε̂ = ε / √(1 − β₂ᵗ): Kingma & Ba's "epsilon hat" (end of their section 2), ε
    added to √v before the bias correction, as Keras writes the step:
    θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε). Early on ε̂ is √(1/(1 − β₂)) ≈ 31.6
    times ε (β₂ = 0.999); it falls to ε as t grows.

    Symbols: m=state["exp_avg"], v=state["exp_avg_sq"], v_max=state["max_exp_avg_sq"],
    β₁,β₂=betas, η=lr, ε=eps, ε_root=eps_root (optax's name), t=step;
    1 − β₁ᵗ and 1 − β₂ᵗ arrive as ``hp["bias_correction1"]`` and ``hp["bias_correction2"]``.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * g
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    new_state = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    second_moment = exp_avg_sq
    if "max_exp_avg_sq" in state:
        second_moment = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq)
        new_state["max_exp_avg_sq"] = second_moment
    m_hat = exp_avg / hp["bias_correction1"]
    v_hat = second_moment / hp["bias_correction2"] + hp["eps_root"]
    if hp["eps_placement"] == "hat":
        denominator = torch.sqrt(v_hat) + hp["eps"] / hp["bias_correction2"] ** 0.5
    else:
        denominator = _root(v_hat, hp)
    return param - hp["lr"] * m_hat / denominator, new_state


# --- per-step scalars: derived once per step, outside any per-element loop ---------------


def sgd_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """torch's SGD takes v₁ = g on the first step, i.e. no dampening then."""
    return {"dampening_now": 0.0 if step == 1 else hp["dampening"]}


def adagrad_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """η_t = η / (1 + (t − 1)·lr_decay)."""
    return {"decayed_lr": hp["lr"] / (1 + (step - 1) * hp["lr_decay"])}


def adam_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """1 − β₁ᵗ and 1 − β₂ᵗ, or 1 and 1 without bias correction."""
    if not hp["bias_correction"]:
        return {"bias_correction1": 1.0, "bias_correction2": 1.0}
    return {
        "bias_correction1": 1 - hp["beta1"] ** step,
        "bias_correction2": 1 - hp["beta2"] ** step,
    }


def _sgd_state_keys(hp: Hyper) -> tuple[str, ...]:
    return ("momentum_buffer",) if hp["momentum"] != 0 else ()


def _rmsprop_state_keys(hp: Hyper) -> tuple[str, ...]:
    keys = ("square_avg",)
    if hp["momentum"] > 0:
        keys += ("momentum_buffer",)
    if hp["centered"]:
        keys += ("grad_avg",)
    return keys


def _adam_state_keys(hp: Hyper) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if hp["amsgrad"] else (
        "exp_avg",
        "exp_avg_sq",
    )


def _no_decay(hp: Hyper) -> bool:
    return hp["weight_decay"] == 0


SGD_RULE = Rule(
    "sgd",
    sgd,
    numbers=(*COMMON_NUMBERS, "momentum", "dampening"),
    options=(*COMMON_OPTIONS, "nesterov", "momentum_form", "lr_in_momentum"),
    step_scalars=sgd_scalars,
    step_numbers=("dampening_now",),
    state_keys=_sgd_state_keys,
    counts_steps=False,
    accepts_sparse=True,
    row_local=lambda hp: _no_decay(hp) and hp["momentum"] == 0,
)
ADAGRAD_RULE = Rule(
    "adagrad",
    adagrad,
    numbers=(*COMMON_NUMBERS, "lr_decay", "eps", "initial_accumulator_value"),
    options=(*COMMON_OPTIONS, "eps_placement"),
    step_scalars=adagrad_scalars,
    step_numbers=("decayed_lr",),
    state_keys=lambda hp: ("sum",),
    accepts_sparse=True,
    row_local=_no_decay,
    initial_values=lambda hp: {"sum": hp["initial_accumulator_value"]},
)
RMSPROP_RULE = Rule(
    "rmsprop",
    rmsprop,
    numbers=(*COMMON_NUMBERS, "alpha", "eps", "momentum", "initial_accumulator_value"),
    options=(*COMMON_OPTIONS, "centered", "eps_placement", "lr_in_momentum"),
    step_scalars=no_scalars,
    step_numbers=(),
    state_keys=_rmsprop_state_keys,
    initial_values=lambda hp: {"square_avg": hp["initial_accumulator_value"]},
)
ADAM_RULE = Rule(
    "adam",
    adam,
    numbers=(*COMMON_NUMBERS, "beta1", "beta2", "eps", "eps_root"),
    options=(*COMMON_OPTIONS, "amsgrad", "bias_correction", "eps_placement"),
    step_scalars=adam_scalars,
    step_numbers=("bias_correction1", "bias_correction2"),
    state_keys=_adam_state_keys,
    pairs=(("betas", ("beta1", "beta2")),),
)
