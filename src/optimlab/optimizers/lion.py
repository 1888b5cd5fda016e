"""Lion (rules.lion): timm's and lion-pytorch's keywords, optax's defaults as a preset."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import Pair, Range
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, TORCH_RUN_OPTIONS
from optimlab.rules.lion import LION_RULE

_LION = {**TORCH_RUN_OPTIONS, "lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0,
         "weight_decay_form": "decoupled"}


class Lion(Optimizer):
    """Lion — ``rules.lion``: θ ← θ − η sign(β₁ m + (1 − β₁) g), m ← β₂ m + (1 − β₂) g.

    Args, as ``timm.optim.Lion`` and ``lion_pytorch.Lion`` take them (``lr=1e-4,
    betas=(0.9, 0.99), weight_decay=0``; timm's ``maximize``, ``foreach``):
        weight_decay_form: ``"decoupled"`` (default: θ ← θ(1 − ηλ), the paper's, timm's,
            lion-pytorch's and optax's), ``"independent"`` (θ ← θ(1 − λ): lion-pytorch's
            ``decoupled_weight_decay=True`` while the lr stays at its initial value) or
            ``"l2"`` (λθ added to g, inside the sign).
        preset: ``"torch"`` (default; timm's and lion-pytorch's numbers), ``"timm"`` (the
            same), ``"optax"`` (optax.lion: weight_decay=1e-3).
        state_dtype, engine, nonfinite: as for SGD.

    Lion keeps one moment, ``exp_avg`` (timm's and lion-pytorch's name), and no step
    counter, so their checkpoints load both ways. Its update has the same size η for every
    element, so its good lr is 3-10x smaller than AdamW's and its λ 3-10x larger.
    """

    rule = LION_RULE
    specs = {**COMMON_SPECS, "betas": Pair(Range(0.0, 1.0, closed=True))}
    presets = {"torch": _LION, "timm": _LION, "optax": {**_LION, "weight_decay": 1e-3}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float, float] | None = None, weight_decay: float | None = None,
                 *, maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                     foreach=foreach, differentiable=differentiable,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
