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


def lion(theta: Tensor, grads: list[Tensor], lr: Lr, betas: tuple[float, float] = (0.9, 0.99),
         weight_decay: float = 0.0, weight_decay_form: str = "decoupled",
         maximize: bool = False) -> Tensor:
    """Chen et al. 2023, Algorithm 2: c = β₁m + (1 − β₁)g, θ ← θ − η(sign(c) + λθ),
    m ← β₂m + (1 − β₂)g."""
    m = torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        theta = theta - eta * torch.sign(betas[0] * m + (1 - betas[0]) * g)
        m = betas[1] * m + (1 - betas[1]) * g
    return theta


def lamb(theta: Tensor, grads: list[Tensor], lr: Lr, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-6, weight_decay: float = 0.01, weight_decay_form: str = "update",
         bias_correction: bool = True, grad_averaging: bool = True,
         max_grad_norm: float | None = 1.0, trust_clip: bool = False,
         always_adapt: bool = False, maximize: bool = False) -> Tensor:
    """You et al. 2019, Algorithm 2 (LAMB), for one tensor (so the global gradient norm is
    this tensor's): g ← g / max(1, ‖g‖/max_norm); m, v as Adam's (m with β₃ = 1 − β₁, or 1
    without grad averaging); r = m̂/(√v̂ + ε) + λθ; θ ← θ − η·φ(‖θ‖)/‖r‖·r, the ratio 1
    where a norm is 0."""
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        if max_grad_norm is not None:
            g = g / max(1.0, g.norm().item() / max_grad_norm)
        if weight_decay_form != "update":
            theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        m = b1 * m + ((1 - b1) if grad_averaging else 1.0) * g
        v = b2 * v + (1 - b2) * g * g
        c1, c2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
        r = (m / c1) / ((v / c2).sqrt() + eps)
        if weight_decay_form == "update":
            r = r + weight_decay * theta
        ratio = 1.0
        if weight_decay != 0 or always_adapt:
            w_norm, r_norm = theta.norm().item(), r.norm().item()
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            ratio = min(ratio, 1.0) if trust_clip else ratio
        theta = theta - eta * ratio * r
    return theta


def _schedulefree(theta: Tensor, grads: list[Tensor], lr: Lr, beta: float, direction,
                  warmup_steps: float, r: float, weight_lr_power: float, maximize: bool,
                  average: bool) -> Tensor:
    """Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1 with x, y, z all kept:
        y_t = (1 − β) z_t + β x_t            (where the gradient is taken)
        z_{t+1} = z_t − γ_t d_t              (d_t: the direction at y_t, from g_t)
        x_{t+1} = (1 − c_{t+1}) x_t + c_{t+1} z_{t+1}
        c_{t+1} = w_t / Σ_{i<=t} w_i ,  w_t = tʳ · (max_{i<=t} γ_i)^p    (section 4.2)
    γ_t = η·min(1, t / warmup_steps): linear warmup. Returns y after the last step (the
    params while training), or x with ``average`` (after ``eval()``)."""
    x = z = theta
    lr_max, weight_sum = 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        y = (1 - beta) * z + beta * x
        gamma = _at(lr, t) * (min(1.0, t / warmup_steps) if warmup_steps else 1.0)
        lr_max = max(lr_max, gamma)
        weight = t**r * lr_max**weight_lr_power
        weight_sum += weight
        c = weight / weight_sum if weight_sum else 0.0
        z = z - gamma * direction(t, y, -g if maximize else g)
        x = (1 - c) * x + c * z
    return x if average else (1 - beta) * z + beta * x


