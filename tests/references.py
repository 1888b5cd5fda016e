"""fp64 references, written straight from each algorithm's equation (seeds 000-004 and the
papers), independently of optimlab's code. Each takes the initial parameter and the list
of gradients, and returns the parameter after len(grads) steps. ``lr`` is a number, or a
list with one lr per step (a schedule)."""

from __future__ import annotations

import torch
from torch import Tensor

Lr = float | list[float]


def _at(lr: Lr, t: int) -> float:
    """The lr of step t (from 1)."""
    return lr[t - 1] if isinstance(lr, list) else lr


def _decay(theta: Tensor, g: Tensor, lr: float, wd: float, form: str) -> tuple[Tensor, Tensor]:
    if form == "l2":  # g <- g + λθ
        return theta, g + wd * theta
    if form == "decoupled":  # θ <- θ - ηλθ
        return theta - lr * wd * theta, g
    return theta - wd * theta, g  # independent: θ <- θ - λθ


def sgd(theta: Tensor, grads: list[Tensor], lr: Lr, momentum: float = 0.0,
        dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
        weight_decay_form: str = "l2", momentum_form: str = "heavy_ball",
        lr_in_momentum: bool = False, maximize: bool = False) -> Tensor:
    v = torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        if momentum == 0:
            theta = theta - eta * g
            continue
        # Keras: m ← μm − ηg, θ ← θ + m: the buffer holds lr-scaled gradients
        u = eta * g if lr_in_momentum else g
        if momentum_form == "ema":  # seed 001: v_t = β v_{t-1} + (1-β) g
            v = momentum * v + (1 - momentum) * u
            d = (1 - momentum) * u + momentum * v if nesterov else v
        else:  # heavy ball, torch: v_1 = g, then v_t = μ v_{t-1} + (1-τ) g
            v = u if t == 1 else momentum * v + (1 - dampening) * u
            d = u + momentum * v if nesterov else v
        theta = theta - d if lr_in_momentum else theta - eta * d
    return theta


