"""Adamax and Adadelta (rules.adamax, rules.adadelta)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, Choice, Pair, Range
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.rules import ADADELTA_RULE, ADAMAX_EPS_PLACEMENTS, ADAMAX_RULE

FLAGS = {"capturable": FLAG}
_ADAMAX_TORCH = {**TORCH_RUN_OPTIONS, "lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                 "weight_decay": 0.0, "capturable": False, "eps_placement": "max"}
_ADADELTA_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1.0, "rho": 0.9, "eps": 1e-6,
                   "weight_decay": 0.0, "capturable": False}


class Adamax(Optimizer):
    """Adamax — ``rules.adamax``: Adam with the infinity norm (Kingma & Ba 2014, 7.1).

        m ← β₁ m + (1 − β₁) g ;  u ← max(β₂ u, |g| + ε) ;  θ ← θ − η/(1 − β₁ᵗ) · m / u

    Args (torch.optim.Adamax's ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    foreach, maximize, differentiable, capturable``), and:
        eps_placement: ``"max"`` (default: torch, optax: ε inside the max) or
            ``"outside"`` (Keras: u ← max(β₂ u, |g|), θ ← θ − η/(1 − β₁ᵗ) · m / (u + ε)).
        weight_decay_form: ``"l2"`` (torch), ``"decoupled"`` or ``"independent"``.
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, eps=1e-7,
            eps_placement="outside", decoupled weight decay); ``"optax"`` (optax.adamax:
            torch's equation and numbers).
        state_dtype, engine, nonfinite: as for SGD.
    """

    rule = ADAMAX_RULE
    specs = {**COMMON_SPECS, **FLAGS, "betas": Pair(UNIT), "eps": NONNEGATIVE,
             "eps_placement": Choice(ADAMAX_EPS_PLACEMENTS)}
    presets = {"torch": _ADAMAX_TORCH,
               # keras.optimizers.Adamax(learning_rate=1e-3, epsilon=1e-7)
               "keras": {**_ADAMAX_TORCH, "lr": 1e-3, "eps": 1e-7, "eps_placement": "outside",
                         "weight_decay_form": "decoupled"},
               # optax.adamax(b1=0.9, b2=0.999, eps=1e-8): max(β₂ u, |g| + ε)
               "optax": _ADAMAX_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False, eps_placement: str | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
                     maximize=maximize, differentiable=differentiable, capturable=capturable,
                     eps_placement=eps_placement, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)


class Adadelta(Optimizer):
    """Adadelta — ``rules.adadelta`` (Zeiler 2012).

        E[g²] ← ρ E[g²] + (1 − ρ) g² ;  Δ = √(E[Δx²] + ε) / √(E[g²] + ε) · g
        E[Δx²] ← ρ E[Δx²] + (1 − ρ) Δ² ;  θ ← θ − η Δ

    Args (torch.optim.Adadelta's ``lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach,
    capturable, maximize, differentiable``), and:
        weight_decay_form: ``"l2"`` (torch), ``"decoupled"`` or ``"independent"``.
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, rho=0.95, eps=1e-7, decoupled
            weight decay); ``"optax"`` (optax.adadelta: torch's numbers). All three put ε
            inside both roots, as the paper does: no placement to choose.
        state_dtype, engine, nonfinite: as for SGD.
    """

    rule = ADADELTA_RULE
    specs = {**COMMON_SPECS, **FLAGS, "rho": Range(0.0, 1.0, closed=True),
             "eps": NONNEGATIVE}
    presets = {"torch": _ADADELTA_TORCH,
               # keras.optimizers.Adadelta(learning_rate=1e-3, rho=0.95, epsilon=1e-7)
               "keras": {**_ADADELTA_TORCH, "lr": 1e-3, "rho": 0.95, "eps": 1e-7,
                         "weight_decay_form": "decoupled"},
               # optax.adadelta(rho=0.9, eps=1e-6)
               "optax": _ADADELTA_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None, rho: float | None = None,
                 eps: float | None = None, weight_decay: float | None = None,
                 foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                     capturable=capturable, maximize=maximize, differentiable=differentiable,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
