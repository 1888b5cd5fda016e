"""Optimizer specs: ``name[:key=value,...]`` -> an optimlab optimizer, checked up front.

    adam                               Adam with the task's default lr
    adam:lr=3e-4,bias_correction=false
    sgd:momentum=0.9,nesterov=true
    adamw:betas=0.9/0.95,weight_decay_form=independent,weight_decay=1e-4
    rmsprop:eps_placement=inside,engine=reference
    adamw:schedule=constant,warmup=0   the lab's training options, per spec

The valid keys and how to read each value are not listed here: they come from the
optimizer class itself, so an option added to the core is reachable the day it lands.
A key is valid when the constructor takes it (``inspect.signature``); its value is read by
the class's ``specs`` entry for that key (``Range`` -> a number, ``Pair`` -> ``a/b``,
``Choice`` -> one of its values written as text), or, for constructor-only keywords such as
``preset`` and ``engine``, by the type of the keyword's default. A probe optimizer is then
built on a one-element tensor, so a value the class refuses is refused here, before any
training starts, with the class's own message (it names the valid range).

Three keys are the lab's, not the optimizer's: ``schedule``, ``warmup`` and ``clip`` set
how this spec trains (``optimlab.recipe``), so that one comparison can hold warmup vs
none or cosine vs constant. The Python API also takes optimizer classes
(``torch.optim.Adam``, ``optimlab.AdamW``) as specs (``spec_of_class``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab import ArgumentError, Optimizer, engines, registry
from optimlab.hyperparameters import Choice, Numbers, Optional_, Pair, Range
from optimlab.nonfinite import POLICIES as NONFINITE_POLICIES
from optimlab.schedules import SCHEDULES


class SpecError(ValueError):
    """An optimizer spec the lab cannot build; the message names the bad part."""


# The names users type: the core's registry (name -> class, the keywords the name adds, a
# description). The lab looks a name up only through ``named`` (below).
NAMED: Mapping[str, registry.Entry] = registry.OPTIMIZERS


def named(name: str) -> registry.Entry:
    """The optimizer a user's name stands for; SpecError listing the names otherwise."""
    if name not in NAMED:
        raise _unknown_name(name)
    return NAMED[name]


# Constructor-only keywords whose valid values live elsewhere than in ``specs``; used to
# describe them only (the probe optimizer checks them).
KEYWORD_CHOICES = {"preset": lambda cls: tuple(cls.presets),
                   "engine": lambda cls: tuple(engines.ENGINES),
                   "nonfinite": lambda cls: tuple(NONFINITE_POLICIES)}
