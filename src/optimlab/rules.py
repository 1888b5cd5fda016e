"""Update rules: one pure function per algorithm, written as its equation.

A rule takes a parameter θ, its gradient g, the parameter's state tensors (named as
torch.optim names them) and the hyperparameters of this step, and returns the new θ and
the new state. It modifies nothing and reads nothing else, so the same function runs
eagerly over one tensor, over a flat buffer, or compiled into a fused kernel
(see engines.py). There is no second copy of any algorithm.

``hp`` maps names to values of the two kinds each rule declares (``Rule`` below):

* numbers (lr, betas, eps, ...; Python floats, or 0-d tensors where the engine passes
  them as tensors: compiled code, so that a schedule never recompiles; autograd, for
  ``differentiable=True``), including the per-step numbers that ``Rule.step_scalars``
  derives once per step (bias corrections, decayed lr);
* options (bools and strings) that select a variant of the equation.

Every rule starts with the two transformations all optimizers share, ``direction`` (the
``maximize`` sign) and ``weight_decay`` (L2 in the gradient, or decoupled from it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

State = dict[str, Tensor]
Hyper = Mapping[str, Any]

WEIGHT_DECAY_FORMS = ("l2", "decoupled", "independent")
EPS_PLACEMENTS = ("outside", "inside")
ADAM_EPS_PLACEMENTS = (*EPS_PLACEMENTS, "hat")
MOMENTUM_FORMS = ("heavy_ball", "ema")


def direction(grad: Tensor, hp: Hyper) -> Tensor:
    """g ← −g when maximizing (ascend the objective instead of descending it)."""
    return -grad if hp["maximize"] else grad


def weight_decay(param: Tensor, grad: Tensor, hp: Hyper) -> tuple[Tensor, Tensor]:
    """Apply weight decay λ in one of three forms; returns (θ, g).

    * ``"l2"``:          g ← g + λθ         (torch's ``weight_decay`` for SGD/Adagrad/RMSprop/Adam;
                                            the seeds' "broken" Adam weight decay)
    * ``"decoupled"``:   θ ← θ·(1 − ηλ)     (AdamW, Loshchilov & Hutter; torch.optim.AdamW)
    * ``"independent"``: θ ← θ·(1 − λ)      (decoupled and independent of the learning rate η,
                                            so an lr schedule does not change the decay)
    """
    form, lam = hp["weight_decay_form"], hp["weight_decay"]
    if form == "l2":
        return param, grad + lam * param
    if form == "decoupled":
        return param * (1 - hp["lr"] * lam), grad
    return param * (1 - lam), grad


def _root(x: Tensor, hp: Hyper) -> Tensor:
    """√x + ε (``eps_placement="outside"``, torch) or √(x + ε) (``"inside"``, TensorFlow)."""
    if hp["eps_placement"] == "inside":
        return torch.sqrt(x + hp["eps"])
    return torch.sqrt(x) + hp["eps"]


def _centered_variance(square_avg: Tensor, grad_avg: Tensor) -> Tensor:
    """s = E[g²] − E[g]², which is >= 0 in exact arithmetic, computed so that it stays so.

    Two roundings would otherwise make √s NaN, in torch.optim.RMSprop too: when g barely
    varies, E[g²] and E[g]² agree to the last bit and their difference can come out
    slightly negative (fp32, a constant gradient, alpha=0.9: NaN within ~130 steps); and
    when g² overflows, E[g²] and E[g]² are both Inf. So s is clamped at 0, and an Inf E[g²]
    gives s = Inf: the step is then 0, as it is without centering.
    """
    variance = (square_avg - grad_avg * grad_avg).clamp_min(0)
    # E[g²] >= 0, so "== inf" is isinf; Inductor vectorises the comparison, not isinf
    return torch.where(square_avg == math.inf, square_avg, variance)


def sgd(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Stochastic gradient descent, with optional momentum.

    Without momentum (μ = 0):  θ ← θ − η g

    With momentum, u is the gradient as it enters the buffer v:
    ``lr_in_momentum=False`` (torch, optax's sgd): u = g, and the step is θ ← θ − η d;
    ``lr_in_momentum=True`` (Keras/TF):           u = η g, and the step is θ ← θ − d.

    ``momentum_form="heavy_ball"`` (torch; dampening τ, and torch's first step v₁ = u):
        v ← μ v + (1 − τ) u
        d ← u + μ v   (nesterov)   or   d ← v
    ``momentum_form="ema"`` (seed 001; v₀ = 0):
        v ← μ v + (1 − μ) u
        d ← (1 − μ) u + μ v   (nesterov)   or   d ← v

    The two lr placements agree while η is constant. Under a schedule they part: with the
    lr inside, each gradient stays in the buffer at the lr of its own step; with it
    outside, today's lr rescales the whole remembered history.
    The EMA form is the heavy-ball form scaled by (1 − μ): with the same gradients,
    EMA momentum at lr η moves exactly as heavy-ball momentum at lr η(1 − μ).

    Symbols: θ=param, g=grad, v=state["momentum_buffer"], η=lr, μ=momentum,
    τ=dampening (``hp["dampening_now"]``: 0 on the first step, as torch does).
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    lr = hp["lr"]
    if "momentum_buffer" not in state:
        return param - lr * g, state
    mu, lr_inside = hp["momentum"], hp["lr_in_momentum"]
    u = lr * g if lr_inside else g
    if hp["momentum_form"] == "ema":
        v = mu * state["momentum_buffer"] + (1 - mu) * u
        d = (1 - mu) * u + mu * v if hp["nesterov"] else v
    else:
        v = mu * state["momentum_buffer"] + (1 - hp["dampening_now"]) * u
        d = u + mu * v if hp["nesterov"] else v
    return (param - d if lr_inside else param - lr * d), {"momentum_buffer": v}


def adagrad(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """AdaGrad (Duchi et al. 2011).

        G ← G + g²
        θ ← θ − η_t g / (√G + ε)        (``eps_placement="outside"``, torch)
        θ ← θ − η_t g / √(G + ε)        (``eps_placement="inside"``, seed 002)

    with η_t = η / (1 + (t − 1)·lr_decay) and G₀ = ``initial_accumulator_value``.

    Symbols: G=state["sum"], η_t=``hp["decayed_lr"]``, t=step.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    total = state["sum"] + g * g
    return param - hp["decayed_lr"] * g / _root(total, hp), {"sum": total}


def rmsprop(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """RMSprop (Hinton 2012), optionally centered and with momentum.

        E[g²] ← α E[g²] + (1 − α) g²
        centered:  E[g] ← α E[g] + (1 − α) g ;  s = E[g²] − E[g]²    else  s = E[g²]
        r = √s + ε   (``eps_placement="outside"``: torch, seeds 001/003)
        r = √(s + ε) (``eps_placement="inside"``: seed 000, TensorFlow)
        momentum μ > 0:  b ← μ b + g / r ;    θ ← θ − η b    (``lr_in_momentum=False``: torch)
                         b ← μ b + η g / r ;  θ ← θ − b      (``lr_in_momentum=True``: Keras/TF,
                                                              optax, timm's RMSpropTF)
        otherwise:       θ ← θ − η g / r

    E[g²] starts at ``initial_accumulator_value`` (0 in torch, Keras and optax; 1 in timm's
    RMSpropTF), E[g] and b at 0.

    Symbols: E[g²]=state["square_avg"], E[g]=state["grad_avg"],
    b=state["momentum_buffer"], α=alpha, η=lr, μ=momentum.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    alpha = hp["alpha"]
    square_avg = alpha * state["square_avg"] + (1 - alpha) * g * g
    new_state = {"square_avg": square_avg}
    if "grad_avg" in state:
        grad_avg = alpha * state["grad_avg"] + (1 - alpha) * g
        new_state["grad_avg"] = grad_avg
        scaled = g / _root(_centered_variance(square_avg, grad_avg), hp)
    else:
        scaled = g / _root(square_avg, hp)
    lr = hp["lr"]
    if "momentum_buffer" not in state:
        return param - lr * scaled, new_state
    if hp["lr_in_momentum"]:
        buffer = hp["momentum"] * state["momentum_buffer"] + lr * scaled
        return param - buffer, {**new_state, "momentum_buffer": buffer}
    buffer = hp["momentum"] * state["momentum_buffer"] + scaled
    return param - lr * buffer, {**new_state, "momentum_buffer": buffer}


def adam(param: Tensor, grad: Tensor, state: State, hp: Hyper) -> tuple[Tensor, State]:
    """Adam (Kingma & Ba 2014), and AdamW through ``weight_decay_form="decoupled"``.

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        amsgrad:  v_max ← max(v_max, v) and v_max replaces v below
        m̂ = m / (1 − β₁ᵗ) ,  v̂ = v / (1 − β₂ᵗ)     (both divisors are 1 when
                                                     ``bias_correction=False``)
        θ ← θ − η m̂ / (√(v̂ + ε_root) + ε)       (``eps_placement="outside"``, torch)
        θ ← θ − η m̂ / √(v̂ + ε_root + ε)         (``eps_placement="inside"``)
        θ ← θ − η m̂ / (√(v̂ + ε_root) + ε̂)       (``eps_placement="hat"``, Keras/TF)

    with ε̂ = ε / √(1 − β₂ᵗ): Kingma & Ba's "epsilon hat" (end of their section 2), ε
    added to √v before the bias correction, as Keras writes the step:
    θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε). Early on ε̂ is √(1/(1 − β₂)) ≈ 31.6
    times ε (β₂ = 0.999); it falls to ε as t grows.

    Symbols: m=state["exp_avg"], v=state["exp_avg_sq"], v_max=state["max_exp_avg_sq"],
    β₁,β₂=betas, η=lr, ε=eps, ε_root=eps_root (optax's name), t=step;
    1 − β₁ᵗ and 1 − β₂ᵗ arrive as ``hp["bias_correction1"]`` and ``hp["bias_correction2"]``.
    """
    g = direction(grad, hp)
    param, g = weight_decay(param, g, hp)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * g
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    new_state = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    second_moment = exp_avg_sq
    if "max_exp_avg_sq" in state:
        second_moment = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq)
        new_state["max_exp_avg_sq"] = second_moment
    m_hat = exp_avg / hp["bias_correction1"]
    v_hat = second_moment / hp["bias_correction2"] + hp["eps_root"]
    if hp["eps_placement"] == "hat":
        denominator = torch.sqrt(v_hat) + hp["eps"] / hp["bias_correction2"] ** 0.5
    else:
        denominator = _root(v_hat, hp)
    return param - hp["lr"] * m_hat / denominator, new_state


# --- per-step scalars: derived once per step, outside any per-element loop ---------------


def sgd_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """torch's SGD takes v₁ = g on the first step, i.e. no dampening then."""
    return {"dampening_now": 0.0 if step == 1 else hp["dampening"]}


def adagrad_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """η_t = η / (1 + (t − 1)·lr_decay)."""
    return {"decayed_lr": hp["lr"] / (1 + (step - 1) * hp["lr_decay"])}


def adam_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    """1 − β₁ᵗ and 1 − β₂ᵗ, or 1 and 1 without bias correction."""
    if not hp["bias_correction"]:
        return {"bias_correction1": 1.0, "bias_correction2": 1.0}
    return {
        "bias_correction1": 1 - hp["beta1"] ** step,
        "bias_correction2": 1 - hp["beta2"] ** step,
    }


def no_scalars(hp: Hyper, step: Any) -> dict[str, Any]:
    return {}


# --- the rules as the engines see them ----------------------------------------------------


COMMON_NUMBERS = ("lr", "weight_decay")
COMMON_OPTIONS = ("maximize", "weight_decay_form")


@dataclass(frozen=True)
class Rule:
    """An algorithm as the engines run it, and what it reads from a param group.

    The declaration is the single source of what a configuration is:

    * ``numbers``: the real-valued hyperparameters ``update`` reads (lr, betas, eps, ...),
      by their names in ``hp``; ``pairs`` names the group keys that hold two of them
      (Adam's ``betas`` -> ``beta1``, ``beta2``). Numbers may change every step (a
      schedule) and reach compiled code as values, never as part of a cache key.
    * ``options``: the bools and choices that select a variant of the equation. Together
      with ``state_keys`` they key every cache and kernel (views.py).
    * ``step_numbers``: what ``step_scalars`` derives once per step from the numbers and
      the step t (bias corrections, decayed lr, torch's first-step dampening).
    * ``state_keys(hp)``: the moments a configuration keeps, which may depend on numbers
      (``momentum != 0`` adds a buffer).

    ``counts_steps`` says whether the state keeps torch's ``step`` counter;
    ``accepts_sparse`` whether sparse gradients are taken (as torch takes them);
    ``row_local`` says, for a group, whether a zero gradient leaves θ and the state
    unchanged, so that a sparse gradient need only update the rows it touches;
    ``initial_values`` gives state tensors that do not start at zero.
    """

    name: str
    update: Callable[[Tensor, Tensor, State, Hyper], tuple[Tensor, State]]
    numbers: tuple[str, ...]
    options: tuple[str, ...]
    step_scalars: Callable[[Hyper, Any], dict[str, Any]]
    step_numbers: tuple[str, ...]
    state_keys: Callable[[Hyper], tuple[str, ...]]
    pairs: tuple[tuple[str, tuple[str, str]], ...] = ()
    counts_steps: bool = True
    accepts_sparse: bool = False
    row_local: Callable[[Hyper], bool] = lambda hp: False
    initial_values: Callable[[Hyper], dict[str, float]] = lambda hp: {}

    def group_keys(self) -> tuple[str, ...]:
        """The param-group keys the rule reads (``betas`` rather than beta1, beta2)."""
        paired = {name for _, pair in self.pairs for name in pair}
        return (*(n for n in self.numbers if n not in paired), *(k for k, _ in self.pairs),
                *self.options)


def _sgd_state_keys(hp: Hyper) -> tuple[str, ...]:
    return ("momentum_buffer",) if hp["momentum"] != 0 else ()


def _rmsprop_state_keys(hp: Hyper) -> tuple[str, ...]:
    keys = ("square_avg",)
    if hp["momentum"] > 0:
        keys += ("momentum_buffer",)
    if hp["centered"]:
        keys += ("grad_avg",)
    return keys


def _adam_state_keys(hp: Hyper) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if hp["amsgrad"] else (
        "exp_avg",
        "exp_avg_sq",
    )


def _no_decay(hp: Hyper) -> bool:
    return hp["weight_decay"] == 0


SGD_RULE = Rule(
    "sgd",
    sgd,
    numbers=(*COMMON_NUMBERS, "momentum", "dampening"),
    options=(*COMMON_OPTIONS, "nesterov", "momentum_form", "lr_in_momentum"),
    step_scalars=sgd_scalars,
    step_numbers=("dampening_now",),
    state_keys=_sgd_state_keys,
    counts_steps=False,
    accepts_sparse=True,
    row_local=lambda hp: _no_decay(hp) and hp["momentum"] == 0,
)
ADAGRAD_RULE = Rule(
    "adagrad",
    adagrad,
    numbers=(*COMMON_NUMBERS, "lr_decay", "eps", "initial_accumulator_value"),
    options=(*COMMON_OPTIONS, "eps_placement"),
    step_scalars=adagrad_scalars,
    step_numbers=("decayed_lr",),
    state_keys=lambda hp: ("sum",),
    accepts_sparse=True,
    row_local=_no_decay,
    initial_values=lambda hp: {"sum": hp["initial_accumulator_value"]},
)
RMSPROP_RULE = Rule(
    "rmsprop",
    rmsprop,
    numbers=(*COMMON_NUMBERS, "alpha", "eps", "momentum", "initial_accumulator_value"),
    options=(*COMMON_OPTIONS, "centered", "eps_placement", "lr_in_momentum"),
    step_scalars=no_scalars,
    step_numbers=(),
    state_keys=_rmsprop_state_keys,
    initial_values=lambda hp: {"square_avg": hp["initial_accumulator_value"]},
)
ADAM_RULE = Rule(
    "adam",
    adam,
    numbers=(*COMMON_NUMBERS, "beta1", "beta2", "eps", "eps_root"),
    options=(*COMMON_OPTIONS, "amsgrad", "bias_correction", "eps_placement"),
    step_scalars=adam_scalars,
    step_numbers=("bias_correction1", "bias_correction2"),
    state_keys=_adam_state_keys,
    pairs=(("betas", ("beta1", "beta2")),),
)
