"""LAMB (rules.lamb): timm.optim.Lamb's keywords and defaults, optax.lamb as a preset."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, Choice, Optional_, Pair, Range
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS, UNIT
from optimlab.rules.lamb import LAMB_DECAY_FORMS, LAMB_RULE

_LAMB_TIMM = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "bias_correction": True, "betas": (0.9, 0.999),
              "eps": 1e-6, "weight_decay": 0.01, "grad_averaging": True, "max_grad_norm": 1.0,
              "trust_clip": False, "always_adapt": False, "decoupled_decay": False,
              "weight_decay_form": "update"}
# optax.lamb: scale_by_adam, add_decayed_weights (into the update), scale_by_trust_ratio
# (always), no clip of the global norm, weight_decay=0
_LAMB_OPTAX = {**_LAMB_TIMM, "weight_decay": 0.0, "max_grad_norm": None, "always_adapt": True}
_PRESET: Any = object()  # max_grad_norm left to the preset (None is a value: no clip)


class Lamb(Optimizer):
    """LAMB — ``rules.lamb``: Adam's step per tensor rescaled by ‖θ‖/‖u‖, the gradients
    first divided by max(1, ‖G‖/max_grad_norm) over the whole optimizer.

    Args, as ``timm.optim.Lamb`` takes them (``lr=1e-3, bias_correction=True,
    betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, grad_averaging=True,
    max_grad_norm=1.0, trust_clip=False, always_adapt=False, decoupled_decay=False``,
    ``foreach``): ``max_grad_norm=None`` turns the clip off; ``decoupled_decay=True`` is
    ``weight_decay_form="decoupled"``.
        weight_decay_form: ``"update"`` (default: u ← u + λθ before the trust ratio, the
            paper's), ``"decoupled"`` (θ ← θ(1 − ηλ) first), ``"independent"``
            (θ ← θ(1 − λ) first) or ``"l2"`` (λθ added to g).
        preset: ``"torch"`` and ``"timm"`` (timm's defaults), ``"optax"`` (optax.lamb:
            weight_decay=0, no global clip, the trust ratio always applied).
        maximize, state_dtype, engine, nonfinite: as for SGD.

    The clip reads every gradient of the optimizer (timm's ``_get_clip_grad_norm``) and
    leaves ``p.grad`` unchanged. The step counter is kept per parameter, as torch's Adam
    keeps it, and mirrored in each group's ``step`` where timm keeps it, so that a
    checkpoint loads both ways.
    """

    rule = LAMB_RULE
    specs = {**COMMON_SPECS, "weight_decay_form": Choice(LAMB_DECAY_FORMS),
             "betas": Pair(UNIT), "eps": NONNEGATIVE, "bias_correction": FLAG,
             "grad_averaging": FLAG, "max_grad_norm": Optional_(Range(0.0)),
             "trust_clip": FLAG, "always_adapt": FLAG, "decoupled_decay": FLAG}
    presets = {"torch": _LAMB_TIMM, "timm": _LAMB_TIMM, "optax": _LAMB_OPTAX}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 bias_correction: bool | None = None, betas: tuple[float, float] | None = None,
                 eps: float | None = None, weight_decay: float | None = None,
                 grad_averaging: bool | None = None, max_grad_norm: float | None = _PRESET,
                 trust_clip: bool | None = None, always_adapt: bool | None = None,
                 decoupled_decay: bool | None = None, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        if decoupled_decay and weight_decay_form is None:
            weight_decay_form = "decoupled"
        given = dict(lr=lr, bias_correction=bias_correction, betas=betas, eps=eps,
                     weight_decay=weight_decay, grad_averaging=grad_averaging,
                     trust_clip=trust_clip, always_adapt=always_adapt,
                     decoupled_decay=decoupled_decay, foreach=foreach, maximize=maximize,
                     differentiable=differentiable, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        if max_grad_norm is not _PRESET:
            # None is a value here (no clip), which the base class would read as unset
            self.presets = {name: {**values, "max_grad_norm": max_grad_norm}
                            for name, values in self.presets.items()}
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def normalize_group(self, group: dict[str, Any]) -> None:
        """timm's ``decoupled_decay`` flag and our form say the same thing."""
        super().normalize_group(group)
        group["decoupled_decay"] = group["weight_decay_form"] == "decoupled"

    def step(self, closure: Any = None) -> Any:
        loss = super().step(closure)
        for group in self.param_groups:
            counters = [self.state[p]["step"] for p in group["params"]
                        if "step" in self.state.get(p, {})]
            if counters:
                group["step"] = torch.stack(counters).max()
        return loss

    def _restore(self, loaded: Any) -> None:
        """A timm checkpoint keeps the step in the group, not per parameter."""
        super()._restore(loaded)
        for group in self.param_groups:
            for param in group["params"]:
                entry = self.state.get(param)
                if entry and "step" not in entry and "step" in group:
                    entry["step"] = torch.as_tensor(group["step"], dtype=torch.float32).clone()
