"""A param group's per-step bookkeeping, kept while the group is unchanged.

Before each step every group used to be normalised, checked key by key and viewed anew
(views.py), ~0.3 ms for a 30-tensor model whose C kernel takes 0.15 ms. A group is a dict
that users and schedulers write into between steps, so what is kept is checked against
the group at every step, cheaply:

* the group dict itself (``param_groups`` replaced, as load_state_dict does: all anew),
  its ``params`` (the same list holding the same tensors) and its set of keys;
* every other value, by identity or equality. A tensor value (a tensor lr) counts as
  changed at every step: it may have been written in place.

When only numbers changed (a scheduler's ``lr``, a tensor lr, ``betas`` written by hand),
only those keys are checked again (their ranges, and the checks across keys) and the
view takes the new numbers, keeping its configuration (views.Config) unless the numbers
change the state the rule keeps (SGD's momentum 0 -> 0.9): the engines' plans and
compiled kernels, keyed on the configuration, are kept. Any other change (an option,
``amsgrad``, ``state_dtype``, the params) takes the whole path again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from optimlab import views
from optimlab.rules import Rule
from optimlab.views import View

_MISSING = object()
_PLAIN = (float, int, bool, str, type(None))


def _volatile(value: Any) -> bool:
    """Whether ``value`` may change without being replaced: a tensor, or a tensor in a
    tuple or list (torch takes tensor betas)."""
    if type(value) in _PLAIN:
        return False
    if isinstance(value, (tuple, list)):
        return any(isinstance(item, Tensor) for item in value)
    return isinstance(value, Tensor)


def _differ(value: Any, kept: Any) -> bool:
    """value != kept, and True where that has no single answer (an array, say)."""
    try:
        return bool(value != kept)
    except (TypeError, ValueError, RuntimeError):
        return True


def number_keys(rule: Rule) -> frozenset[str]:
    """The group keys that hold only numbers of ``rule`` (``lr``, ``betas``, ...), and the
    values it keeps per group (schedule-free's step count and weight sum, written back at
    every step: the view is kept, they have no range to check)."""
    paired = {name for _, pair in rule.pairs for name in pair}
    return frozenset({*(n for n in rule.numbers if n not in paired),
                      *(key for key, _ in rule.pairs), *rule.group_values})


@dataclass
class Kept:
    """What a group's last step found, and the view it built."""

    group: dict[str, Any]
    params: list[Any]
    param_ids: tuple[int, ...]
    values: dict[str, Any]
    view: View
    numbers: frozenset[str]

    @classmethod
    def of(cls, group: dict[str, Any], view: View) -> Kept:
        params = group["params"]
        values = {k: v for k, v in group.items() if k != "params"}
        return cls(group, params, tuple(map(id, params)), values, view,
                   number_keys(view.rule))

    def changes(self, group: Mapping[str, Any]) -> set[str] | None:
        """The keys whose values may differ since; None when the group, its params or its
        keys are not those kept."""
        params = group["params"]
        if group is not self.group or params is not self.params or \
                len(group) != len(self.values) + 1 or \
                tuple(map(id, params)) != self.param_ids:
            return None
        changed = set()
        for key, kept in self.values.items():
            value = group.get(key, _MISSING)
            if value is kept and type(value) in _PLAIN:
                continue  # the common case, first: a float or a flag left alone
            if value is _MISSING:
                return None
            if _volatile(value) or _volatile(kept) or (value is not kept and
                                                       _differ(value, kept)):
                changed.add(key)
        return changed

    def renumber(self, group: Mapping[str, Any], changed: set[str]) -> View:
        """The view with the group's new numbers (the configuration kept unless the
        state the rule keeps changed with them)."""
        view = self.view
        numbers = views.numbers_of(view.rule, group)
        config = view.config
        hp = {**dict(config.options), **views.as_floats(numbers)}
        keys = tuple(view.rule.state_keys(hp))
        if keys != config.state_keys:
            config = views.Config(config.rule, config.options, keys, config.state_dtype)
        self.view = View(config, numbers, view.differentiable)
        for key in changed:
            self.values[key] = group[key]
        return self.view
