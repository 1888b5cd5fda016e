"""Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear
Memory Cost"): a per-tensor rule whose second moment of a matrix is kept as its row and
column means only, and whose step is relative to the parameter's own RMS."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from optimlab.rules.base import (
    COMMON_NUMBERS,
    COMMON_OPTIONS,
    PER_TENSOR,
    Hyper,
    Rule,
    State,
    direction,
    weight_decay,
)


def _rms(tensor: Tensor) -> Tensor:
    """RMS(x) = ‖x‖₂ / √n."""
    return torch.linalg.vector_norm(tensor) / math.sqrt(tensor.numel())


def _at_least(floor: Any, value: Tensor) -> Tensor:
    """max(floor, value) as Python's ``max`` gives it in torch's Adafactor: the floor where
    the value is NaN (a NaN gradient then spoils only its own elements, as in torch)."""
    return value.nan_to_num(nan=floor, posinf=math.inf).clamp(min=floor)


def _decayed(param: Tensor, grad: Tensor, hp: Hyper) -> tuple[Tensor, Tensor]:
    """``weight_decay``, skipped (as torch skips it) when λ is the number 0: a pass over
    θ saved on a rule that runs tensor by tensor."""
    lam = hp["weight_decay"]
    if not isinstance(lam, Tensor) and lam == 0:
        return param, grad
    return weight_decay(param, grad, hp)


def _mean_square(grad: Tensor, dim: int) -> Tensor:
    """mean(g², dim), kept as a dimension of 1 (as ‖g‖²/n along ``dim``, torch's order of
    operations, which never forms g² in full)."""
    return torch.linalg.vector_norm(grad, dim=dim, keepdim=True).square() / grad.size(dim)


def adafactor(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Adafactor, as torch.optim.Adafactor computes it, with the paper's options.

        β̂₂ₜ = 1 − t^τ                               (τ = beta2_decay, the paper's −0.8)
        ρₜ = min(η, 1/√t)  (``relative_step``, torch; the paper's η = 10⁻²)   or  ρₜ = η
        αₜ = max(ε₂, RMS(θₜ₋₁))·ρₜ  (``scale_parameter``, torch)              or  αₜ = ρₜ
        θ ≥ 2-D, factored over its last two dims:
            R ← β̂₂ₜ R + (1 − β̂₂ₜ) mean(g², cols)    C ← β̂₂ₜ C + (1 − β̂₂ₜ) mean(g², rows)
            V̂ = R C / max(mean(R), ε₁)
        θ 0-D or 1-D:  V ← β̂₂ₜ V + (1 − β̂₂ₜ) g² ;  V̂ = V
        U = g / √max(V̂, ε₁²) ;   Û = U / max(1, RMS(U)/d)                (update clipping)
        β₁ > 0 (the paper's first moment, off in torch): m ← β₁ m + (1 − β₁) Û ; Û ← m
        θ ← θ·(1 − ηλ) − αₜ Û                        (torch's decay: decoupled, with η)

    RMS(θₜ₋₁) is taken before the weight decay. ε₁ (``eps1``) None means the machine
    epsilon of the param's own dtype (``hp["eps1_now"]``, from ``adafactor_tensor``), as
    torch takes it: the engine hands the rule an fp32 copy of a bf16 param.

    Symbols: θ=param, g=grad, R=state["row_var"] (…, R, 1), C=state["col_var"] (…, 1, C),
    V=state["variance"], m=state["exp_avg"], η=lr, λ=weight_decay, d=d, ε₁,ε₂=eps;
    1 − β̂₂ₜ and ρₜ arrive as ``hp["one_minus_beta2"]`` and ``hp["rho"]``.
    """
    if param.numel() == 0:  # no RMS to take (torch divides by zero there)
        return param, state
    g = direction(grad, hp)
    scale = hp["rho"]
    if hp["scale_parameter"]:
        scale = _at_least(hp["eps2"], _rms(param)) * scale
    param, g = _decayed(param, g, hp)
    weight, eps1 = hp["one_minus_beta2"], hp["eps1_now"]
    if "row_var" in state:
        row_var = torch.lerp(state["row_var"], _mean_square(g, -1), weight)
        col_var = torch.lerp(state["col_var"], _mean_square(g, -2), weight)
        new_state = {"row_var": row_var, "col_var": col_var}
        # R C first, as torch (R/mean(R) first would differ where R C underflows); the
        # product is the rule's own: divided, clamped and rooted in place, one full tensor
        estimate = (row_var @ col_var).div_(row_var.mean(dim=-2, keepdim=True).clamp(min=eps1))
        inverse_root = estimate.clamp_(min=eps1 * eps1).rsqrt_()
    else:
        variance = torch.lerp(state["variance"], g * g, weight)
        new_state = {"variance": variance}
        inverse_root = variance.clamp(min=eps1 * eps1).rsqrt()
    update = inverse_root * g
    clip = _at_least(1.0, _rms(update) / hp["d"])
    if "exp_avg" in state:
        update = hp["beta1"] * state["exp_avg"] + (1 - hp["beta1"]) * (update / clip)
        new_state["exp_avg"] = update
    else:  # Û = U / clip, folded into the step size as torch folds it: α/clip, one pass
        scale = scale / clip
    if isinstance(scale, Tensor):  # θ − α·Û in one pass (α a 0-d tensor, or a number)
        return torch.addcmul(param, update, scale, value=-1), new_state
    return torch.add(param, update, alpha=-scale), new_state


