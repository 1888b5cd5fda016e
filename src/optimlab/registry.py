"""The registry of optimizers: each name users type, its class and its capabilities.

The recipe (``recipe(optimizer="momentum")``), the lab (``optimlab compare --optimizers
...``) and the tests read this one table; a new optimizer is added here once.

    >>> import torch
    >>> from optimlab import registry
    >>> registry.get("momentum").build([torch.zeros(3, requires_grad=True)]).defaults["momentum"]
    0.9
    >>> [c.__name__ for c in registry.classes()]
    ['SGD', 'Adagrad', 'RMSprop', 'Adam', 'AdamW', 'Adafactor', 'Muon']
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.hyperparameters import ArgumentError
from optimlab.optimizer import Optimizer
from optimlab.optimizers import SGD, Adafactor, Adagrad, Adam, AdamW, Muon, RMSprop


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
    Entry("adafactor", Adafactor, {},
          "Adafactor: factored second moment, step relative to RMS(θ)", 1e-2,
          torch.optim.Adafactor),
    Entry("muon", Muon, {},
          "Muon: momentum orthogonalised by Newton–Schulz (2-D params; AdamW groups beside)",
          0.02, torch.optim.Muon),
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
