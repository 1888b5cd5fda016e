"""AdaGrad (rules.adagrad)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab import state
from optimlab.hyperparameters import Choice
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS
from optimlab.rules import ADAGRAD_RULE, EPS_PLACEMENTS

_ADAGRAD_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                  "initial_accumulator_value": 0.0, "eps": 1e-10, "eps_placement": "outside"}
# keras.optimizers.Adagrad and optax.adagrad (scale_by_rss) alike: G₀ = 0.1, g / √(G + 1e-7)
_ADAGRAD_TF = {**_ADAGRAD_TORCH, "initial_accumulator_value": 0.1, "eps": 1e-7,
               "eps_placement": "inside"}


class Adagrad(Optimizer):
    """AdaGrad — ``rules.adagrad``.

        G ← G + g² ;   θ ← θ − η_t g / (√G + ε)    with η_t = η / (1 + (t − 1)·lr_decay)

    Args (beyond torch.optim.Adagrad's ``lr=1e-2, lr_decay=0, weight_decay=0,
    initial_accumulator_value=0, eps=1e-10, foreach, maximize, differentiable, fused``):
        eps_placement: ``"outside"`` (default, torch: √G + ε) or ``"inside"``
            (seed 002, Keras, optax: √(G + ε)).
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, initial_accumulator_value=0.1,
            eps=1e-7, eps_placement="inside", weight_decay_form="decoupled"); ``"optax"``
            (initial_accumulator_value=0.1, eps=1e-7, eps_placement="inside").
        weight_decay_form, state_dtype, engine, nonfinite: as for SGD.

    Sparse gradients are taken as torch takes them; with no weight decay only the rows a
    sparse gradient touches are updated.
    """

    rule = ADAGRAD_RULE
    specs = {**COMMON_SPECS, "lr_decay": NONNEGATIVE, "initial_accumulator_value": NONNEGATIVE,
             "eps": NONNEGATIVE, "eps_placement": Choice(EPS_PLACEMENTS)}
    presets = {"torch": _ADAGRAD_TORCH,
               "keras": {**_ADAGRAD_TF, "lr": 1e-3, "weight_decay_form": "decoupled"},
               "optax": _ADAGRAD_TF}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 lr_decay: float | None = None, weight_decay: float | None = None,
                 initial_accumulator_value: float | None = None, eps: float | None = None,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 eps_placement: str | None = None, weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                     initial_accumulator_value=initial_accumulator_value, eps=eps,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     fused=fused, eps_placement=eps_placement,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
        # torch.optim.Adagrad creates its state at construction; so do we, so that a
        # checkpoint taken before the first step loads into torch.optim.Adagrad too.
        for group in self.param_groups:
            for param in group["params"]:
                state.prepare(self.view(group), param, self.state[param])
