"""SGD, with heavy-ball, EMA or Nesterov momentum (rules.sgd)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, ArgumentError, Choice, Range
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, TORCH_RUN_OPTIONS, UNIT
from optimlab.rules import MOMENTUM_FORMS, SGD_RULE

_SGD_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "momentum": 0.0, "dampening": 0.0,
              "weight_decay": 0.0, "nesterov": False, "momentum_form": "heavy_ball",
              "lr_in_momentum": False}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum — ``rules.sgd``.

        v ← μ v + (1 − τ) g       (``momentum_form="heavy_ball"``, torch's; v₁ = g)
        v ← μ v + (1 − μ) g       (``momentum_form="ema"``, seed 001; v₀ = 0)
        θ ← θ − η v               (Nesterov: θ ← θ − η (g + μ v), resp. ((1 − μ) g + μ v))

    Args (beyond torch.optim.SGD's ``lr=1e-3, momentum=0, dampening=0, weight_decay=0,
    nesterov=False, maximize, foreach, differentiable, fused``):
        momentum_form: ``"heavy_ball"`` (default) or ``"ema"``. EMA momentum at lr η moves
            exactly as heavy-ball momentum at lr η(1 − μ).
        lr_in_momentum: False (torch, optax: v ← μv + g, θ ← θ − ηv) or True (Keras/TF:
            v ← μv + ηg, θ ← θ − v). The same path at a constant lr; not under a schedule.
        weight_decay_form: ``"l2"`` (default, g ← g + λθ), ``"decoupled"`` (θ ← θ(1 − ηλ)),
            ``"independent"`` (θ ← θ(1 − λ)).
        state_dtype: how the moments are stored (codecs.py): None (default) in the param's
            dtype, as torch; ``torch.float32``/``float64`` for all tensors;
            ``torch.bfloat16`` or ``torch.int8`` (8-bit blockwise codes with an fp32 scale
            per 256 elements, ~2 bytes per parameter for Adam) for tensors of 4096 elements
            or more, smaller ones keeping the param's dtype. ``optimizer.moment(p, key)``
            gives a moment as fp32 whatever its storage.
        preset: whose conventions and defaults to take: ``"torch"`` (default),
            ``"keras"`` (lr=0.01, lr_in_momentum=True, weight_decay_form="decoupled", as
            Keras 3 applies weight decay for every optimizer) or ``"optax"`` (torch's).
        engine: how to run the step, never its math (engines.py): ``"auto"`` (default:
            torch's fused kernel where the configuration is torch's, else a compiled kernel
            for groups of 2**20 elements or 100 tensors or more, else eager), ``"native"``,
            ``"compiled"`` (torch.compile of the same rule) or ``"reference"`` (eager).
        nonfinite: what a NaN or Inf gradient does: ``"ignore"`` (default, as torch.optim:
            it flows into params and state), ``"skip"`` (the whole step is skipped, nothing
            changes, ``optimizer.skipped_steps`` counts it) or ``"raise"``
            (FloatingPointError naming the parameter, before anything changes).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    rule = SGD_RULE
    specs = {**COMMON_SPECS, "momentum": UNIT, "dampening": Range(0.0, 1.0, closed=True),
             "nesterov": FLAG, "momentum_form": Choice(MOMENTUM_FORMS),
             "lr_in_momentum": FLAG}
    presets = {"torch": _SGD_TORCH,
               # keras.optimizers.SGD: m ← μm − ηg, θ ← θ + m (Nesterov: θ ← θ + μm − ηg)
               "keras": {**_SGD_TORCH, "lr": 1e-2, "lr_in_momentum": True,
                         "weight_decay_form": "decoupled"},
               # optax.sgd: trace(μ) then scale_by_learning_rate, i.e. torch's heavy ball
               "optax": _SGD_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 momentum: float | None = None, dampening: float | None = None,
                 weight_decay: float | Tensor | None = None, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None,
                 momentum_form: str | None = None, lr_in_momentum: bool | None = None,
                 weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                     nesterov=nesterov, maximize=maximize, foreach=foreach,
                     differentiable=differentiable, fused=fused, momentum_form=momentum_form,
                     lr_in_momentum=lr_in_momentum, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ArgumentError(f"{owner}: nesterov=True is invalid with momentum="
                                f"{group['momentum']!r}, dampening={group['dampening']!r}; "
                                "valid: momentum > 0 and dampening = 0")
        if group["momentum_form"] == "ema" and group["dampening"] != 0:
            raise ArgumentError(f"{owner}: dampening={group['dampening']!r} has no meaning with "
                                "momentum_form='ema' (its gradient weight is 1 - momentum); "
                                "valid: dampening=0")
