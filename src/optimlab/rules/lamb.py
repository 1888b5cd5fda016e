"""LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT in
76 minutes"): Adam's direction rescaled per tensor by a trust ratio ‖θ‖/‖u‖, after a clip
of the global gradient norm. Per-tensor and global: the reference engine runs it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.rules.base import GLOBAL, Hyper, Rule, State, direction

#: where λθ enters: the update before the trust ratio (the paper's and timm's), the
#: gradient (L2), or θ itself beforehand (timm's ``decoupled_decay``; lr-independent)
LAMB_DECAY_FORMS = ("update", "l2", "decoupled", "independent")


def lamb(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """LAMB, as the paper's Algorithm 2 and timm.optim.Lamb write it:

        g ← g / c,  c = max(1, ‖G‖ / max_grad_norm)   (‖G‖: the norm of every gradient of
                                                      the optimizer; c = 1 without a max)
        m ← β₁ m + β₃ g ,  β₃ = 1 − β₁ (``grad_averaging``) or 1
        v ← β₂ v + (1 − β₂) g²
        u = m̂ / (√v̂ + ε) ,  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)  (1 and 1 without
                                                                  ``bias_correction``)
        u ← u + λθ                         (``weight_decay_form="update"``: the paper's)
        r = ‖θ‖ / ‖u‖ (1 where either is 0; min(r, 1) with ``trust_clip``), applied when
            λ ≠ 0 or ``always_adapt``, else r = 1
        θ ← θ − η r u

    ``"l2"`` adds λθ to g instead; ``"decoupled"`` takes θ ← θ(1 − ηλ) first (timm's
    ``decoupled_decay``), ``"independent"`` θ ← θ(1 − λ); both then measure ‖θ‖ after it.

    Symbols: θ=param, g=grad, m=state["exp_avg"], v=state["exp_avg_sq"], η=lr, ε=eps,
    λ=weight_decay; c arrives as ``hp["grad_divisor"]`` (``lamb_global``), 1 − βᵗ as
    ``hp["bias_correction1"]``, ``hp["bias_correction2"]``.
    """
    g = direction(grad, hp) / hp["grad_divisor"]
    form, lam = hp["weight_decay_form"], hp["weight_decay"]
    if form == "l2":
        g = g + lam * param
    elif form == "decoupled":
        param = param * (1 - hp["lr"] * lam)
    elif form == "independent":
        param = param * (1 - lam)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    beta3 = 1 - beta1 if hp["grad_averaging"] else 1.0
    exp_avg = beta1 * state["exp_avg"] + beta3 * g
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    update = (exp_avg / hp["bias_correction1"]) / (
        torch.sqrt(exp_avg_sq) / hp["bias_correction2"] ** 0.5 + hp["eps"])
    if form == "update":
        update = update + lam * param
    # a selection, not a branch: compiled code receives λ as a 0-d tensor, whose value
    # a traced graph cannot branch on (r = 1 when not adapting: u · 1 is u exactly)
    adapts = (lam != 0) | hp["always_adapt"]
    update = update * _trust_ratio(param, update, hp["trust_clip"], adapts)
    return param - hp["lr"] * update, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def _trust_ratio(param: Tensor, update: Tensor, clip: bool, adapts: bool | Tensor) -> Tensor:
    """‖θ‖/‖u‖ where ``adapts``; 1 where not, or where either norm is 0 (a fresh
    zero-initialised bias, a zero update)."""
    weight_norm, update_norm = torch.linalg.vector_norm(param), torch.linalg.vector_norm(update)
    ratio = torch.where(adapts & (weight_norm > 0) & (update_norm > 0),
                        weight_norm / update_norm, torch.ones_like(weight_norm))
    return ratio.clamp(max=1.0) if clip else ratio


def lamb_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """1 − β₁ᵗ and 1 − β₂ᵗ, or 1 and 1 without bias correction."""
    if not hp["bias_correction"]:
        return {"bias_correction1": 1.0, "bias_correction2": 1.0}
    return {"bias_correction1": 1 - hp["beta1"] ** step,
            "bias_correction2": 1 - hp["beta2"] ** step}


def lamb_global(defaults: Mapping[str, Any], grads: Sequence[Tensor]) -> dict[str, Any]:
    """c = max(1, ‖G‖/max_grad_norm) over every gradient of the optimizer (timm reads the
    optimizer's ``max_grad_norm``); 1 when it is None."""
    max_norm = defaults.get("max_grad_norm")
    if max_norm is None:
        return {"grad_divisor": 1.0}
    norms = torch._foreach_norm([g.to_dense() if g.is_sparse else g for g in grads])
    total = torch.linalg.vector_norm(torch.stack(
        [n.to(torch.promote_types(n.dtype, torch.float32)) for n in norms]))
    if total.device.type == "meta":  # no values to clip by (deferred initialisation)
        return {"grad_divisor": 1.0}
    return {"grad_divisor": float((total / max_norm).clamp(min=1.0))}


LAMB_RULE = Rule(
    "lamb",
    lamb,
    numbers=("lr", "weight_decay", "beta1", "beta2", "eps"),
    options=("maximize", "weight_decay_form", "bias_correction", "grad_averaging",
             "trust_clip", "always_adapt"),
    step_scalars=lamb_scalars,
    step_numbers=("bias_correction1", "bias_correction2"),
    state_keys=lambda hp: ("exp_avg", "exp_avg_sq"),
    pairs=(("betas", ("beta1", "beta2")),),
    structure=GLOBAL,
    global_scalars=lamb_global,
)
