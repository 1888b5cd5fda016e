"""Adam and AdamW: one rule (rules.adam), AdamW its decoupled weight decay."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, Choice, Pair
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.optimizers.decoupled import DECOUPLED, DecoupledFlag, decay_keywords
from optimlab.rules import ADAM_EPS_PLACEMENTS, ADAM_RULE

_ADAM_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
               "weight_decay": 0.0, "amsgrad": False, "capturable": False,
               "decoupled_weight_decay": False, "bias_correction": True, "eps_root": 0.0,
               "eps_placement": "outside"}


class Adam(DecoupledFlag):
    """Adam with bias correction — ``rules.adam``.

        m ← β₁ m + (1 − β₁) g ;  v ← β₂ v + (1 − β₂) g²
        θ ← θ − η m̂ / (√(v̂ + ε_root) + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)

    ``weight_decay`` is L2 in the gradient (g ← g + λθ), the original Adam's decay that the
    seeds call broken (its effect per parameter shrinks as 1/√v̂); AdamW decouples it.

    Args (beyond torch.optim.Adam's ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0, amsgrad=False, foreach, maximize, capturable, differentiable, fused,
    decoupled_weight_decay=False``):
        bias_correction: divide m and v by 1 − βᵗ (default True). Without it the first
            step is not "tiny", as seed 002 says, but about (1 − β₁)/√(1 − β₂) ≈ 3.16 times
            larger: v is underestimated more than m.
        eps_root: ε_root, added inside the square root (optax's name; default 0).
        eps_placement: ``"outside"`` (default: √v̂ + ε), ``"inside"`` (√(v̂ + ε)) or
            ``"hat"`` (Keras: √v̂ + ε/√(1 − β₂ᵗ), i.e. ε added to √v before the bias
            correction).
        weight_decay_form: ``"l2"`` (Adam's default), ``"decoupled"`` (θ ← θ(1 − ηλ), what
            ``decoupled_weight_decay=True`` means) or ``"independent"`` (θ ← θ(1 − λ)).
        preset: ``"torch"`` (default); ``"keras"`` (eps=1e-7, eps_placement="hat",
            weight_decay_form="decoupled": Keras's Adam(weight_decay=λ) decays as AdamW
            does); ``"optax"`` (optax.adam's defaults are torch's).
        state_dtype, engine, nonfinite: as for SGD.
    """

    rule = ADAM_RULE
    specs = {**COMMON_SPECS, "betas": Pair(UNIT), "eps": NONNEGATIVE, "amsgrad": FLAG,
             "capturable": FLAG, "decoupled_weight_decay": FLAG, "bias_correction": FLAG,
             "eps_root": NONNEGATIVE, "eps_placement": Choice(ADAM_EPS_PLACEMENTS)}
    presets = {"torch": _ADAM_TORCH,
               # keras.optimizers.Adam: α_t = η√(1 − β₂ᵗ)/(1 − β₁ᵗ), θ ← θ − α_t m / (√v + ε)
               "keras": {**_ADAM_TORCH, "eps": 1e-7, "eps_placement": "hat", **DECOUPLED},
               # optax.adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0): torch's equation
               "optax": _ADAM_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float | Tensor, float | Tensor] | None = None,
                 eps: float | None = None, weight_decay: float | None = None,
                 amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool | None = None,
                 bias_correction: bool = True, eps_root: float | None = None,
                 eps_placement: str | None = None, weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        decoupled_weight_decay, weight_decay_form = decay_keywords(decoupled_weight_decay,
                                                                   weight_decay_form)
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                     foreach=foreach, maximize=maximize, capturable=capturable,
                     differentiable=differentiable, fused=fused,
                     decoupled_weight_decay=decoupled_weight_decay,
                     bias_correction=bias_correction, eps_root=eps_root,
                     eps_placement=eps_placement, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter) — ``rules.adam``.

        θ ← θ·(1 − ηλ) − η m̂ / (√v̂ + ε)

    The decay acts on every parameter alike, whatever its gradient history. With
    ``weight_decay_form="independent"`` it is θ ← θ·(1 − λ), fixed while the lr follows a
    schedule. Takes torch.optim.AdamW's keywords (``weight_decay=1e-2``) and Adam's options.

    Presets: ``"torch"`` (weight_decay=1e-2), ``"keras"`` (Adam's Keras preset with
    weight_decay=0.004), ``"optax"`` (torch's equation with weight_decay=1e-4, optax.adamw's
    default; optax multiplies the decay by the lr, as torch does).
    """

    presets = {"torch": {**Adam.presets["torch"], **DECOUPLED, "weight_decay": 1e-2},
               "keras": {**Adam.presets["keras"], "weight_decay": 4e-3},
               "optax": {**Adam.presets["optax"], **DECOUPLED, "weight_decay": 1e-4}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float | Tensor, float | Tensor] | None = None,
                 eps: float | None = None, weight_decay: float | None = None,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, bias_correction: bool = True,
                 eps_root: float | None = None, eps_placement: str | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=None, bias_correction=bias_correction,
                         eps_root=eps_root, eps_placement=eps_placement,
                         weight_decay_form=weight_decay_form, state_dtype=state_dtype,
                         preset=preset, engine=engine, nonfinite=nonfinite)
