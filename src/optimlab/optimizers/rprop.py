"""Rprop and ASGD (rules.rprop, rules.asgd): torch.optim's two that are neither Adam's
nor SGD's relatives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, ArgumentError, Pair
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS
from optimlab.rules import ASGD_RULE, RPROP_RULE

_RPROP_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50),
                "capturable": False, "weight_decay": 0.0}
_ASGD_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6,
               "weight_decay": 0.0, "capturable": False}


class Rprop(Optimizer):
    """Rprop — ``rules.rprop`` (Riedmiller & Braun 1993; torch's iRprop⁻).

        Δ ← clamp(Δ · η^±, Δ_min, Δ_max) by the sign of g · g_prev ;  θ ← θ − sign(g) Δ

    Args (torch.optim.Rprop's ``lr=1e-2`` (the initial Δ), ``etas=(0.5, 1.2)`` (η⁻, η⁺;
    0 < η⁻ < 1 < η⁺), ``step_sizes=(1e-6, 50)`` (Δ_min, Δ_max), ``capturable, foreach,
    maximize, differentiable``), and:
        weight_decay: λ (default 0; torch's Rprop has none), in ``weight_decay_form``
            (``"l2"``: only its sign reaches the step, as the gradient's does).
        preset: ``"torch"`` (default; the paper's numbers but Δ₀ = 0.1: lr=0.1).
        state_dtype, engine, nonfinite: as for SGD.
    """

    rule = RPROP_RULE
    specs = {**COMMON_SPECS, "capturable": FLAG, "etas": Pair(NONNEGATIVE),
             "step_sizes": Pair(NONNEGATIVE)}
    presets = {"torch": _RPROP_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 etas: tuple[float, float] | None = None,
                 step_sizes: tuple[float, float] | None = None, *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, weight_decay: float | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, etas=etas, step_sizes=step_sizes, capturable=capturable,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     weight_decay=weight_decay, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        minus, plus = (float(eta) for eta in group["etas"])
        if not 0.0 < minus < 1.0 < plus:
            raise ArgumentError(f"{owner}: etas={tuple(group['etas'])!r} is invalid; valid: "
                                "0 < etas[0] < 1 < etas[1] (a step shrinks on a sign flip "
                                "and grows while the sign holds)")
        low, high = (float(size) for size in group["step_sizes"])
        if low > high:
            raise ArgumentError(f"{owner}: step_sizes={tuple(group['step_sizes'])!r} is "
                                "invalid; valid: step_sizes[0] <= step_sizes[1] (min, max)")


class ASGD(Optimizer):
    """ASGD — ``rules.asgd``: SGD with a decaying step, and the average of its iterates.

        θ ← θ (1 − λ η_t) − η_t g ;   ax ← μ_t θ + (1 − μ_t) ax
        η_{t+1} = η / (1 + λ η t)^α ;   μ_{t+1} = 1 / max(1, t − t₀)

    η_t and μ_t are kept per parameter as torch keeps them (``state["eta"]``,
    ``state["mu"]``; η_t follows an lr schedule one step late, as torch's does). The
    average is ``optimizer.state[p]["ax"]``.

    Args (torch.optim.ASGD's ``lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
    foreach, maximize, differentiable, capturable``), and weight_decay_form,
    state_dtype, engine, nonfinite as for SGD.
    """

    rule = ASGD_RULE
    specs = {**COMMON_SPECS, "capturable": FLAG, "lambd": NONNEGATIVE, "alpha": NONNEGATIVE,
             "t0": NONNEGATIVE}
    presets = {"torch": _ASGD_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 lambd: float | None = None, alpha: float | None = None,
                 t0: float | None = None, weight_decay: float | None = None,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False, *,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     capturable=capturable, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