def adagrad(theta: Tensor, grads: list[Tensor], lr: Lr, lr_decay: float = 0.0,
            weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
            eps: float = 1e-10, eps_placement: str = "outside", weight_decay_form: str = "l2",
            maximize: bool = False) -> Tensor:
    big_g = torch.full_like(theta, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        theta, g = _decay(theta, g, _at(lr, t), weight_decay, weight_decay_form)
        big_g = big_g + g**2  # G_t = G_{t-1} + g²
        eta_t = _at(lr, t) / (1 + (t - 1) * lr_decay)
        # seed 002: θ - η/√(G+ε)·g ; torch: θ - η/(√G+ε)·g
        root = (big_g + eps).sqrt() if eps_placement == "inside" else big_g.sqrt() + eps
        theta = theta - eta_t * g / root
    return theta


def rmsprop(theta: Tensor, grads: list[Tensor], lr: Lr, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
            centered: bool = False, eps_placement: str = "outside",
            lr_in_momentum: bool = False, initial_accumulator_value: float = 0.0,
            weight_decay_form: str = "l2", maximize: bool = False) -> Tensor:
    sq = torch.full_like(theta, initial_accumulator_value)  # timm's RMSpropTF: ones
    mean, buf = torch.zeros_like(theta), torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        sq = alpha * sq + (1 - alpha) * g**2  # E[g²]_t
        mean = alpha * mean + (1 - alpha) * g  # E[g]_t (centered)
        s = sq - mean**2 if centered else sq
        # seed 000: η/√(E[g²]+ε) ; seeds 001/003 and torch: η/(√s+ε)
        root = (s + eps).sqrt() if eps_placement == "inside" else s.sqrt() + eps
        if momentum > 0 and lr_in_momentum:  # TensorFlow: the lr enters the buffer
            buf = momentum * buf + eta * g / root
            theta = theta - buf
        elif momentum > 0:
            buf = momentum * buf + g / root
            theta = theta - eta * buf
        else:
            theta = theta - eta * g / root
    return theta


def adam(theta: Tensor, grads: list[Tensor], lr: Lr, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
         bias_correction: bool = True, eps_root: float = 0.0, eps_placement: str = "outside",
         weight_decay_form: str = "l2", maximize: bool = False) -> Tensor:
    b1, b2 = betas
    m, v, v_max = torch.zeros_like(theta), torch.zeros_like(theta), torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        m = b1 * m + (1 - b1) * g  # m_t
        v = b2 * v + (1 - b2) * g**2  # v_t
        v_max = torch.maximum(v_max, v)
        second = v_max if amsgrad else v
        m_hat = m / (1 - b1**t) if bias_correction else m
        v_hat = second / (1 - b2**t) if bias_correction else second
        if eps_placement == "inside":
            denom = (v_hat + eps_root + eps).sqrt()
        elif eps_placement == "hat" and bias_correction:
            # Kingma & Ba, end of section 2: α_t = α√(1-β₂ᵗ)/(1-β₁ᵗ), θ - α_t m/(√v + ε̂)
            step_size = _at(lr, t) * (1 - b2**t) ** 0.5 / (1 - b1**t)
            theta = theta - step_size * m / ((second + eps_root * (1 - b2**t)).sqrt() + eps)
            continue
        else:
            denom = (v_hat + eps_root).sqrt() + eps
        theta = theta - eta * m_hat / denom  # θ_t = θ_{t-1} - η m̂/(√v̂ + ε)
    return theta


def adamw(theta: Tensor, grads: list[Tensor], lr: Lr, weight_decay: float = 1e-2,
          weight_decay_form: str = "decoupled", **kwargs) -> Tensor:
    """Seed 004: φ ← φ − α m̃/(√ṽ + ε) − αλφ (the decay uses the parameter before the step)."""
    return adam(theta, grads, lr, weight_decay=weight_decay,
                weight_decay_form=weight_decay_form, **kwargs)


def _rms(x: Tensor) -> float:
    return (x.square().sum() / x.numel()).sqrt().item()


def adafactor(theta: Tensor, grads: list[Tensor], lr: Lr = 1e-2, beta2_decay: float = -0.8,
              eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
              weight_decay: float = 0.0, beta1: float = 0.0, relative_step: bool = True,
              scale_parameter: bool = True, weight_decay_form: str = "decoupled",
              maximize: bool = False) -> Tensor:
    """Shazeer & Stern 2018, Algorithms 4 (a matrix: the last two dims) and 5 (a vector),
    with update clipping (section 5), relative step and parameter scale (section 8), the
    optional first moment of Û (section 7), and torch's choices: ε₁ clamps V̂ (ε₁²) and
    mean(R) (ε₁), decay θ(1 − ηλ) before the step."""
    eps1 = torch.finfo(theta.dtype).eps if eps[0] is None else eps[0]
    factored = theta.dim() >= 2
    row = torch.zeros(theta.shape[:-1], dtype=theta.dtype) if factored else None
    col = torch.zeros((*theta.shape[:-2], theta.shape[-1]), dtype=theta.dtype) \
        if factored else None
    v, m = torch.zeros_like(theta), torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if theta.numel() == 0:
            continue
        eta = _at(lr, t)
        g = -g if maximize else g
        rho = min(eta, 1 / t**0.5) if relative_step else eta  # ρ_t
        alpha = max(eps[1], _rms(theta)) * rho if scale_parameter else rho  # α_t
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        beta2_hat = 1 - t**beta2_decay  # β̂₂ₜ = 1 − t^(−0.8)
        if factored:  # R_t = β̂₂ₜ R + (1 − β̂₂ₜ)(G²)1_m ; C_t = ... 1_nᵀ(G²) (as means)
            row = beta2_hat * row + (1 - beta2_hat) * (g * g).mean(dim=-1)
            col = beta2_hat * col + (1 - beta2_hat) * (g * g).mean(dim=-2)
            # V̂ = R C / (1ᵀR), with means in place of sums: the n and m cancel
            mean_row = row.mean(dim=-1).clamp(min=eps1)[..., None, None]
            v_hat = row[..., :, None] * col[..., None, :] / mean_row
        else:
            v = beta2_hat * v + (1 - beta2_hat) * g * g
            v_hat = v
        u = g / v_hat.clamp(min=eps1**2).sqrt()  # U_t = G_t / √V̂_t
        u = u / max(1.0, _rms(u) / d)  # Û_t = U_t / max(1, RMS(U_t)/d)
        if beta1 > 0:
            m = beta1 * m + (1 - beta1) * u
            u = m
        theta = theta - alpha * u
    return theta


def muon(theta: Tensor, grads: list[Tensor], lr: Lr = 1e-3, weight_decay: float = 0.1,
         momentum: float = 0.95, nesterov: bool = True,
         ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
         eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str | None = None,
         newton_schulz: str = "torch", weight_decay_form: str = "decoupled",
         maximize: bool = False, ns_dtype: torch.dtype | None = None) -> Tensor:
    """Jordan et al. 2024 (kellerjordan.github.io/posts/muon): B ← μB + (1 − μ)g, the
    Nesterov blend (1 − μ)g + μB, its orthogonal factor by k quintic Newton–Schulz steps
    X ← aX + (bA + cA²)X with A = XXᵀ (on the wide orientation, X₀ = U/‖U‖_F), and the
    step η·r·O with r = √max(1, rows/cols) (Moonshot: 0.2·√max(rows, cols)). In fp64
    throughout (``ns_dtype`` is the optimizer's and is ignored here)."""
    a, b, c = ns_coefficients
    rows, cols = theta.shape
    if theta.numel() == 0:
        return theta
    ratio = 0.2 * max(rows, cols) ** 0.5 if adjust_lr_fn == "match_rms_adamw" \
        else max(1.0, rows / cols) ** 0.5
    buffer = torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        buffer = momentum * buffer + (1 - momentum) * g
        u = (1 - momentum) * g + momentum * buffer if nesterov else buffer
        x = u.T if rows > cols else u
        norm = x.square().sum().sqrt().item()
        x = x / (norm + eps) if newton_schulz == "keller" else x / max(norm, eps)
        for _ in range(ns_steps):
            gram = x @ x.T
            x = a * x + (b * gram + c * gram @ gram) @ x
        theta = theta - eta * ratio * (x.T if rows > cols else x)
    return theta


REFERENCES = {"SGD": sgd, "Adagrad": adagrad, "RMSprop": rmsprop, "Adam": adam, "AdamW": adamw,
              "Adafactor": adafactor, "Muon": muon}
