"""SGD, Adagrad, RMSprop, Adam and AdamW: drop-in replacements for torch.optim's.

Each accepts every keyword its torch.optim namesake accepts (torch 2.13), in the same
positions, with the same meaning and default, plus the convention options of the seeds.
A keyword left at ``None`` takes the preset's default; ``preset="torch"`` (the default)
gives torch.optim's defaults, ``"keras"`` Keras 3's, ``"optax"`` optax's
and, for RMSprop, ``"timm_tf"`` timm's RMSpropTF: each preset sets that framework's
conventions (where ε goes, where the lr meets the momentum, how weight decay acts, what
the accumulators start at) and its default numbers. Where a framework has no default
(optax's learning rate), torch's is kept. Explicit keywords override the preset.
``foreach``, ``fused`` and ``capturable`` choose how torch.optim runs its step, never
its math: optimlab accepts them, keeps them in the param groups (so checkpoints load both
ways) and runs its own engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from optimlab import state
from optimlab.hyperparameters import (
    FLAG,
    OPTIONAL_FLAG,
    STATE_DTYPES,
    ArgumentError,
    Choice,
    Pair,
    Range,
)
from optimlab.optimizer import Optimizer
from optimlab.rules import (
    ADAGRAD_RULE,
    ADAM_EPS_PLACEMENTS,
    ADAM_RULE,
    EPS_PLACEMENTS,
    MOMENTUM_FORMS,
    RMSPROP_RULE,
    SGD_RULE,
    WEIGHT_DECAY_FORMS,
)

NONNEGATIVE = Range(0.0)
UNIT = Range(0.0, 1.0)  # [0, 1)

COMMON_SPECS = {
    "lr": NONNEGATIVE,
    "weight_decay": NONNEGATIVE,
    "weight_decay_form": Choice(WEIGHT_DECAY_FORMS),
    "maximize": FLAG,
    "foreach": OPTIONAL_FLAG,
    "fused": OPTIONAL_FLAG,
    "differentiable": FLAG,
    "state_dtype": STATE_DTYPES,
}
TORCH_RUN_OPTIONS = {"foreach": None, "fused": None, "differentiable": False,
                     "state_dtype": None, "maximize": False, "weight_decay_form": "l2"}

_SGD_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-3, "momentum": 0.0, "dampening": 0.0,
              "weight_decay": 0.0, "nesterov": False, "momentum_form": "heavy_ball",
              "lr_in_momentum": False}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum — ``rules.sgd``.

        v ← μ v + (1 − τ) g       (``momentum_form="heavy_ball"``, torch's; v₁ = g)
        v ← μ v + (1 − μ) g       (``momentum_form="ema"``, seed 001; v₀ = 0)
        θ ← θ − η v               (Nesterov: θ ← θ − η (g + μ v), resp. ((1 − μ) g + μ v))

    Args (beyond torch.optim.SGD's ``lr=1e-3, momentum=0, dampening=0, weight_decay=0,
    nesterov=False, maximize, foreach, differentiable, fused``):
        momentum_form: ``"heavy_ball"`` (default) or ``"ema"``. EMA momentum at lr η moves
            exactly as heavy-ball momentum at lr η(1 − μ).
        lr_in_momentum: False (torch, optax: v ← μv + g, θ ← θ − ηv) or True (Keras/TF:
            v ← μv + ηg, θ ← θ − v). The same path at a constant lr; not under a schedule.
        weight_decay_form: ``"l2"`` (default, g ← g + λθ), ``"decoupled"`` (θ ← θ(1 − ηλ)),
            ``"independent"`` (θ ← θ(1 − λ)).
        state_dtype: how the moments are stored (codecs.py): None (default) in the param's
            dtype, as torch; ``torch.float32``/``float64`` for all tensors;
            ``torch.bfloat16`` or ``torch.int8`` (8-bit blockwise codes with an fp32 scale
            per 256 elements, ~2 bytes per parameter for Adam) for tensors of 4096 elements
            or more, smaller ones keeping the param's dtype. ``optimizer.moment(p, key)``
            gives a moment as fp32 whatever its storage.
        preset: whose conventions and defaults to take: ``"torch"`` (default),
            ``"keras"`` (lr=0.01, lr_in_momentum=True, weight_decay_form="decoupled", as
            Keras 3 applies weight decay for every optimizer) or ``"optax"`` (torch's).
        engine: how to run the step, never its math (engines.py): ``"auto"`` (default:
            torch's fused kernel where the configuration is torch's, else a compiled kernel
            for groups of 2**20 elements or 100 tensors or more, else eager), ``"native"``,
            ``"compiled"`` (torch.compile of the same rule) or ``"reference"`` (eager).
        nonfinite: what a NaN or Inf gradient does: ``"ignore"`` (default, as torch.optim:
            it flows into params and state), ``"skip"`` (the whole step is skipped, nothing
            changes, ``optimizer.skipped_steps`` counts it) or ``"raise"``
            (FloatingPointError naming the parameter, before anything changes).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    rule = SGD_RULE
    specs = {**COMMON_SPECS, "momentum": UNIT, "dampening": Range(0.0, 1.0, closed=True),
             "nesterov": FLAG, "momentum_form": Choice(MOMENTUM_FORMS),
             "lr_in_momentum": FLAG}
    presets = {"torch": _SGD_TORCH,
               # keras.optimizers.SGD: m ← μm − ηg, θ ← θ + m (Nesterov: θ ← θ + μm − ηg)
               "keras": {**_SGD_TORCH, "lr": 1e-2, "lr_in_momentum": True,
                         "weight_decay_form": "decoupled"},
               # optax.sgd: trace(μ) then scale_by_learning_rate, i.e. torch's heavy ball
               "optax": _SGD_TORCH}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 momentum: float | None = None, dampening: float | None = None,
                 weight_decay: float | Tensor | None = None, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None,
                 momentum_form: str | None = None, lr_in_momentum: bool | None = None,
                 weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                     nesterov=nesterov, maximize=maximize, foreach=foreach,
                     differentiable=differentiable, fused=fused, momentum_form=momentum_form,
                     lr_in_momentum=lr_in_momentum, weight_decay_form=weight_decay_form,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ArgumentError(f"{owner}: nesterov=True is invalid with momentum="
                                f"{group['momentum']!r}, dampening={group['dampening']!r}; "
                                "valid: momentum > 0 and dampening = 0")
        if group["momentum_form"] == "ema" and group["dampening"] != 0:
            raise ArgumentError(f"{owner}: dampening={group['dampening']!r} has no meaning with "
                                "momentum_form='ema' (its gradient weight is 1 - momentum); "
                                "valid: dampening=0")


_ADAGRAD_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                  "initial_accumulator_value": 0.0, "eps": 1e-10, "eps_placement": "outside"}
# keras.optimizers.Adagrad and optax.adagrad (scale_by_rss) alike: G₀ = 0.1, g / √(G + 1e-7)
_ADAGRAD_TF = {**_ADAGRAD_TORCH, "initial_accumulator_value": 0.1, "eps": 1e-7,
               "eps_placement": "inside"}


class Adagrad(Optimizer):
    """AdaGrad — ``rules.adagrad``.

        G ← G + g² ;   θ ← θ − η_t g / (√G + ε)    with η_t = η / (1 + (t − 1)·lr_decay)

    Args (beyond torch.optim.Adagrad's ``lr=1e-2, lr_decay=0, weight_decay=0,
    initial_accumulator_value=0, eps=1e-10, foreach, maximize, differentiable, fused``):
        eps_placement: ``"outside"`` (default, torch: √G + ε) or ``"inside"``
            (seed 002, Keras, optax: √(G + ε)).
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, initial_accumulator_value=0.1,
            eps=1e-7, eps_placement="inside", weight_decay_form="decoupled"); ``"optax"``
            (initial_accumulator_value=0.1, eps=1e-7, eps_placement="inside").
        weight_decay_form, state_dtype, engine, nonfinite: as for SGD.

    Sparse gradients are taken as torch takes them; with no weight decay only the rows a
    sparse gradient touches are updated.
    """

    rule = ADAGRAD_RULE
    specs = {**COMMON_SPECS, "lr_decay": NONNEGATIVE, "initial_accumulator_value": NONNEGATIVE,
             "eps": NONNEGATIVE, "eps_placement": Choice(EPS_PLACEMENTS)}
    presets = {"torch": _ADAGRAD_TORCH,
               "keras": {**_ADAGRAD_TF, "lr": 1e-3, "weight_decay_form": "decoupled"},
               "optax": _ADAGRAD_TF}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 lr_decay: float | None = None, weight_decay: float | None = None,
                 initial_accumulator_value: float | None = None, eps: float | None = None,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 eps_placement: str | None = None, weight_decay_form: str | None = None,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                     initial_accumulator_value=initial_accumulator_value, eps=eps,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     fused=fused, eps_placement=eps_placement,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
        # torch.optim.Adagrad creates its state at construction; so do we, so that a
        # checkpoint taken before the first step loads into torch.optim.Adagrad too.
        for group in self.param_groups:
            for param in group["params"]:
                state.prepare(self.view(group), param, self.state[param])


_RMSPROP_TORCH = {**TORCH_RUN_OPTIONS, "lr": 1e-2, "alpha": 0.99, "eps": 1e-8,
                  "weight_decay": 0.0, "momentum": 0.0, "centered": False, "capturable": False,
                  "eps_placement": "outside", "lr_in_momentum": False,
                  "initial_accumulator_value": 0.0}
# the TensorFlow family (Keras, optax, timm's RMSpropTF): ε inside the root, the lr applied
# before the momentum buffer, α = 0.9
_RMSPROP_TF = {**_RMSPROP_TORCH, "alpha": 0.9, "eps_placement": "inside",
               "lr_in_momentum": True}


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum — ``rules.rmsprop``.

        E[g²] ← α E[g²] + (1 − α) g² ;   θ ← θ − η g / (√E[g²] + ε)

    Args (beyond torch.optim.RMSprop's ``lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
    momentum=0, centered=False, capturable, foreach, maximize, differentiable``):
        eps_placement: ``"outside"`` (default; torch, seeds 001/003: √s + ε) or
            ``"inside"`` (seed 000, TensorFlow: √(s + ε)).
        lr_in_momentum: False (torch: b ← μb + g/r, θ ← θ − ηb) or True (Keras/TF, optax,
            timm: b ← μb + ηg/r, θ ← θ − b). The same path at a constant lr only.
        initial_accumulator_value: E[g²]₀ (default 0; timm's RMSpropTF starts at 1).
        preset: ``"torch"`` (default); ``"keras"`` (lr=1e-3, alpha=0.9, eps=1e-7,
            eps_placement="inside", lr_in_momentum=True, weight_decay_form="decoupled");
            ``"optax"`` (alpha=0.9, eps=1e-8, eps_placement="inside", lr_in_momentum=True);
            ``"timm_tf"`` (alpha=0.9, eps=1e-10, eps_placement="inside",
            initial_accumulator_value=1, lr_in_momentum=True).
        weight_decay_form, state_dtype, engine, nonfinite: as for SGD.
    """

    rule = RMSPROP_RULE
    specs = {**COMMON_SPECS, "alpha": UNIT, "eps": NONNEGATIVE, "momentum": UNIT,
             "centered": FLAG, "capturable": FLAG, "eps_placement": Choice(EPS_PLACEMENTS),
             "lr_in_momentum": FLAG, "initial_accumulator_value": NONNEGATIVE}
    presets = {"torch": _RMSPROP_TORCH,
               # keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-7)
               "keras": {**_RMSPROP_TF, "lr": 1e-3, "eps": 1e-7,
                         "weight_decay_form": "decoupled"},
               # optax.rmsprop(decay=0.9, eps=1e-8, eps_in_sqrt=True, initial_scale=0)
               "optax": {**_RMSPROP_TF, "eps": 1e-8},
               # timm.optim.RMSpropTF(lr=1e-2, alpha=0.9, eps=1e-10): square_avg starts at 1
               "timm_tf": {**_RMSPROP_TF, "eps": 1e-10, "initial_accumulator_value": 1.0}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 alpha: float | None = None, eps: float | None = None,
                 weight_decay: float | None = None, momentum: float | None = None,
                 centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, *, eps_placement: str | None = None,
                 lr_in_momentum: bool | None = None,
                 initial_accumulator_value: float | None = None,
                 weight_decay_form: str | None = None, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto",
                 nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                     centered=centered, capturable=capturable, foreach=foreach,
                     maximize=maximize, differentiable=differentiable,
                     eps_placement=eps_placement, lr_in_momentum=lr_in_momentum,
                     initial_accumulator_value=initial_accumulator_value,
                     weight_decay_form=weight_decay_form, state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)


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
