"""RMSprop, optionally centered and with momentum (rules.rmsprop)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, Choice
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.rules import EPS_PLACEMENTS, RMSPROP_RULE

_RMSPROP_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "alpha": 0.99, "eps": 1e-8,
                  "weight_decay": 0.0, "momentum": 0.0, "centered": False, "capturable": False,
                  "eps_placement": "outside", "lr_in_momentum": False,
                  "initial_accumulator_value": 0.0}
# the TensorFlow family (Keras, optax, timm's RMSpropTF): ε inside the root, the lr applied
# before the momentum buffer, α = 0.9
_RMSPROP_TF = {**_RMSPROP_TORCH, "alpha": 0.9, "eps_placement": "inside",
               "lr_in_momentum": True}


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum — ``rules.rmsprop``.

        E[g²] ← α E[g²] + (1 − α) g² ;   θ ← θ − η g / (√E[g²] + ε)

    Args (beyond torch.optim.RMSprop's ``lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
    momentum=0, centered=False, capturable, foreach, maximize, differentiable``):
        eps_placement: ``"outside"`` (default; torch, seeds 001/003: √s + ε) or
            ``"inside"`` (seed 000, TensorFlow: √(s + ε)).
        lr_in_momentum: False (torch: b ← μb + g/r, θ ← θ − ηb) or True (Keras/TF, optax,
            timm: b ← μb + ηg/r, θ ← θ − b). The same path at a constant lr only.
        initial_accumulator_value: E[g²]₀ (default 0; timm's RMSpropTF starts at 1).
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, alpha=0.9, eps=1e-7,
            eps_placement="inside", lr_in_momentum=True, weight_decay_form="decoupled");
            ``"optax"`` (alpha=0.9, eps=1e-8, eps_placement="inside", lr_in_momentum=True);
            ``"timm_tf"`` (alpha=0.9, eps=1e-10, eps_placement="inside",
            initial_accumulator_value=1, lr_in_momentum=True).
        weight_decay_form, state_dtype, engine, nonfinite: as for SGD.
    """

    rule = RMSPROP_RULE
    specs = {**COMMON_SPECS, "alpha": UNIT, "eps": NONNEGATIVE, "momentum": UNIT,
             "centered": FLAG, "capturable": FLAG, "eps_placement": Choice(EPS_PLACEMENTS),
             "lr_in_momentum": FLAG, "initial_accumulator_value": NONNEGATIVE}
    presets = {"torch": _RMSPROP_TORCH,
               # keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-7)
               "keras": {**_RMSPROP_TF, "lr": 1e-3, "eps": 1e-7,
                         "weight_decay_form": "decoupled"},
               # optax.rmsprop(decay=0.9, eps=1e-8, eps_in_sqrt=True, initial_scale=0)
               "optax": {**_RMSPROP_TF, "eps": 1e-8},
               # timm.optim.RMSpropTF(lr=1e-2, alpha=0.9, eps=1e-10): square_avg starts at 1
               "timm_tf": {**_RMSPROP_TF, "eps": 1e-10, "initial_accumulator_value": 1.0}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 alpha: float | None = None, eps: float | None = None,
                 weight_decay: float | None = None, momentum: float | None = None,
                 centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, *, eps_placement: str | None = None,
                 lr_in_momentum: bool | None = None,
                 initial_accumulator_value: float | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                     centered=centered, capturable=capturable, foreach=foreach,
                     maximize=maximize, differentiable=differentiable,
                     eps_placement=eps_placement, lr_in_momentum=lr_in_momentum,
                     initial_accumulator_value=initial_accumulator_value,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
