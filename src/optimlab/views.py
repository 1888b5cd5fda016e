"""The rule's view of a param group, built from what the rule declares it reads.

A param group is a dict that users, schedulers and checkpoints write into. Engines never
read it: they read a ``View``, made once per group per step from the rule's declaration
(rules.Rule): the options (which select a variant of the equation), the numbers (which
may change every step), and the structure they imply (``state_keys``: which moments the
configuration keeps, numbers included, as ``momentum != 0`` adds a buffer).

``Config`` is the part that keys every cache and kernel: options, state keys and how the
state is stored. A change of any of them, mid-run included, rebuilds what depended on it;
a change of a number never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from optimlab.rules import Rule

Number = float | Tensor


@dataclass(frozen=True)
class Config:
    """What a group's configuration fixes: hashable, the key of every engine cache."""

    rule: Rule
    options: tuple[tuple[str, Any], ...]
    state_keys: tuple[str, ...]
    state_dtype: torch.dtype | None

    def option(self, name: str) -> Any:
        return dict(self.options)[name]


@dataclass(frozen=True)
class View:
    """A group as the rule sees it: its config and its numbers (as the group holds them:
    Python floats, or tensors such as a tensor lr)."""

    config: Config
    numbers: Mapping[str, Number]
    differentiable: bool = False

    @property
    def rule(self) -> Rule:
        return self.config.rule

    def with_numbers(self, extra: Mapping[str, Number]) -> View:
        """This view with ``extra`` numbers beside the group's (a GLOBAL rule's reduction)."""
        return View(self.config, {**self.numbers, **extra}, self.differentiable)

    def floats(self) -> dict[str, float]:
        """The numbers as Python floats (a tensor lr read once)."""
        return as_floats(self.numbers)

    def hp(self, numbers: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the rule's ``update`` reads: options and numbers (``numbers`` replaces the
        group's, e.g. by their float or 0-d tensor form)."""
        return {**dict(self.config.options), **(self.numbers if numbers is None else numbers)}

    def step_hp(self, step: Any, numbers: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``hp`` plus the per-step numbers the rule derives for step ``step``."""
        hp = self.hp(numbers)
        return {**hp, **self.rule.step_scalars(hp, step)}


def as_floats(numbers: Mapping[str, Number]) -> dict[str, float]:
    """The numbers as Python floats (a tensor lr, even one that requires grad, by value)."""
    return {k: float(v.detach()) if isinstance(v, Tensor) else v for k, v in numbers.items()}


def numbers_of(rule: Rule, group: Mapping[str, Any]) -> dict[str, Number]:
    """The rule's numbers read from ``group`` (pairs such as ``betas`` split)."""
    numbers = {}
    paired = {}
    for key, names in rule.pairs:
        paired.update(zip(names, group[key], strict=True))
    for name in rule.numbers:
        numbers[name] = paired[name] if name in paired else group[name]
    return numbers


def view(rule: Rule, group: Mapping[str, Any]) -> View:
    """The rule's view of ``group`` (whose values have been validated)."""
    numbers = numbers_of(rule, group)
    options = tuple((name, group[name]) for name in rule.options)
    keys = tuple(rule.state_keys({**dict(options), **as_floats(numbers)}))
    config = Config(rule, options, keys, group.get("state_dtype"))
    return View(config, numbers, bool(group.get("differentiable", False)))


# run eagerly under torch.compile(optimizer.step): traced, a kept float written back into
# the group after its int neighbour (the step count) turned symbolic was written back
# stale (schedule-free's weight sum stuck at its third step's value). Eager, the values
# are Python numbers the rest of the trace reads as constants.
@torch._dynamo.disable
def with_group_values(view: View, group: Mapping[str, Any]) -> View:
    """``view`` with the values its rule keeps in ``group`` across steps
    (rules.Rule.group_values: schedule-free's step count, weight sum, largest lr) advanced
    by one step, before the update, and the numbers ``group_step`` derives from them, all
    among its numbers. Nothing is written: ``kept_values`` says what to write back into
    the group once the step has succeeded."""
    rule = view.rule
    if rule.group_step is None:
        return view
    kept = {name: group[name] for name in rule.group_values}
    return view.with_numbers(rule.group_step(view.hp(), kept))


def kept_values(view: View) -> dict[str, Any]:
    """The values ``view``'s rule keeps per group, as ``with_group_values`` advanced them
    (a tensor by value, so that the group and its checkpoints hold plain numbers)."""
    return as_floats({name: view.numbers[name] for name in view.rule.group_values})


def with_global_scalars(batches: list[tuple[View, list[Tensor], list[Tensor]]],
                        defaults: Mapping[str, Any]
                        ) -> list[tuple[View, list[Tensor], list[Tensor]]]:
    """Each GLOBAL rule's reduction over every gradient of the optimizer it runs on
    (LAMB's global gradient norm, clipped to the optimizer's ``max_grad_norm``, as timm
    reads it from the defaults), computed once, before any update, into the numbers of
    each group (``(view, params, grads)``) that runs it."""
    reduced: dict[str, dict[str, Any]] = {}
    for view, _, _ in batches:
        rule = view.rule
        if rule.global_scalars is not None and rule.name not in reduced:
            grads = [g for v, _, gs in batches if v.rule is rule for g in gs]
            reduced[rule.name] = rule.global_scalars(defaults, grads) if grads else {}
    return [(view.with_numbers(reduced[view.rule.name]), params, grads)
            if view.rule.name in reduced else (view, params, grads)
            for view, params, grads in batches]