def adamw_schedulefree(theta: Tensor, grads: list[Tensor], lr: Lr,
                       betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                       weight_decay: float = 0.0, warmup_steps: float = 0, r: float = 0.0,
                       weight_lr_power: float = 2.0, maximize: bool = False,
                       average: bool = False) -> Tensor:
    """Schedule-free AdamW: d_t = g / (√(v_t / (1 − β₂ᵗ)) + ε) + λ y_t, with
    v_t = β₂ v_{t−1} + (1 − β₂) g² (no first moment: β₁ is the interpolation β)."""
    b1, b2 = betas
    v = torch.zeros_like(theta)

    def direction(t: int, y: Tensor, g: Tensor) -> Tensor:
        nonlocal v
        v = b2 * v + (1 - b2) * g**2
        return g / ((v / (1 - b2**t)).sqrt() + eps) + weight_decay * y

    return _schedulefree(theta, grads, lr, b1, direction, warmup_steps, r, weight_lr_power,
                         maximize, average)


def sgd_schedulefree(theta: Tensor, grads: list[Tensor], lr: Lr, momentum: float = 0.9,
                     weight_decay: float = 0.0, warmup_steps: float = 0, r: float = 0.0,
                     weight_lr_power: float = 2.0, maximize: bool = False,
                     average: bool = False) -> Tensor:
    """Schedule-free SGD: d_t = g + λ y_t, β = momentum."""
    return _schedulefree(theta, grads, lr, momentum, lambda t, y, g: g + weight_decay * y,
                         warmup_steps, r, weight_lr_power, maximize, average)



def _kept(x: float | Tensor) -> Tensor:
    """x as torch.optim keeps a 0-d state value (NAdam's mu_product, ASGD's eta and mu): a
    float32 tensor (float64 under a float64 default dtype)."""
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.as_tensor(x).to(dtype)


def nadam(theta: Tensor, grads: list[Tensor], lr: Lr, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          momentum_schedule: str = "dozat", weight_decay_form: str = "l2",
          maximize: bool = False) -> Tensor:
    """Dozat 2016, Algorithm 2 (NAdam), with torch's momentum schedule
    μ_t = β₁(1 − ½·0.96^{tψ}) and its bias correction by Π_t = μ₁···μ_t."""
    b1, b2 = betas

    def mu_at(t: int) -> float:
        return b1 if momentum_schedule == "constant" else \
            b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    m, v, kept_product = torch.zeros_like(theta), torch.zeros_like(theta), _kept(1.0)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        mu, mu_next = mu_at(t), mu_at(t + 1)
        kept_product = kept_product * mu  # Π_t, multiplied as torch multiplies its 0-d state
        product = b1**t if momentum_schedule == "constant" else float(kept_product)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        # m̄ = μ_{t+1} m_t / (1 − Π_{t+1}) + (1 − μ_t) g_t / (1 − Π_t)
        m_bar = mu_next * m / (1 - product * mu_next) + (1 - mu) * g / (1 - product)
        theta = theta - eta * m_bar / ((v / (1 - b2**t)).sqrt() + eps)
    return theta


def radam(theta: Tensor, grads: list[Tensor], lr: Lr, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0.0, threshold: float = 5.0,
          eps_placement: str = "hat", weight_decay_form: str = "l2",
          maximize: bool = False) -> Tensor:
    """Liu et al. 2019, Algorithm 2: the adaptive step, rectified, once ρ_t > ρ_min."""
    b1, b2 = betas
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho <= threshold:
            theta = theta - eta * m_hat
            continue
        r = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
        if eps_placement == "hat":  # torch: l_t = √(1 − β₂ᵗ) / (√v_t + ε)
            adaptive = (1 - b2**t) ** 0.5 / (v.sqrt() + eps)
        else:  # optax: 1 / (√v̂_t + ε)
            adaptive = 1 / ((v / (1 - b2**t)).sqrt() + eps)
        theta = theta - eta * r * m_hat * adaptive
    return theta