# torch's execution flags: accepted for compatibility, they never change the math
TORCH_FLAGS = ("foreach", "fused", "capturable", "differentiable")
# The lab's own keys: how a spec trains, not how its optimizer steps.
TRAINING_KEYS = {"schedule": f"schedule in {{{', '.join(SCHEDULES)}}}",
                 "warmup": "warmup=a fraction of the steps (0.1) or a number of steps (100)",
                 "clip": "clip=a max gradient norm > 0, or 0 for no clipping"}
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
    """A parsed spec: which optimizer, with which keyword overrides, trained how.

    ``name`` is the user's name (``momentum``), ``overrides`` the keywords passed to the
    class on top of the name's own, ``training`` the lab's per-spec options (``schedule``,
    ``warmup``, ``clip``; unset: the comparison's). ``label`` is the canonical text, used
    in reports. ``optimizer_class`` is set for a class given as is (``spec_of_class``):
    then ``name`` is the class's dotted name and no name's overrides apply.
    """

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    optimizer_class: type[torch.optim.Optimizer] | None = None

    @property
    def cls(self) -> type[torch.optim.Optimizer]:
        return self.optimizer_class or named(self.name).cls

    @property
    def family(self) -> str | None:
        """The lab name whose task lr and colour this spec takes (``adam`` for
        ``torch.optim.Adam``); None for a class the lab does not know."""
        if self.optimizer_class is None:
            return self.name
        guess = self.optimizer_class.__name__.lower()
        return guess if guess in NAMED and not NAMED[guess].overrides else None

    @property
    def label(self) -> str:
        options = {**self.overrides, **self.training}
        if not options:
            return self.name
        pairs = ",".join(f"{key}={value_text(v)}" for key, v in options.items())
        return f"{self.name}:{pairs}"

    def keywords(self, default_lr: float | None = None) -> dict[str, Any]:
        """The constructor keywords: the name's, then the task's lr, then the user's."""
        keywords = {} if self.optimizer_class else dict(named(self.name).overrides)
        if default_lr is not None:
            keywords["lr"] = default_lr
        return {**keywords, **self.overrides}

    def build(self, params: Any, default_lr: float | None = None) -> torch.optim.Optimizer:
        """The optimizer over ``params`` (tensors or param-group dicts)."""
        return self.cls(params, **self.keywords(default_lr))

    def resolved(self, default_lr: float | None = None) -> dict[str, Any]:
        """What the class makes of the spec (its presets and defaults included): every
        hyperparameter but torch's execution flags, then the preset, engine and
        non-finite policy of an optimlab optimizer."""
        # a 1×1 matrix: a param every rule takes (a matrix rule such as Muon's: 2-D only)
        probe = self.build([torch.nn.Parameter(torch.ones(1, 1))], default_lr)
        resolved = {k: v for k, v in probe.defaults.items() if k not in TORCH_FLAGS}
        for extra in ("preset", "engine", "nonfinite"):
            if hasattr(probe, extra):
                resolved[extra] = getattr(probe, extra)
        return resolved

    def with_overrides(self, **overrides: Any) -> OptimizerSpec:
        """This spec with more overrides (the sweep sets ``lr`` this way)."""
        return OptimizerSpec(self.name, {**self.overrides, **overrides}, dict(self.training),
                             self.optimizer_class)


