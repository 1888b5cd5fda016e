"""Optimizer specs: ``name[:key=value,...]`` -> an optimlab optimizer, checked up front.

    adam                               Adam with the task's default lr
    adam:lr=3e-4,bias_correction=false
    sgd:momentum=0.9,nesterov=true
    adamw:betas=0.9/0.95,weight_decay_form=independent,weight_decay=1e-4
    rmsprop:eps_placement=inside,engine=reference

The valid keys and how to read each value are not listed here: they come from the
optimizer class itself, so an option added to the core is reachable the day it lands.
A key is valid when the constructor takes it (``inspect.signature``); its value is read by
the class's ``specs`` entry for that key (``Range`` -> a number, ``Pair`` -> ``a/b``,
``Choice`` -> one of its values written as text), or, for constructor-only keywords such as
``preset`` and ``engine``, by the type of the keyword's default. A probe optimizer is then
built on a one-element tensor, so a value the class refuses is refused here, before any
training starts, with the class's own message (it names the valid range).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab import SGD, Adagrad, Adam, AdamW, ArgumentError, Optimizer, RMSprop, engines
from optimlab.hyperparameters import Choice, Pair, Range


class SpecError(ValueError):
    """An optimizer spec the lab cannot build; the message names the bad part."""


@dataclass(frozen=True)
class NamedOptimizer:
    """A name users type: an optimizer class plus overrides (``momentum`` = SGD + 0.9)."""

    cls: type[Optimizer]
    overrides: dict[str, Any]
    description: str


NAMED: dict[str, NamedOptimizer] = {
    "sgd": NamedOptimizer(SGD, {}, "plain SGD: θ ← θ − η g"),
    "momentum": NamedOptimizer(SGD, {"momentum": 0.9}, "SGD with heavy-ball momentum 0.9"),
    "nesterov": NamedOptimizer(SGD, {"momentum": 0.9, "nesterov": True},
                               "SGD with Nesterov momentum 0.9"),
    "adagrad": NamedOptimizer(Adagrad, {}, "AdaGrad: per-parameter lr η/√(Σg²)"),
    "rmsprop": NamedOptimizer(RMSprop, {}, "RMSprop: η/√(EMA of g²), α = 0.99"),
    "adam": NamedOptimizer(Adam, {}, "Adam: momentum + RMSprop + bias correction"),
    "adamw": NamedOptimizer(AdamW, {}, "AdamW: Adam with decoupled weight decay 0.01"),
}

# Constructor-only keywords whose valid values live elsewhere than in ``specs``; used to
# describe them only (the probe optimizer checks them).
KEYWORD_CHOICES = {"preset": lambda cls: tuple(cls.presets),
                   "engine": lambda cls: tuple(engines.ENGINES)}
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


def value_text(value: Any) -> str:
    """How a value is written in a spec (the inverse of parsing)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)  # never round a value away
    if isinstance(value, (tuple, list)):
        return "/".join(value_text(item) for item in value)
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    return str(value)


@dataclass(frozen=True)
class OptimizerSpec:
    """A parsed spec: which optimizer, with which keyword overrides.

    ``name`` is the user's name (``momentum``), ``overrides`` the keywords passed to the
    class on top of the name's own; ``label`` is the canonical text, used in reports.
    """

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type[Optimizer]:
        return NAMED[self.name].cls

    @property
    def label(self) -> str:
        if not self.overrides:
            return self.name
        pairs = ",".join(f"{key}={value_text(v)}" for key, v in self.overrides.items())
        return f"{self.name}:{pairs}"

    def keywords(self, default_lr: float | None = None) -> dict[str, Any]:
        """The constructor keywords: the name's, then the task's lr, then the user's."""
        keywords = dict(NAMED[self.name].overrides)
        if default_lr is not None:
            keywords["lr"] = default_lr
        return {**keywords, **self.overrides}

    def build(self, params: Any, default_lr: float | None = None) -> Optimizer:
        """The optimizer over ``params`` (tensors or param-group dicts)."""
        return self.cls(params, **self.keywords(default_lr))

    def with_overrides(self, **overrides: Any) -> OptimizerSpec:
        """This spec with more overrides (the sweep sets ``lr`` this way)."""
        return OptimizerSpec(self.name, {**self.overrides, **overrides})