def adafactor_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """1 − β̂₂ₜ = t^τ, and ρₜ = min(η, 1/√t) (relative step) or η."""
    rho = hp["lr"]
    if hp["relative_step"]:
        inverse_root = step ** -0.5
        rho = min(rho, inverse_root) if isinstance(step, float) and not isinstance(
            rho, Tensor) else torch.minimum(torch.as_tensor(rho), torch.as_tensor(inverse_root))
    return {"one_minus_beta2": step ** hp["beta2_decay"], "rho": rho}


def adafactor_tensor(hp: Hyper, param: Tensor) -> dict[str, Any]:
    """ε₁ = ``eps1``, or the machine epsilon of the param's storage dtype when None."""
    eps1 = hp["eps1"]
    return {"eps1_now": torch.finfo(param.dtype).eps if eps1 is None else eps1}


def adafactor_shapes(hp: Hyper, shape: torch.Size) -> dict[str, tuple[int, ...]]:
    """torch's: ``row_var`` (…, R, 1) and ``col_var`` (…, 1, C) for a param of 2 dims or
    more, ``variance`` (like the param) otherwise; ``exp_avg`` like the param."""
    shape = tuple(shape)
    moments: dict[str, tuple[int, ...]] = {"exp_avg": shape}
    if len(shape) >= 2:
        moments["row_var"] = (*shape[:-1], 1)
        moments["col_var"] = (*shape[:-2], 1, shape[-1])
    else:
        moments["variance"] = shape
    return moments


def _adafactor_state_keys(hp: Hyper) -> tuple[str, ...]:
    # both layouts are named: each param keeps those its shape declares (adafactor_shapes)
    keys = ("row_var", "col_var", "variance")
    return (*keys, "exp_avg") if hp["beta1"] > 0 else keys


ADAFACTOR_RULE = Rule(
    "adafactor",
    adafactor,
    numbers=(*COMMON_NUMBERS, "beta2_decay", "eps1", "eps2", "d", "beta1"),
    options=(*COMMON_OPTIONS, "relative_step", "scale_parameter"),
    step_scalars=adafactor_scalars,
    step_numbers=("one_minus_beta2", "rho"),
    state_keys=_adafactor_state_keys,
    pairs=(("eps", ("eps1", "eps2")),),
    structure=PER_TENSOR,
    state_shapes=adafactor_shapes,
    tensor_scalars=adafactor_tensor,
)
