"""The registry of optimizers: each name users type, its class and its capabilities.

The recipe (``recipe(optimizer="momentum")``), the lab (``optimlab compare --optimizers
...``) and the tests read this one table; a new optimizer is added here once.

    >>> import torch
    >>> from optimlab import registry
    >>> registry.get("momentum").build([torch.zeros(3, requires_grad=True)]).defaults["momentum"]
    0.9
    >>> [c.__name__ for c in registry.classes()][:5]   # the seeds' five come first
    ['SGD', 'Adagrad', 'RMSprop', 'Adam', 'AdamW']
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.hyperparameters import ArgumentError
from optimlab.optimizer import Optimizer
from optimlab.optimizers import (
    ASGD,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    AdamWScheduleFree,
    Lamb,
    Lion,
    Muon,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
    SGDScheduleFree,
)


@dataclass(frozen=True)
class Entry:
    """A name users type: a class, the keywords the name adds (``momentum`` is SGD with
    momentum 0.9), what it is, and what it can do.

    ``torch_twin``: the torch.optim class that follows the same equation under torch's
    conventions (None if torch has none); ``default_lr``: a starting lr for a task where
    nothing is known (torch's own SGD default, 1e-3, learns little in a few hundred
    steps).
    """

    name: str
    cls: type[Optimizer]
    overrides: Mapping[str, Any]
    description: str
    default_lr: float
    torch_twin: type[torch.optim.Optimizer] | None = field(default=None)
    space: tuple[Dimension, ...] | None = field(default=None)

    @property
    def search_space(self) -> tuple[Dimension, ...]:
        """What a benchmark tunes (``optimlab benchmark``): ``space`` if the entry gives
        one, else ``default_space(self)``, derived from the class's hyperparameters."""
        return self.space if self.space is not None else default_space(self)

    @property
    def sparse(self) -> bool:
        """Whether sparse gradients are taken (as torch takes them)."""
        return self.cls.rule.accepts_sparse

    @property
    def presets(self) -> tuple[str, ...]:
        return tuple(self.cls.presets)

    def keywords(self, **overrides: Any) -> dict[str, Any]:
        """The constructor keywords: the name's, then ``overrides``."""
        return {**self.overrides, **overrides}

    def build(self, params: Any, **overrides: Any) -> Optimizer:
        """The optimizer over ``params`` (tensors or param-group dicts)."""
        return self.cls(params, **self.keywords(**overrides))


@dataclass(frozen=True)
class Dimension:
    """One tuned number of a search space: a value in [low, high], drawn uniformly, or
    uniformly in log(value) when ``log``. With ``complement`` the drawn number is 1 − the
    value (momentum 0.9 is drawn as 0.1, so that a log scale spreads 0.9, 0.99, 0.999).
    ``key`` is the constructor keyword (``betas[0]``: the first of a pair), or ``warmup``,
    the recipe's warmup as a fraction of the steps."""

    key: str
    low: float
    high: float
    log: bool = False
    complement: bool = False

    def value(self, drawn: float) -> float:
        """The hyperparameter's value for a drawn number."""
        return 1.0 - drawn if self.complement else drawn


def default_space(entry: Entry) -> tuple[Dimension, ...]:
    """A search space read from the class's hyperparameters, so that an entry added to
    the table is tunable with no more code: the lr, log-uniform over three decades from
    ``default_lr``/10 to ``default_lr``·100 (a cautious starting point: the lrs tuned for
    the lab's tasks lie between 1 and 50 times it); the weight decay, log-uniform in
    [1e-5, 1e-1], where the class takes one; the momentum (1 − μ, log-uniform in
    [0.01, 0.3]) where the name steps with momentum, or β₁ of a ``betas`` pair alike (β₂
    stays: it matters little over a few hundred steps, and each dimension costs trials);
    the warmup, a fraction of the steps in [0, 0.1]."""
    specs = entry.cls.specs
    # a 1x1 matrix: a param every rule takes (Muon, a matrix rule, refuses vectors)
    defaults = entry.build([torch.nn.Parameter(torch.zeros(1, 1))]).defaults
    space = [Dimension("lr", entry.default_lr / 10, entry.default_lr * 100, log=True)]
    if "weight_decay" in specs:
        space.append(Dimension("weight_decay", 1e-5, 1e-1, log=True))
    if "betas" in specs:
        space.append(Dimension("betas[0]", 0.01, 0.3, log=True, complement=True))
    elif "momentum" in specs and defaults.get("momentum", 0) > 0:
        space.append(Dimension("momentum", 0.01, 0.3, log=True, complement=True))
    space.append(Dimension("warmup", 0.0, 0.1))
    return tuple(space)