def valid_keys(cls: type[Optimizer]) -> dict[str, inspect.Parameter]:
    """Every keyword the constructor takes, except ``params``."""
    parameters = inspect.signature(cls.__init__).parameters
    return {name: p for name, p in parameters.items()
            if name not in ("self", "params")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def describe_key(cls: type[Optimizer], key: str) -> str:
    """``key`` and the values it takes, for ``optimlab optimizers`` and error messages."""
    spec = cls.specs.get(key)
    if isinstance(spec, Range):
        return spec.describe(key)
    if isinstance(spec, Pair):
        return f"{key}=a/b with {spec.each.describe('a')}, {spec.each.describe('b')}"
    if isinstance(spec, Choice):
        return f"{key} in {{{', '.join(value_text(v) for v in spec.values)}}}"
    if key in KEYWORD_CHOICES:
        return f"{key} in {{{', '.join(KEYWORD_CHOICES[key](cls))}}}"
    return f"{key} (default {value_text(valid_keys(cls)[key].default)})"


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError(f"not a flag; write one of {sorted(TRUE_WORDS | FALSE_WORDS)}")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number") from None


def _choice(spec: Choice, text: str) -> Any:
    forms: dict[str, Any] = {}
    for value in spec.values:
        forms[value_text(value).lower()] = value
        forms[str(value).lower()] = value
    if all(isinstance(v, bool) or v is None for v in spec.values):
        # flags: also yes/no, on/off, 1/0
        forms.update({word: True for word in TRUE_WORDS if True in spec.values})
        forms.update({word: False for word in FALSE_WORDS if False in spec.values})
    if text.lower() not in forms:
        choices = ", ".join(value_text(v) for v in spec.values)
        raise ValueError(f"not one of {{{choices}}}")
    return forms[text.lower()]


def _guess(default: Any, text: str) -> Any:
    """A constructor-only keyword's value, read as the type of its default."""
    if isinstance(default, bool):
        return _flag(text)
    if isinstance(default, (int, float)):
        return type(default)(_number(text))
    if default is None and text.lower() == "none":
        return None
    return text


def convert(cls: type[Optimizer], key: str, text: str) -> Any:
    """The value of ``key=text`` for ``cls``; ValueError with the reason if unreadable."""
    spec = cls.specs.get(key)
    if isinstance(spec, Range):
        return _number(text)
    if isinstance(spec, Pair):
        parts = text.split("/")
        if len(parts) != 2:
            raise ValueError("not a pair; write two numbers as a/b, e.g. 0.9/0.999")
        return (_number(parts[0]), _number(parts[1]))
    if isinstance(spec, Choice):
        return _choice(spec, text)
    return _guess(valid_keys(cls)[key].default, text)


def _unknown_name(name: str) -> SpecError:
    close = difflib.get_close_matches(name, NAMED, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(f"unknown optimizer {name!r}{hint}; valid names: {', '.join(NAMED)}")


def _unknown_key(text: str, name: str, key: str, cls: type[Optimizer]) -> SpecError:
    keys = list(valid_keys(cls))
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(f"optimizer spec {text!r}: {name} has no option {key!r}{hint}; "
                     f"valid options: {', '.join(keys)}")


def parse_spec(text: str) -> OptimizerSpec:
    """Parse ``name[:key=value,...]`` and check it by building a probe optimizer."""
    text = text.strip()
    name, _, options = text.partition(":")
    name = name.strip().lower()
    if name not in NAMED:
        raise _unknown_name(name)
    cls = NAMED[name].cls
    overrides: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, equals, raw = (piece.strip() for piece in item.partition("="))
        if not equals or not raw:
            raise SpecError(f"optimizer spec {text!r}: {item!r} is not key=value")
        if key not in valid_keys(cls):
            raise _unknown_key(text, name, key, cls)
        if key in overrides:
            raise SpecError(f"optimizer spec {text!r}: {key} is given twice")
        try:
            overrides[key] = convert(cls, key, raw)
        except ValueError as error:
            raise SpecError(f"optimizer spec {text!r}: {key}={raw!r} is {error}; valid: "
                            f"{describe_key(cls, key)}") from None
    spec = OptimizerSpec(name, overrides)
    check(spec, text)
    return spec


def check(spec: OptimizerSpec, text: str | None = None) -> None:
    """Build ``spec`` on a probe tensor so the class's own checks run now."""
    probe = torch.nn.Parameter(torch.ones(1))
    try:
        spec.build([probe])
    except ArgumentError as error:
        raise SpecError(f"optimizer spec {text or spec.label!r}: {error}") from None


def as_spec(item: str | OptimizerSpec) -> OptimizerSpec:
    """A spec from its text, or the spec itself (the Python API takes both)."""
    return item if isinstance(item, OptimizerSpec) else parse_spec(item)