def valid_keys(cls: type[Optimizer]) -> dict[str, inspect.Parameter]:
    """Every keyword the constructor takes, except ``params``."""
    parameters = inspect.signature(cls.__init__).parameters
    return {name: p for name, p in parameters.items()
            if name not in ("self", "params")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def describe_key(cls: type[Optimizer], key: str) -> str:
    """``key`` and the values it takes, for ``optimlab optimizers`` and error messages."""
    spec = cls.specs.get(key)
    if isinstance(spec, Optional_):
        return f"{spec.spec.describe(key)}, or none"
    if isinstance(spec, Range):
        return spec.describe(key)
    if isinstance(spec, Pair):
        return f"{key}=a/b with {spec.each.describe('a')}, {spec.each.describe('b')}"
    if isinstance(spec, Numbers):
        return f"{key}={'/'.join('abcdefgh'[:spec.count])}, {spec.count} numbers"
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
    if isinstance(spec, Optional_):
        return None if text.lower() in ("none", "off") else _number(text)
    if isinstance(spec, Range):
        return _number(text)
    if isinstance(spec, Pair):
        parts = text.split("/")
        if len(parts) != 2:
            raise ValueError("not a pair; write two numbers as a/b, e.g. 0.9/0.999")
        return (_number(parts[0]), _number(parts[1]))
    if isinstance(spec, Numbers):
        parts = text.split("/")
        if len(parts) != spec.count:
            raise ValueError(f"not {spec.count} numbers; write them as a/b/...")
        return tuple(_number(part) for part in parts)
    if isinstance(spec, Choice):
        return _choice(spec, text)
    return _guess(valid_keys(cls)[key].default, text)


def _training_value(key: str, text: str) -> Any:
    """A training option's value; ValueError with the reason if unreadable."""
    if key == "schedule":
        if text.lower() not in SCHEDULES:
            raise ValueError(f"not one of {{{', '.join(SCHEDULES)}}}")
        return text.lower()
    if key == "warmup":  # '100' is a number of steps, '0.1' a fraction of them
        value = int(text) if text.isdigit() else _number(text)
        if not value >= 0:
            raise ValueError("not >= 0")
        return value
    value = _number(text)  # clip
    if not value >= 0:
        raise ValueError("not >= 0")
    return value


def _unknown_name(name: str) -> SpecError:
    close = difflib.get_close_matches(name, NAMED, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(f"unknown optimizer {name!r}{hint}; valid names: {', '.join(NAMED)}")


def _unknown_key(text: str, name: str, key: str, cls: type[Optimizer]) -> SpecError:
    keys = [*valid_keys(cls), *TRAINING_KEYS]
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(f"optimizer spec {text!r}: {name} has no option {key!r}{hint}; "
                     f"valid options: {', '.join(keys)}")


def parse_spec(text: str) -> OptimizerSpec:
    """Parse ``name[:key=value,...]`` and check it by building a probe optimizer."""
    text = text.strip()
    name, _, options = text.partition(":")
    name = name.strip().lower()
    cls = named(name).cls
    overrides: dict[str, Any] = {}
    training: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, equals, raw = (piece.strip() for piece in item.partition("="))
        if not equals or not raw:
            raise SpecError(f"optimizer spec {text!r}: {item!r} is not key=value")
        if key not in valid_keys(cls) and key not in TRAINING_KEYS:
            raise _unknown_key(text, name, key, cls)
        if key in overrides or key in training:
            raise SpecError(f"optimizer spec {text!r}: {key} is given twice")
        try:
            if key in TRAINING_KEYS:
                training[key] = _training_value(key, raw)
            else:
                overrides[key] = convert(cls, key, raw)
        except ValueError as error:
            valid = TRAINING_KEYS.get(key) or describe_key(cls, key)
            raise SpecError(f"optimizer spec {text!r}: {key}={raw!r} is {error}; valid: "
                            f"{valid}") from None
    spec = OptimizerSpec(name, overrides, training)
    check(spec, text)
    return spec


def check(spec: OptimizerSpec, text: str | None = None) -> None:
    """Build ``spec`` on a probe tensor so the class's own checks run now."""
    probe = torch.nn.Parameter(torch.ones(1, 1))  # taken by every rule, matrix rules too
    # optimlab's classes raise ArgumentError; another class's refusal is as good a reason
    refused = ArgumentError if spec.optimizer_class is None else (ValueError, TypeError)
    try:
        spec.build([probe])
    except refused as error:
        raise SpecError(f"optimizer spec {text or spec.label!r}: {error}") from None


def class_label(cls: type) -> str:
    """``torch.optim.Adam`` for a class torch.optim exports, else module.QualifiedName."""
    if getattr(torch.optim, cls.__name__, None) is cls:
        return f"torch.optim.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def spec_of_class(cls: type[torch.optim.Optimizer], **overrides: Any) -> OptimizerSpec:
    """A spec for an optimizer class: optimlab's own classes become their lab name
    (``optimlab.Adam`` -> ``adam``), any other ``torch.optim.Optimizer`` subclass runs as
    is (``torch.optim.Adam``), with the task's lr for its namesake when it has one."""
    for name, entry in NAMED.items():
        if entry.cls is cls and not entry.overrides:
            spec = OptimizerSpec(name, overrides)
            break
    else:
        if "weight_decay" not in inspect.signature(cls.__init__).parameters:
            raise SpecError(f"optimizer class {class_label(cls)} takes no weight_decay; the "
                            "lab builds every run with optimlab.recipe, which sets it")
        spec = OptimizerSpec(class_label(cls), overrides, optimizer_class=cls)
    check(spec)
    return spec


def as_spec(item: str | OptimizerSpec | type[torch.optim.Optimizer]) -> OptimizerSpec:
    """A spec from its text, an optimizer class, or the spec itself (the Python API takes
    all three)."""
    if isinstance(item, OptimizerSpec):
        return item
    if isinstance(item, str):
        return parse_spec(item)
    if isinstance(item, type) and issubclass(item, torch.optim.Optimizer):
        return spec_of_class(item)
    raise SpecError(f"optimizers: {item!r} is not an optimizer spec; valid: a text such as "
                    "'adam:lr=3e-4', an OptimizerSpec, or a torch.optim.Optimizer subclass "
                    "(the class, not an instance)")