def adamax(theta: Tensor, grads: list[Tensor], lr: Lr, betas: tuple[float, float] = (0.9, 0.999),
           eps: float = 1e-8, weight_decay: float = 0.0, eps_placement: str = "max",
           weight_decay_form: str = "l2", maximize: bool = False) -> Tensor:
    """Kingma & Ba 2014, section 7.1 (Algorithm 2): u_t = max(β₂ u_{t−1}, |g_t|)."""
    b1, b2 = betas
    m, u = torch.zeros_like(theta), torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        m = b1 * m + (1 - b1) * g
        if eps_placement == "max":  # torch, optax: ε inside the max
            u = torch.maximum(b2 * u, g.abs() + eps)
            theta = theta - eta / (1 - b1**t) * m / u
        else:  # Keras: ε added to u
            u = torch.maximum(b2 * u, g.abs())
            theta = theta - eta / (1 - b1**t) * m / (u + eps)
    return theta


def adadelta(theta: Tensor, grads: list[Tensor], lr: Lr, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: float = 0.0, weight_decay_form: str = "l2",
             maximize: bool = False) -> Tensor:
    """Zeiler 2012, Algorithm 1, with torch's lr multiplying the step."""
    eg2, edx2 = torch.zeros_like(theta), torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        eta = _at(lr, t)
        g = -g if maximize else g
        theta, g = _decay(theta, g, eta, weight_decay, weight_decay_form)
        eg2 = rho * eg2 + (1 - rho) * g**2  # E[g²]_t
        dx = (edx2 + eps).sqrt() / (eg2 + eps).sqrt() * g  # RMS[Δx]_{t−1} / RMS[g]_t · g
        edx2 = rho * edx2 + (1 - rho) * dx**2  # E[Δx²]_t
        theta = theta - eta * dx
    return theta


def rprop(theta: Tensor, grads: list[Tensor], lr: Lr, etas: tuple[float, float] = (0.5, 1.2),
          step_sizes: tuple[float, float] = (1e-6, 50), weight_decay: float = 0.0,
          weight_decay_form: str = "l2", maximize: bool = False) -> Tensor:
    """Riedmiller & Braun 1993, in torch's variant iRprop⁻ (Igel & Hüsken 2000): after a
    sign change the step size shrinks and the weight stays, and g is forgotten."""
    eta_minus, eta_plus = etas
    delta = torch.full_like(theta, _at(lr, 1))  # Δ₀ = the lr
    previous = torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        theta, g = _decay(theta, g, _at(lr, t), weight_decay, weight_decay_form)
        product = g * previous
        delta = torch.where(product > 0, delta * eta_plus,
                            torch.where(product < 0, delta * eta_minus, delta))
        delta = delta.clamp(*step_sizes)
        g = torch.where(product < 0, torch.zeros_like(g), g)
        theta = theta - g.sign() * delta
        previous = g
    return theta


def asgd(theta: Tensor, grads: list[Tensor], lr: Lr, lambd: float = 1e-4, alpha: float = 0.75,
         t0: float = 1e6, weight_decay: float = 0.0, weight_decay_form: str = "l2",
         maximize: bool = False, average: bool = False) -> Tensor:
    """Averaged SGD (Polyak & Juditsky 1992) with torch's schedule: η_{t+1} = η_t-th lr /
    (1 + λ η t)^α and μ_{t+1} = 1/max(1, t − t₀), each computed after step t (so η lags
    the lr by one step) and kept as torch keeps them. ``average``: return θ̄ instead."""
    eta, mu = float(_kept(_at(lr, 1))), 1.0
    average_theta = torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        theta, g = _decay(theta, g, _at(lr, t), weight_decay, weight_decay_form)
        theta = theta * (1 - lambd * eta) - eta * g
        average_theta = theta if mu == 1 else average_theta + mu * (theta - average_theta)
        eta = float(_kept(_at(lr, t) / (1 + lambd * _at(lr, t) * t) ** alpha))
        mu = float(_kept(1 / max(1, t - t0)))
    return average_theta if average else theta



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
              "NAdam": nadam, "RAdam": radam, "Adamax": adamax, "Adadelta": adadelta,
              "Rprop": rprop, "ASGD": asgd,
              "Lion": lion, "Lamb": lamb, "AdamWScheduleFree": adamw_schedulefree,
              "SGDScheduleFree": sgd_schedulefree,
              "Adafactor": adafactor, "Muon": muon}
