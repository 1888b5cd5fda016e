"""Porting between frameworks: hyperparameters where a closed form exists, and checkpoints.

Each function returns the value under one convention that makes an optimizer take
exactly the steps it takes under another; its docstring gives the derivation and where it
stops being exact. Where no closed form exists (ε inside vs outside the root: √(s + ε)
against √s + ε depends on s), use the convention itself (``eps_placement``) instead.

    >>> from optimlab import porting
    >>> porting.keras_epsilon_to_torch(1e-7, beta2=0.999, step=1)  # torch's ε at step 1
    3.162277660168378e-06
    >>> round(porting.ema_lr_to_heavy_ball(0.1, momentum=0.9), 12)
    0.01
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from optimlab import codecs
from optimlab.hyperparameters import ArgumentError, Range

_UNIT = Range(0.0, 1.0)  # [0, 1)
_NONNEGATIVE = Range(0.0)


def _check_step(owner: str, step: int) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ArgumentError(f"{owner}: step={step!r} is invalid; valid: an integer >= 1 "
                            "(the first step is 1)")


def keras_epsilon_to_torch(epsilon: float, beta2: float, step: int) -> float:
    """torch's Adam ``eps`` that takes the same step t as Keras's Adam with ``epsilon``.

    Keras (as TensorFlow, and Kingma & Ba's cheaper form at the end of their section 2)
    computes the step as

        θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε̂).

    Dividing numerator and denominator by √(1 − β₂ᵗ), with m̂ = m/(1 − β₁ᵗ) and
    v̂ = v/(1 − β₂ᵗ), gives torch's form

        θ ← θ − η · m̂ / (√v̂ + ε̂/√(1 − β₂ᵗ)),

    so torch's ε = ε̂/√(1 − β₂ᵗ).

    Limits: exact at step t only. The equivalent ε falls from ε̂/√(1 − β₂) at t = 1
    (31.6·ε̂ for β₂ = 0.999) towards ε̂ (within 1 % once β₂ᵗ < 0.02: t > 3900 for
    β₂ = 0.999), so no single constant reproduces every step. To match every step use
    ``Adam(eps_placement="hat")`` (or ``preset="keras"``), or set the group's ``eps`` to
    this value before each step. With eps_root, or without bias correction, the two forms
    differ otherwise or coincide; this conversion assumes neither.
    """
    owner = "keras_epsilon_to_torch"
    _NONNEGATIVE.check(owner, "epsilon", epsilon)
    _UNIT.check(owner, "beta2", beta2)
    _check_step(owner, step)
    return epsilon / math.sqrt(1 - beta2**step)


def torch_epsilon_to_keras(eps: float, beta2: float, step: int) -> float:
    """Keras's Adam ``epsilon`` (ε̂) that takes the same step t as torch's Adam with ``eps``:
    ε̂ = ε·√(1 − β₂ᵗ), the inverse of :func:`keras_epsilon_to_torch`, with its limits."""
    owner = "torch_epsilon_to_keras"
    _NONNEGATIVE.check(owner, "eps", eps)
    _UNIT.check(owner, "beta2", beta2)
    _check_step(owner, step)
    return eps * math.sqrt(1 - beta2**step)


def ema_lr_to_heavy_ball(lr: float, momentum: float) -> float:
    """The heavy-ball lr that moves exactly as EMA momentum at ``lr``: η(1 − μ).

    EMA momentum (seed 001, ``momentum_form="ema"``):  v ← μv + (1 − μ)g,  θ ← θ − ηv.
    Heavy ball (torch's SGD, dampening 0):             w ← μw + g,          θ ← θ − η'w.
    Both buffers start at 0 (torch's v₁ = g is μ·0 + g), so by induction
    v_t = (1 − μ)w_t at every step, and ηv_t = η(1 − μ)w_t: η' = η(1 − μ). Nesterov
    keeps it: (1 − μ)g + μv = (1 − μ)(g + μw).

    Limits: none for the direction, at any step and under any schedule (convert each
    step's lr). Decoupled weight decay θ ← θ(1 − ηλ) also reads the lr: keep ηλ by using
    λ/(1 − μ) with the converted lr. torch's ``dampening=μ`` is not the EMA form: torch
    skips the dampening on the first step (v₁ = g).
    """
    owner = "ema_lr_to_heavy_ball"
    _NONNEGATIVE.check(owner, "lr", lr)
    _UNIT.check(owner, "momentum", momentum)
    return lr * (1 - momentum)


def heavy_ball_lr_to_ema(lr: float, momentum: float) -> float:
    """The EMA-momentum lr that moves exactly as heavy-ball momentum at ``lr``: η/(1 − μ),
    the inverse of :func:`ema_lr_to_heavy_ball`, with its limits."""
    owner = "heavy_ball_lr_to_ema"
    _NONNEGATIVE.check(owner, "lr", lr)
    _UNIT.check(owner, "momentum", momentum)
    return lr / (1 - momentum)


def decoupled_to_independent_weight_decay(weight_decay: float, lr: float) -> float:
    """``weight_decay`` for ``weight_decay_form="independent"`` (θ ← θ(1 − λ')) that decays
    as ``"decoupled"`` (θ ← θ(1 − ηλ), torch's AdamW, Keras, optax's adamw) does at ``lr``:
    λ' = ηλ.

    Limits: exact while the lr is ``lr``. Under a schedule the decoupled decay follows the
    lr and the independent one does not: converting at the peak lr decays more than
    torch's AdamW wherever the schedule is below its peak.
    """
    owner = "decoupled_to_independent_weight_decay"
    _NONNEGATIVE.check(owner, "weight_decay", weight_decay)
    _NONNEGATIVE.check(owner, "lr", lr)
    decay = lr * weight_decay
    Range(0.0, 1.0, closed=True).check(owner, "lr * weight_decay", decay)
    return decay


def to_torch_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an optimlab state dict that torch.optim loads and continues from.

    Moments kept in 8 bits (``exp_avg_codes`` and ``exp_avg_absmax``, ...) are decoded into
    fp32 tensors under torch's names (``exp_avg``); bf16 or fp32 moments are torch's
    already. Groups say ``state_dtype=None``, as the moments now are plain tensors.
    torch.optim refuses an 8-bit state dict as it is (a KeyError on its first step: the
    moment's own name is absent), so that codes are never read as moments.

    The other way needs no conversion: ``optimlab.AdamW(..., state_dtype=torch.int8)``
    re-encodes a torch.optim checkpoint's moments when it loads one.

        >>> import optimlab
        >>> weight = torch.nn.Parameter(torch.randn(64, 64))
        >>> ours = optimlab.AdamW([weight], state_dtype=torch.int8)
        >>> weight.grad = torch.randn(64, 64)
        >>> ours.step()
        >>> theirs = torch.optim.AdamW([weight])
        >>> theirs.load_state_dict(to_torch_state_dict(ours.state_dict()))
        >>> theirs.state[weight]["exp_avg"].dtype
        torch.float32
    """
    state = {}
    for param_id, entry in state_dict["state"].items():
        converted = dict(entry)
        for name in entry:
            if name.endswith(codecs.CODES_SUFFIX):
                key = name.removesuffix(codecs.CODES_SUFFIX)
                converted[key] = codecs.decoded(entry, key, torch.float32)
                del converted[name], converted[key + codecs.ABSMAX_SUFFIX]
        state[param_id] = converted
    groups = [{**group, "state_dtype": None} if "state_dtype" in group else dict(group)
              for group in state_dict["param_groups"]]
    return {**state_dict, "state": state, "param_groups": groups}
