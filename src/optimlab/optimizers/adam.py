"""Adam and AdamW: one rule (rules.adam), AdamW its decoupled weight decay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, ArgumentError, Choice, Pair
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.rules import ADAM_EPS_PLACEMENTS, ADAM_RULE

_ADAM_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
               "weight_decay": 0.0, "amsgrad": False, "capturable": False,
               "decoupled_weight_decay": False, "bias_correction": True, "eps_root": 0.0,
               "eps_placement": "outside"}
_DECOUPLED = {"weight_decay_form": "decoupled", "decoupled_weight_decay": True}


class Adam(Optimizer):
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
               "keras": {**_ADAM_TORCH, "eps": 1e-7, "eps_placement": "hat", **_DECOUPLED},
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
        # whichever of torch's flag and our form is given decides the other, over the preset
        if decoupled_weight_decay is None and weight_decay_form is not None:
            decoupled_weight_decay = weight_decay_form != "l2"
        elif decoupled_weight_decay is not None and weight_decay_form is None:
            weight_decay_form = "decoupled" if decoupled_weight_decay else "l2"
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                     foreach=foreach, maximize=maximize, capturable=capturable,
                     differentiable=differentiable, fused=fused,
                     decoupled_weight_decay=decoupled_weight_decay,
                     bias_correction=bias_correction, eps_root=eps_root,
                     eps_placement=eps_placement, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        if group["decoupled_weight_decay"] and group["weight_decay_form"] == "l2":
            raise ArgumentError(f"{owner}: decoupled_weight_decay=True contradicts "
                                "weight_decay_form='l2'; valid: weight_decay_form "
                                "'decoupled' or 'independent'")

    def normalize_group(self, group: dict[str, Any]) -> None:
        """Keep torch's ``decoupled_weight_decay`` and our ``weight_decay_form`` saying the
        same thing, whichever of them was written since the last step: torch.optim code
        flips the flag (follow it), ours sets the form (the flag follows, so that our
        checkpoints mean the same thing to torch.optim)."""
        flag, form = bool(group["decoupled_weight_decay"]), group["weight_decay_form"]
        seen = self.__dict__.setdefault("_decay_seen", {}).get(id(group))
        if seen is not None and flag != seen[0] and form == seen[1]:
            form = group["weight_decay_form"] = "decoupled" if flag else "l2"
        group["decoupled_weight_decay"] = form != "l2"
        self._decay_seen[id(group)] = (form != "l2", form)

    def complete_group(self, group: dict[str, Any]) -> None:
        """A group may say how to decay in torch's words (decoupled_weight_decay) or ours
        (weight_decay_form); derive the one it lacks from the one it has."""
        has_form, has_flag = "weight_decay_form" in group, "decoupled_weight_decay" in group
        if has_form and not has_flag:
            group["decoupled_weight_decay"] = group["weight_decay_form"] != "l2"
        elif has_flag and not has_form:
            ours = self.defaults["weight_decay_form"]
            if (ours != "l2") != bool(group["decoupled_weight_decay"]):
                ours = "decoupled" if group["decoupled_weight_decay"] else "l2"
            group["weight_decay_form"] = ours
        super().complete_group(group)


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

    presets = {"torch": {**Adam.presets["torch"], **_DECOUPLED, "weight_decay": 1e-2},
               "keras": {**Adam.presets["keras"], "weight_decay": 4e-3},
               "optax": {**Adam.presets["optax"], **_DECOUPLED, "weight_decay": 1e-4}}

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
