"""Muon: torch.optim.Muon's keywords and numbers, Keller Jordan's as a preset, and AdamW
for the params Muon is not for, in one optimizer (rules.muon)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from optimlab.hyperparameters import FLAG, ArgumentError, Choice, Numbers, Range, Whole
from optimlab.optimizer import Optimizer
from optimlab.optimizers.adafactor import refuse_complex
from optimlab.optimizers.adam import AdamW
from optimlab.optimizers.common import COMMON_SPECS, NONNEGATIVE, TORCH_RUN_OPTIONS
from optimlab.rules.muon import ADJUST_LR_FNS, MUON_RULE, NEWTON_SCHULZ_FORMS, NS_DTYPES

#: torch.optim's and Keller Jordan's Newton–Schulz coefficients (a, b, c)
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
_MUON_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95,
               "nesterov": True, "ns_coefficients": NS_COEFFICIENTS, "eps": 1e-7,
               "ns_steps": 5, "adjust_lr_fn": None, "weight_decay_form": "decoupled",
               "newton_schulz": "torch", "ns_dtype": torch.bfloat16, "rule": "muon"}


class Muon(Optimizer):
    """Muon (Jordan et al. 2024) — ``rules.muon``: momentum orthogonalised by Newton–Schulz.

        B ← μB + (1 − μ)g ;  U = (1 − μ)g + μB (nesterov) ;  O = NS_k(U) in bf16
        θ ← θ(1 − ηλ) − η·r(A, B)·O,   r = √max(1, A/B)  (or 0.2·√max(A, B))

    For 2-D params only (hidden matrices): a group with ``rule="adamw"`` runs AdamW, with
    AdamW's keywords and torch's AdamW defaults, in the same optimizer (embeddings, head,
    biases, norms: ``optimlab.recipe(model, optimizer="muon")`` builds those groups).

    Args (torch.optim.Muon's ``lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
    ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None``;
    ``adjust_lr_fn`` None or ``"original"``: r = √max(1, A/B), ``"match_rms_adamw"``:
    r = 0.2·√max(A, B)), and beyond them:
        newton_schulz: ``"torch"`` (default: X₀ = U/max(‖U‖, ε), fused multiply-adds) or
            ``"keller"`` (X₀ = U/(‖U‖ + ε), each product rounded to bf16, r·O rounded to
            bf16: github.com/KellerJordan/Muon's ``muon_update``).
        ns_dtype: the dtype Newton–Schulz runs in: ``torch.bfloat16`` (default, torch's
            and Keller's), ``torch.float32`` or ``torch.float64`` (the exact equation,
            which the fp64 reference tests check).
        preset: ``"torch"`` (default) or ``"keller"`` (his Muon's defaults: lr=0.02,
            weight_decay=0, momentum=0.95, nesterov, 5 steps, his Newton–Schulz).
        A param group's ``rule`` key (not a keyword): ``"muon"`` (default) or ``"adamw"``.
        maximize, weight_decay_form (default ``"decoupled"``, torch's θ(1 − ηλ)),
        state_dtype, differentiable, engine, nonfinite: as for SGD.

    Example:
        >>> hidden = torch.nn.Linear(8, 8, bias=False)
        >>> opt = Muon(hidden.parameters(), lr=0.02)
    """

    rule = MUON_RULE
    specs = {**COMMON_SPECS, "momentum": NONNEGATIVE, "nesterov": FLAG,
             "ns_coefficients": Numbers(3, Range(-math.inf)), "eps": NONNEGATIVE,
             "ns_steps": Whole(0.0, 100.0), "adjust_lr_fn": Choice(ADJUST_LR_FNS),
             "newton_schulz": Choice(NEWTON_SCHULZ_FORMS), "ns_dtype": Choice(NS_DTYPES),
             "rule": Choice(("muon", "adamw"))}
    presets = {"torch": _MUON_TORCH,
               # KellerJordan/Muon muon.py: Muon(lr=0.02, weight_decay=0, momentum=0.95),
               # muon_update(nesterov=True, ns_steps=5), zeropower_via_newtonschulz5
               "keller": {**_MUON_TORCH, "lr": 0.02, "weight_decay": 0.0,
                          "newton_schulz": "keller"}}
    companions = {"adamw": AdamW}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 weight_decay: float | None = None, momentum: float | None = None,
                 nesterov: bool | None = None,
                 ns_coefficients: tuple[float, float, float] | None = None,
                 eps: float | None = None, ns_steps: int | None = None,
                 adjust_lr_fn: str | None = None, *, maximize: bool = False,
                 differentiable: bool = False, newton_schulz: str | None = None,
                 ns_dtype: torch.dtype | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                     ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
                     adjust_lr_fn=adjust_lr_fn, maximize=maximize,
                     differentiable=differentiable, newton_schulz=newton_schulz,
                     ns_dtype=ns_dtype,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """A Muon group takes 2-D params only (torch's check, in every group added, not
        only at construction); a group with ``rule="adamw"`` takes any."""
        owner = type(self).__name__
        refuse_complex(owner, param_group)
        if isinstance(param_group, dict) and param_group.get(
                "rule", self.defaults["rule"]) == "muon":
            params = param_group.get("params")
            tensors = [params] if isinstance(params, Tensor) else params
            for item in tensors if isinstance(tensors, (list, tuple)) else ():
                p = item[1] if isinstance(item, tuple) and len(item) == 2 else item  # named
                if isinstance(p, Tensor) and p.ndim != 2:
                    raise ArgumentError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {p.size()}; valid: 2-D params in a Muon group (a group with "
                        "rule='adamw' takes the others)")
        super().add_param_group(param_group)
