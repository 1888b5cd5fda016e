"""Schedule-free AdamW and SGD (rules/schedulefree.py), drop-in for the classes of
facebookresearch's ``schedulefree`` package: its keywords in its positions, its defaults,
its group keys (``k``, ``weight_sum``, ``lr_max``, ``scheduled_lr``, ``train_mode``) and
state names (``z``, ``exp_avg_sq``), and its ``train()`` / ``eval()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from optimlab import codecs
from optimlab.hyperparameters import FLAG, OPTIONAL_FLAG, STATE_DTYPES, ArgumentError, Pair
from optimlab.optimizer import Optimizer
from optimlab.optimizers.common import NONNEGATIVE, UNIT
from optimlab.rules.schedulefree import ADAMW_SCHEDULEFREE_RULE, SGD_SCHEDULEFREE_RULE

#: what every group starts with besides its hyperparameters: the values the rule keeps
#: across steps (the package's initial values) and the mode. optimlab starts in train mode
#: (the package starts in eval mode and refuses to step until train() is called; before
#: the first step there is no z, so train() and eval() move nothing either way)
_KEPT = {"k": 0, "weight_sum": 0.0, "lr_max": -1.0, "scheduled_lr": 0.0, "train_mode": True}
# foreach: the keyword's default is the package's, True; None given is kept as None
_RUN = {"foreach": None, "maximize": False, "differentiable": False, "state_dtype": None}
_SPECS = {"lr": NONNEGATIVE, "weight_decay": NONNEGATIVE, "warmup_steps": NONNEGATIVE,
          "r": NONNEGATIVE, "weight_lr_power": NONNEGATIVE, "maximize": FLAG,
          "foreach": OPTIONAL_FLAG, "differentiable": FLAG, "state_dtype": STATE_DTYPES}


class ScheduleFree(Optimizer):
    """What schedule-free AdamW and SGD share: the mode (``train()`` / ``eval()``), and a
    step refused in eval mode.

    While training the params hold y, where gradients are taken; ``eval()`` moves each
    param that has a ``z`` to the average x = (y − (1 − β) z)/β, i.e.
    p ← p + (1 − 1/β)(z − p), and ``train()`` back to y = (1 − β) z + β x, i.e.
    p ← p + (1 − β)(z − p), as the package does. Call ``eval()`` before evaluating or
    saving the model, ``train()`` before the next step.
    """

    #: the group key that holds β, the weight of x in y (betas[0] or momentum)
    beta_name: ClassVar[str]

    def beta(self, group: Mapping[str, Any]) -> float:
        """β of ``group``: the weight of x in y = (1 − β) z + β x."""
        value = group["betas"][0] if self.beta_name == "betas[0]" else group[self.beta_name]
        return float(value)

    def check_relations(self, owner: str, group: Mapping[str, Any]) -> None:
        if self.beta(group) == 0:
            raise ArgumentError(f"{owner}: {self.beta_name}=0 is invalid (eval() moves the "
                                "params to x = (y − (1 − β) z)/β); valid: "
                                f"0 < {self.beta_name} < 1")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One schedule-free step at y; refused (nothing changed, the closure not called)
        in eval mode, where the params hold x."""
        for index, group in enumerate(self.param_groups):
            if not group["train_mode"]:
                raise RuntimeError(
                    f"{type(self).__name__}.step() called in eval mode (param group {index} "
                    "has train_mode=False: its params hold the averaged point x, not the "
                    "training point y); call optimizer.train() before training steps and "
                    "optimizer.eval() before evaluating or saving")
        return super().step(closure)

    @torch.no_grad()
    def eval(self) -> None:
        """Move the params to the averaged point x, where the model is evaluated."""
        self._move(train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Move the params back to the training point y, where gradients are taken."""
        self._move(train=True)

    def _move(self, train: bool) -> None:
        for group in self.param_groups:
            if bool(group["train_mode"]) == train:
                continue
            beta = self.beta(group)
            weight = 1 - beta if train else 1 - 1 / beta
            for param in group["params"]:
                if codecs.stored_form(self.state.get(param, {}), "z") is not None:
                    _lerp(param, self.moment(param, "z"), weight)
            group["train_mode"] = train


def _lerp(param: Tensor, z: Tensor, weight: float) -> None:
    """p ← p + w (z − p): torch's lerp, as the package computes it, in the param's dtype;
    through z's precision (the decoded moment) where the param's is narrower."""
    if z.dtype == param.dtype:
        param.lerp_(z, weight)
    else:
        param.copy_(param.to(z.dtype).lerp_(z, weight))


class AdamWScheduleFree(ScheduleFree):
    """Schedule-free AdamW (Defazio et al. 2024) — ``rules.adamw_schedulefree``.

        v ← β₂ v + (1 − β₂) g² ;  u = g / (√(v / (1 − β₂ᵗ)) + ε) + λ y
        y ← y + c (z − y) + η_t (β₁ (1 − c) − 1) u ;   z ← z − η_t u

    with c = c_{t+1} = w_t / Σ w, w_t = tʳ · lr_maxᵖ and η_t the lr after warmup.

    Args (schedulefree.AdamWScheduleFree's, in its order): lr (0.0025), betas
    ((0.9, 0.999); β₁ is the interpolation weight, 0 < β₁ < 1), eps (1e-8), weight_decay
    (0; λy added to the direction: decay taken at y), warmup_steps (0: η_t = η·t/warmup
    while t <= warmup), r (0: the power of t in the averaging weights), weight_lr_power
    (2: the power of the largest lr so far in them), foreach (kept in the groups, as
    torch's; optimlab's engine runs the step). Keyword-only: maximize, differentiable,
    state_dtype, engine, nonfinite (as for SGD).

    Call ``optimizer.eval()`` before evaluating or saving and ``optimizer.train()``
    before training steps (``ScheduleFree``).
    """

    rule = ADAMW_SCHEDULEFREE_RULE
    beta_name = "betas[0]"
    specs = {**_SPECS, "betas": Pair(UNIT), "eps": NONNEGATIVE}
    presets = {"torch": {"lr": 0.0025, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                         "warmup_steps": 0, "r": 0.0, "weight_lr_power": 2.0, **_RUN,
                         **_KEPT}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None, warmup_steps: int | None = None,
                 r: float | None = None, weight_lr_power: float | None = None,
                 foreach: bool | None = True, *, maximize: bool = False,
                 differentiable: bool = False, state_dtype: torch.dtype | None = None,
                 preset: str = "torch", engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                     warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)


class SGDScheduleFree(ScheduleFree):
    """Schedule-free SGD (Defazio et al. 2024) — ``rules.sgd_schedulefree``.

        u = g + λ y ;  y ← y + c (z − y) + η_t (μ (1 − c) − 1) u ;   z ← z − η_t u

    Args (schedulefree.SGDScheduleFree's, in its order): lr (1.0), momentum (0.9: the
    interpolation weight β, 0 < momentum < 1), weight_decay (0, at y), warmup_steps (0),
    r (0), weight_lr_power (2), foreach; keyword-only as AdamWScheduleFree.
    """

    rule = SGD_SCHEDULEFREE_RULE
    beta_name = "momentum"
    specs = {**_SPECS, "momentum": UNIT}
    presets = {"torch": {"lr": 1.0, "momentum": 0.9, "weight_decay": 0.0, "warmup_steps": 0,
                         "r": 0.0, "weight_lr_power": 2.0, **_RUN, **_KEPT}}

    def __init__(self, params: Any, lr: float | Tensor | None = None,
                 momentum: float | None = None, weight_decay: float | None = None,
                 warmup_steps: int | None = None, r: float | None = None,
                 weight_lr_power: float | None = None, foreach: bool | None = True, *,
                 maximize: bool = False, differentiable: bool = False,
                 state_dtype: torch.dtype | None = None, preset: str = "torch",
                 engine: str = "auto", nonfinite: str = "ignore") -> None:
        given = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                     warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power,
                     foreach=foreach, maximize=maximize, differentiable=differentiable,
                     state_dtype=state_dtype)
        super().__init__(params, given, preset=preset, engine=engine, nonfinite=nonfinite)
