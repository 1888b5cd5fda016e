"""Adafactor: torch.optim.Adafactor's keywords and numbers, the paper's options
(rules.adafactor)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, ArgumentError, OptionalFirstPair, Range
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.rules.adafactor import ADAFACTOR_RULE

_ADAFACTOR_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "beta2_decay": -0.8, "eps": (None, 1e-3),
                    "d": 1.0, "weight_decay": 0.0, "weight_decay_form": "decoupled",
                    "beta1": 0.0, "relative_step": True, "scale_parameter": True}


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern 2018) — ``rules.adafactor``: a second moment factored
    into row and column means for every param of 2 dims or more, a step relative to the
    param's RMS, and update clipping.

        ρₜ = min(η, 1/√t) ;  αₜ = max(ε₂, RMS(θ))·ρₜ ;  β̂₂ₜ = 1 − t^τ
        R ← β̂₂ₜ R + (1 − β̂₂ₜ) mean(g², cols) ;  C ← β̂₂ₜ C + (1 − β̂₂ₜ) mean(g², rows)
        V̂ = R C / max(mean(R), ε₁) ;  U = g/√max(V̂, ε₁²) ;  θ ← θ(1 − ηλ) − αₜ U/max(1, RMS(U)/d)

    Args (torch.optim.Adafactor's ``lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
    weight_decay=0.0, *, foreach, maximize``; ε₁ None: the machine epsilon of the param's
    dtype), and the paper's options beyond them:
        beta1: the paper's first moment of the clipped update, m ← β₁m + (1 − β₁)Û, θ ←
            θ − αₜ m (default 0: off, as torch; state ``exp_avg`` when on).
        relative_step: ρₜ = min(η, 1/√t) (default True: torch's, and the paper's relative
            step with η = 10⁻²) or ρₜ = η (False: an absolute step, e.g. under a schedule).
        scale_parameter: αₜ = max(ε₂, RMS(θ))·ρₜ (default True, torch's) or αₜ = ρₜ.
        weight_decay_form: ``"decoupled"`` (default, torch's θ ← θ(1 − ηλ)), ``"l2"`` or
            ``"independent"``.
        state_dtype: None, fp32, fp64, bf16 or fp16 (the factored moments are R + C numbers
            per matrix already; 8-bit codes are refused), and differentiable, engine,
            nonfinite as for SGD. Complex params and sparse gradients are refused, as torch
            refuses them.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = Adafactor(model.parameters())
    """

    rule = ADAFACTOR_RULE
    specs = {**COMMON_SPECS, "beta2_decay": Range(-math.inf, 0.0, closed=True),
             "eps": OptionalFirstPair(NONNEGATIVE), "d": Range(1.0), "beta1": UNIT,
             "relative_step": FLAG, "scale_parameter": FLAG}
    presets = {"torch": _ADAFACTOR_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 beta2_decay: float | None = None,
                 eps: tuple[float | None, float] | None = None, d: float | None = None,
                 weight_decay: float | None = None, *, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False,
                 beta1: float | None = None, relative_step: bool | None = None,
                 scale_parameter: bool | None = None, weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     beta1=beta1, relative_step=relative_step,
                     scale_parameter=scale_parameter, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        if group["state_dtype"] == torch.int8:
            raise ArgumentError(f"{owner}: state_dtype=torch.int8 is refused: 8-bit block "
                                "codes assume a moment shaped like its param, and the "
                                "factored row_var/col_var are R + C numbers per matrix "
                                "already; valid: None, torch.float32, torch.float64, "
                                "torch.bfloat16 or torch.float16")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's refusal of complex params, at construction rather than at the step."""
        refuse_complex(type(self).__name__, param_group)
        super().add_param_group(param_group)


def refuse_complex(owner: str, param_group: Any) -> None:
    """A factored or matrix rule has no meaning on (re, im) pairs: refuse complex params
    with torch's words (the params list is checked, not consumed)."""
    if not isinstance(param_group, dict):
        return
    params = param_group.get("params")
    tensors = [params] if isinstance(params, Tensor) else params
    if isinstance(tensors, (list, tuple)) and any(
            isinstance(p, Tensor) and p.is_complex() for p in tensors):
        raise ArgumentError(f"{owner} does not support complex parameters; valid: real "
                            "floating-point params")
