"""NAdam and RAdam (rules.nadam, rules.radam): Adam's relatives that torch gives
``decoupled_weight_decay``, so that NAdamW and RAdamW are one keyword."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, Choice, Pair, Range
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.optimizers.decoupled import DECOUPLED, DecoupledFlag, decay_keywords
from optimlab.rules import MOMENTUM_SCHEDULES, NADAM_RULE, RADAM_EPS_PLACEMENTS, RADAM_RULE

_NADAM_TORCH = {**TORCH_RUN_OPTIONS, "lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                "weight_decay": 0.0, "momentum_decay": 4e-3, "decoupled_weight_decay": False,
                "capturable": False, "momentum_schedule": "dozat"}
_RADAM_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                "weight_decay": 0.0, "decoupled_weight_decay": False, "capturable": False,
                "threshold": 5.0, "eps_placement": "hat"}


class NAdam(DecoupledFlag):
    """NAdam — ``rules.nadam``: Adam with Nesterov momentum (Dozat 2016).

        m̂ = μ_{t+1} m / (1 − Π_{t+1}) + (1 − μ_t) g / (1 − Π_t) ;  θ ← θ − η m̂ / (√v̂ + ε)

    with μ_t = β₁ (1 − ½ · 0.96^{tψ}) and Π_t = μ₁ ··· μ_t (kept per parameter as torch
    keeps it, ``state["mu_product"]``).

    Args (torch.optim.NAdam's ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    momentum_decay=4e-3, decoupled_weight_decay=False, foreach, maximize, capturable,
    differentiable``; ``decoupled_weight_decay=True`` is NAdamW), and:
        momentum_schedule: ``"dozat"`` (default: torch, Keras) or ``"constant"``
            (μ_t = β₁, so Π_t = β₁ᵗ: optax's ``nadam``).
        weight_decay_form: ``"l2"``, ``"decoupled"`` (θ ← θ(1 − ηλ), what
            ``decoupled_weight_decay=True`` means) or ``"independent"`` (θ ← θ(1 − λ)).
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, eps=1e-7, momentum_decay=1:
            Keras's μ_t = β₁(1 − ½·0.96ᵗ); its weight decay decoupled); ``"optax"``
            (momentum_schedule="constant", torch's numbers otherwise).
        state_dtype, engine, nonfinite: as for SGD.
    """

    rule = NADAM_RULE
    specs = {**COMMON_SPECS, "betas": Pair(UNIT), "eps": NONNEGATIVE,
             "momentum_decay": NONNEGATIVE, "decoupled_weight_decay": FLAG,
             "capturable": FLAG, "momentum_schedule": Choice(MOMENTUM_SCHEDULES)}
    presets = {"torch": _NADAM_TORCH,
               # keras.optimizers.Nadam(learning_rate=1e-3, epsilon=1e-7): u_t with 0.96^t
               "keras": {**_NADAM_TORCH, "lr": 1e-3, "eps": 1e-7, "momentum_decay": 1.0,
                         **DECOUPLED},
               # optax.nadam = adam(nesterov=True): μ_t = β₁, bias corrections 1 − β₁ᵗ
               "optax": {**_NADAM_TORCH, "momentum_schedule": "constant"}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None, momentum_decay: float | None = None,
                 decoupled_weight_decay: bool | None = None, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, momentum_schedule: str | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        decoupled_weight_decay, weight_decay_form = decay_keywords(decoupled_weight_decay,
                                                                   weight_decay_form)
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                     momentum_decay=momentum_decay,
                     decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                     maximize=maximize, capturable=capturable, differentiable=differentiable,
                     momentum_schedule=momentum_schedule, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)


class RAdam(DecoupledFlag):
    """RAdam — ``rules.radam``: Adam, rectified (Liu et al. 2019).

        ρ_t > 5:  θ ← θ − η r_t m̂ √(1 − β₂ᵗ) / (√v + ε)      otherwise θ ← θ − η m̂

    Args (torch.optim.RAdam's ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    decoupled_weight_decay=False, foreach, maximize, capturable, differentiable``;
    ``decoupled_weight_decay=True`` is RAdamW), and:
        threshold: ρ_min, the length of the approximated SMA above which the adaptive,
            rectified step is taken (default 5, torch and optax; >= 4, where r_t is real).
        eps_placement: ``"hat"`` (default, torch: ε added to √v before the bias
            correction) or ``"outside"`` (optax: √v̂ + ε).
        weight_decay_form: as for NAdam.
        preset: ``"torch"`` (default) or ``"optax"`` (optax.radam: eps_placement="outside";
            it switches at ρ_t >= 5 where torch does at ρ_t > 5, which differ only if
            ρ_t is exactly 5).
        state_dtype, engine, nonfinite: as for SGD.
    """

    rule = RADAM_RULE
    specs = {**COMMON_SPECS, "betas": Pair(UNIT), "eps": NONNEGATIVE,
             "decoupled_weight_decay": FLAG, "capturable": FLAG, "threshold": Range(4.0),
             "eps_placement": Choice(RADAM_EPS_PLACEMENTS)}
    presets = {"torch": _RADAM_TORCH,
               # optax.radam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0, threshold=5)
               "optax": {**_RADAM_TORCH, "eps_placement": "outside"}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None,
                 decoupled_weight_decay: bool | None = None, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, threshold: float | None = None,
                 eps_placement: str | None = None, weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        decoupled_weight_decay, weight_decay_form = decay_keywords(decoupled_weight_decay,
                                                                   weight_decay_form)
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                     decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                     maximize=maximize, capturable=capturable, differentiable=differentiable,
                     threshold=threshold, eps_placement=eps_placement,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
