"""Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks"):
momentum whose update is orthogonalised by a Newton–Schulz iteration on the matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from optimlab.rules.base import (
    COMMON_NUMBERS,
    COMMON_OPTIONS,
    MATRIX,
    Hyper,
    Rule,
    State,
    direction,
    no_scalars,
    weight_decay,
)

NEWTON_SCHULZ_FORMS = ("torch", "keller")
NS_DTYPES = (torch.bfloat16, torch.float32, torch.float64)
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def newton_schulz(update: Tensor, hp: Hyper) -> Tensor:
    """The k-step quintic Newton–Schulz iteration towards the orthogonal factor of U, in
    ``ns_dtype`` (bf16 as torch and Keller Jordan run it; fp32; fp64, which the fp64
    reference tests take), on the wide orientation of U:

        X₀ = U / max(‖U‖_F, ε)     (``newton_schulz="torch"``)
        X₀ = U / (‖U‖_F + ε)       (``"keller"``: his zeropower_via_newtonschulz5)
        A = X Xᵀ ;  X ← a X + (b A + c A²) X      (k = ns_steps times)

    torch forms b A + c A² and a X + B X as fused multiply-adds (``addmm``: one rounding to
    bf16 each); Keller's form rounds each product and sum to bf16.
    """
    a, b, c = hp["ns_a"], hp["ns_b"], hp["ns_c"]
    tall = update.size(0) > update.size(1)
    x = update.to(hp["ns_dtype"])
    x = x.T if tall else x
    keller = hp["newton_schulz"] == "keller"
    x = x / (x.norm() + hp["eps"]) if keller else x / x.norm().clamp(min=hp["eps"])
    for _ in range(hp["ns_steps"]):
        gram = x @ x.T
        if keller:
            x = a * x + (b * gram + c * gram @ gram) @ x
        else:
            x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def lr_ratio(shape: torch.Size, adjust_lr_fn: str | None) -> float:
    """How the lr is scaled for an A×B matrix: √max(1, A/B) (``"original"``, Keller's;
    None means it) or 0.2·√max(A, B) (``"match_rms_adamw"``, Moonshot's: the update's RMS
    matched to AdamW's)."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


def muon(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Muon, as torch.optim.Muon computes it (and Keller Jordan's form as an option).

        B ← μ B + (1 − μ) g                         (torch's and Keller's lerp)
        U = (1 − μ) g + μ B  (nesterov)   or   U = B
        O = NS_k(U)                                  (``newton_schulz``, in ``ns_dtype``)
        θ ← θ·(1 − ηλ) − η·r(A, B)·O                 (r: ``lr_ratio`` of θ's shape)

    ``newton_schulz="keller"`` also rounds r·O to bf16 before the step, as his
    ``muon_update`` scales the bf16 update in place. The rule reads the matrix's shape
    itself for r.

    Symbols: θ=param (2-D), g=grad, B=state["momentum_buffer"], μ=momentum, η=lr,
    λ=weight_decay, (a, b, c)=ns_coefficients, k=ns_steps, ε=eps.
    """
    if param.numel() == 0:  # no shape ratio to take (torch divides by zero there)
        return param, state
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    mu = hp["momentum"]
    buffer = torch.lerp(state["momentum_buffer"], g, 1 - mu)
    update = torch.lerp(g, buffer, mu) if hp["nesterov"] else buffer
    orthogonal = newton_schulz(update, hp)
    ratio = lr_ratio(param.shape, hp["adjust_lr_fn"])
    if hp["newton_schulz"] == "keller":
        return param - hp["lr"] * (orthogonal * ratio).to(param.dtype), {
            "momentum_buffer": buffer}
    return param - (hp["lr"] * ratio) * orthogonal.to(param.dtype), {
        "momentum_buffer": buffer}


MUON_RULE = Rule(
    "muon",
    muon,
    numbers=(*COMMON_NUMBERS, "momentum", "ns_a", "ns_b", "ns_c", "eps"),
    options=(*COMMON_OPTIONS, "nesterov", "ns_steps", "adjust_lr_fn", "newton_schulz",
             "ns_dtype"),
    step_scalars=no_scalars,
    step_numbers=(),
    state_keys=lambda hp: ("momentum_buffer",),
    pairs=(("ns_coefficients", ("ns_a", "ns_b", "ns_c")),),
    counts_steps=False,
    structure=MATRIX,
)