OPTIMIZERS: dict[str, Entry] = {entry.name: entry for entry in (
    Entry("sgd", SGD, {}, "plain SGD: θ ← θ − η g", 0.05, torch.optim.SGD),
    Entry("momentum", SGD, {"momentum": 0.9}, "SGD with heavy-ball momentum 0.9", 0.01,
          torch.optim.SGD),
    Entry("nesterov", SGD, {"momentum": 0.9, "nesterov": True},
          "SGD with Nesterov momentum 0.9", 0.01, torch.optim.SGD),
    Entry("adagrad", Adagrad, {}, "AdaGrad: per-parameter lr η/√(Σg²)", 0.01,
          torch.optim.Adagrad),
    Entry("rmsprop", RMSprop, {}, "RMSprop: η/√(EMA of g²), α = 0.99", 1e-3,
          torch.optim.RMSprop),
    Entry("adam", Adam, {}, "Adam: momentum + RMSprop + bias correction", 1e-3,
          torch.optim.Adam),
    Entry("adamw", AdamW, {}, "AdamW: Adam with decoupled weight decay 0.01", 1e-3,
          torch.optim.AdamW),
    Entry("nadam", NAdam, {}, "NAdam: Adam with Nesterov momentum (Dozat)", 1e-3,
          torch.optim.NAdam),
    Entry("nadamw", NAdam, {"decoupled_weight_decay": True, "weight_decay": 0.01},
          "NAdamW: NAdam with decoupled weight decay 0.01 (AlgoPerf's baseline)", 1e-3,
          torch.optim.NAdam),
    Entry("radam", RAdam, {}, "RAdam: Adam with its adaptive lr rectified (Liu et al.)", 1e-3,
          torch.optim.RAdam),
    Entry("radamw", RAdam, {"decoupled_weight_decay": True, "weight_decay": 0.01},
          "RAdamW: RAdam with decoupled weight decay 0.01", 1e-3, torch.optim.RAdam),
    Entry("adamax", Adamax, {}, "Adamax: Adam with the infinity norm", 2e-3,
          torch.optim.Adamax),
    Entry("adadelta", Adadelta, {}, "Adadelta: η·RMS[Δθ]/RMS[g] (Zeiler)", 1.0,
          torch.optim.Adadelta),
    Entry("rprop", Rprop, {}, "Rprop: per-weight steps from gradient signs (full batch)",
          1e-3, torch.optim.Rprop),
    Entry("asgd", ASGD, {}, "ASGD: decaying SGD with an averaged iterate", 0.05,
          torch.optim.ASGD),
    Entry("adafactor", Adafactor, {},
          "Adafactor: factored second moment, step relative to RMS(θ)", 1e-2,
          torch.optim.Adafactor),
    Entry("muon", Muon, {},
          "Muon: momentum orthogonalised by Newton–Schulz (2-D params; AdamW groups beside)",
          0.02, torch.optim.Muon),
    Entry("lion", Lion, {}, "Lion: θ ← θ − η sign(β₁m + (1 − β₁)g), decoupled decay", 1e-4),
    Entry("lamb", Lamb, {}, "LAMB: Adam scaled per tensor by ‖θ‖/‖u‖, global clip 1.0",
          1e-2),
    Entry("adamw_schedulefree", AdamWScheduleFree, {},
          "schedule-free AdamW: Adam's step at y, evaluated at the average x", 2.5e-3, None),
    Entry("sgd_schedulefree", SGDScheduleFree, {},
          "schedule-free SGD: SGD's step at y, evaluated at the average x", 0.1, None),
)}


def get(name: str) -> Entry:
    """The entry of ``name``; an unknown name is refused with the closest valid one."""
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(name, OPTIMIZERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ArgumentError(f"optimizer={name!r} is not a registered optimizer{hint}; "
                            f"valid: one of {list(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def classes() -> list[type[Optimizer]]:
    """Each optimizer class once, in the registry's order."""
    return list(dict.fromkeys(entry.cls for entry in OPTIMIZERS.values()))


def torch_twin(cls: type[Optimizer]) -> type[torch.optim.Optimizer] | None:
    """The torch.optim class of the same name and equation, if torch has one."""
    return next((e.torch_twin for e in OPTIMIZERS.values() if e.cls is cls), None)
