"""Hyperparameter specs: each says what values are valid and says so when one is not.

Every message names the optimizer, the argument, the value given and the valid range,
e.g. ``Adam: betas[1]=1.0 is invalid; valid: 0 <= betas[1] < 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


class ArgumentError(ValueError, TypeError):
    """A constructor or param-group argument the optimizer refuses.

    A ValueError as the issue of optimlab asks, and a TypeError too, so that code written
    against torch.optim (which raises TypeError for non-tensor params) still catches it.
    """


def _number(owner: str, name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ArgumentError(f"{owner}: {name} is a tensor of shape {tuple(value.shape)}; "
                                "valid: a number or a 1-element tensor")
        return float(value.detach())  # checked as a number; the tensor itself is kept
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"{owner}: {name}={value!r} is not a number; valid: a real number")
    return float(value)


@dataclass(frozen=True)
class Range:
    """A real number in [low, high) (or [low, high] when ``closed``)."""

    low: float = 0.0
    high: float = math.inf
    closed: bool = False

    def describe(self, name: str) -> str:
        if self.high == math.inf:
            return f"{name} >= {self.low:g} (finite)"
        upper = "<=" if self.closed else "<"
        return f"{self.low:g} <= {name} {upper} {self.high:g}"

    def check(self, owner: str, name: str, value: Any) -> None:
        number = _number(owner, name, value)
        above = number > self.high if self.closed else number >= self.high
        if math.isnan(number) or math.isinf(number) or number < self.low or above:
            raise ArgumentError(f"{owner}: {name}={value!r} is invalid; "
                                f"valid: {self.describe(name)}")


@dataclass(frozen=True)
class Pair:
    """A pair of numbers, each in ``each`` (Adam's betas)."""

    each: Range

    def check(self, owner: str, name: str, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ArgumentError(f"{owner}: {name}={value!r} is invalid; valid: a pair "
                                f"({self.each.describe(name + '[0]')}, "
                                f"{self.each.describe(name + '[1]')})")
        for index, item in enumerate(value):
            self.each.check(owner, f"{name}[{index}]", item)


@dataclass(frozen=True)
class OptionalFirstPair(Pair):
    """A pair whose first item may also be None (Adafactor's ``eps=(None, 1e-3)``: ε₁ None
    means the machine epsilon of the param's dtype)."""

    def check(self, owner: str, name: str, value: Any) -> None:
        if isinstance(value, (tuple, list)) and len(value) == 2 and value[0] is None:
            self.each.check(owner, f"{name}[1]", value[1])
            return
        super().check(owner, name, value)


@dataclass(frozen=True)
class Numbers:
    """A fixed number of reals, each in ``each`` (Muon's ``ns_coefficients`` (a, b, c))."""

    count: int
    each: Range

    def check(self, owner: str, name: str, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != self.count:
            raise ArgumentError(f"{owner}: {name}={value!r} is invalid; valid: a tuple of "
                                f"{self.count} numbers ({self.each.describe('each')})")
        for index, item in enumerate(value):
            self.each.check(owner, f"{name}[{index}]", item)


@dataclass(frozen=True)
class Whole(Range):
    """An integer in [low, high) (Muon's ``ns_steps``)."""

    def describe(self, name: str) -> str:
        return f"{name} an integer, {super().describe(name)}"

    def check(self, owner: str, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{owner}: {name}={value!r} is invalid; "
                                f"valid: {self.describe(name)}")
        super().check(owner, name, value)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (convention options)."""

    values: tuple[Any, ...]

    def check(self, owner: str, name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor) or value not in self.values:
            raise ArgumentError(f"{owner}: {name}={value!r} is invalid; "
                                f"valid: one of {list(self.values)}")


@dataclass(frozen=True)
class Optional_:
    """None (the feature off, as timm's ``max_grad_norm=None``), or a value of ``spec``."""

    spec: Range

    def check(self, owner: str, name: str, value: Any) -> None:
        if value is not None:
            try:
                self.spec.check(owner, name, value)
            except ArgumentError as error:
                raise ArgumentError(f"{error} (or None)") from None


FLAG = Choice((False, True))
OPTIONAL_FLAG = Choice((None, False, True))
STATE_DTYPES = Choice((None, torch.float32, torch.float64, torch.bfloat16, torch.float16,
                       torch.int8))
