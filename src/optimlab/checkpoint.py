"""Loading a state dict: checked before anything changes, and matched by name when it can be.

torch.optim pairs saved state with parameters by position and checks little else, so a
checkpoint of another optimizer, or of a model that gained, lost or regrouped a layer,
loads onto the wrong tensors or fails half-way (pytorch/pytorch#1489). optimlab's
``load_state_dict`` first turns the saved dict into one that fits this optimizer exactly,
or raises a ``ValueError`` that says why, before torch's loader touches anything:

* **By name**, when the saved groups and the optimizer's groups all carry ``param_names``
  (an optimizer built from ``model.named_parameters()`` or ``optimlab.param_groups(model)``
  records them): each parameter takes the state saved under its name, wherever it sits
  now; a parameter with no saved state starts fresh; saved state whose name no longer
  exists is dropped (both are reported in one warning). A group that only gained or lost
  parameters is the same group and takes its saved settings (lr, weight_decay, ...), as
  torch restores them; a group that is new, or made by splitting or merging saved groups,
  keeps the settings it was built with.
* **By position** otherwise, as torch does: a plain torch.optim state dict loads as before.

Either way the result is checked: as many groups and parameters per group as the optimizer
has; no hyperparameter that belongs to another optimlab optimizer (Adam's ``betas`` in an
SGD checkpoint); valid hyperparameters; every saved moment (``exp_avg``, ``sum``, ...)
shaped as its parameter; no state entry that is not a dict.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from optimlab import state
from optimlab.hyperparameters import ArgumentError

# the optimizer (optimizer.Optimizer, which imports this module) is passed in and used
# through its methods: complete_group, check_group, view, param_groups
Optimizer = Any
StateDict = dict[str, Any]
NOT_SETTINGS = ("params", "param_names")


def prepared(optimizer: Optimizer, state_dict: Mapping[str, Any],
             foreign_keys: set[str]) -> StateDict:
    """``state_dict`` rewritten to fit ``optimizer`` by name or position, and checked;
    ``foreign_keys``: group keys of other optimizers, which mark another's checkpoint.

    Pure: neither the optimizer nor ``state_dict`` is modified.
    """
    owner = f"{type(optimizer).__name__}.load_state_dict"
    if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
        raise ValueError(f"{owner}: the state dict is not an optimizer state dict (it has no "
                         "'state' and 'param_groups' entries)")
    if _named(optimizer.param_groups) and _named(state_dict["param_groups"]):
        state_dict = _by_name(owner, optimizer, state_dict)
    _check(owner, optimizer, state_dict, foreign_keys)
    return dict(state_dict)


def _named(groups: Any) -> bool:
    return bool(groups) and all(isinstance(g, Mapping) and "param_names" in g for g in groups)


def _name_index(owner: str, groups: list[Mapping[str, Any]], side: str) -> dict[str, Any]:
    """name -> (group index, param entry) over ``groups``, refusing a name given twice."""
    index: dict[str, Any] = {}
    for group_index, group in enumerate(groups):
        names, params = list(group["param_names"]), list(group["params"])
        if len(names) != len(params):
            raise ValueError(f"{owner}: group {group_index} of the {side} has {len(params)} "
                             f"parameters but {len(names)} param_names")
        for name, param in zip(names, params, strict=True):
            if name in index:
                raise ValueError(f"{owner}: the name {name!r} appears twice in the {side}; "
                                 "valid: unique parameter names (as named_parameters() gives)")
            index[name] = (group_index, param)
    return index


def _by_name(owner: str, optimizer: Optimizer, saved: Mapping[str, Any]) -> StateDict:
    """The saved dict re-keyed so that the i-th parameter of the optimizer gets the state
    saved under its name; groups take their saved settings when they are the same group."""
    saved_groups = list(saved["param_groups"])
    by_name = _name_index(owner, saved_groups, "state dict")
    current = _name_index(owner, optimizer.param_groups, "optimizer")
    state: dict[int, Any] = {}
    groups = []
    position = 0
    for group_index, group in enumerate(optimizer.param_groups):
        source = _same_group(group, by_name, current, group_index)
        settings = saved_groups[source] if source is not None else group
        new_group = {k: v for k, v in settings.items() if k not in NOT_SETTINGS}
        new_group["params"] = list(range(position, position + len(group["params"])))
        new_group["param_names"] = list(group["param_names"])
        for name in group["param_names"]:
            if name in by_name and by_name[name][1] in saved["state"]:
                state[position] = saved["state"][by_name[name][1]]
            position += 1
        groups.append(new_group)
    fresh = [name for name in current if name not in by_name]
    dropped = [name for name in by_name if name not in current]
    if fresh or dropped:
        warnings.warn(f"{owner}: matched by name; {len(fresh)} parameter(s) start fresh "
                      f"(no saved state): {fresh}; {len(dropped)} saved parameter(s) no longer "
                      f"exist and were dropped: {dropped}", stacklevel=4)
    return {**saved, "state": state, "param_groups": groups}


def _same_group(group: Mapping[str, Any], by_name: dict[str, Any], current: dict[str, Any],
                group_index: int) -> int | None:
    """The saved group that ``group`` continues, if any: it holds saved parameters of that
    group only, and every parameter of that group that still exists is in ``group``."""
    sources = {by_name[name][0] for name in group["param_names"] if name in by_name}
    if len(sources) != 1:
        return None
    (source,) = sources
    survivors = {current[name][0] for name, (index, _) in by_name.items()
                 if index == source and name in current}
    return source if survivors == {group_index} else None


def _check(owner: str, optimizer: Optimizer, state_dict: Mapping[str, Any],
           foreign_keys: set[str]) -> None:
    """Raise ValueError unless ``state_dict`` fits ``optimizer`` position by position."""
    saved_groups = list(state_dict["param_groups"])
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(f"{owner}: the state dict has {len(saved_groups)} param group(s), "
                         f"the optimizer {len(optimizer.param_groups)}; valid: as many groups "
                         "(or parameter names on both sides, to match by name)")
    for index, (group, saved) in enumerate(zip(optimizer.param_groups, saved_groups,
                                               strict=True)):
        if len(saved["params"]) != len(group["params"]):
            raise ValueError(f"{owner}: group {index} of the state dict has "
                             f"{len(saved['params'])} parameter(s), the optimizer's group "
                             f"{index} has {len(group['params'])}; valid: the same parameters "
                             "(or parameter names on both sides, to match by name)")
        foreign = sorted(set(saved) & foreign_keys)
        if foreign:
            raise ValueError(f"{owner}: group {index} of the state dict has hyperparameters "
                             f"{foreign} that {type(optimizer).__name__} does not have: it was "
                             "saved by another optimizer; valid: a state dict of "
                             f"{type(optimizer).__name__} or of its torch.optim namesake")
        settings = {**saved, "params": group["params"]}
        optimizer.complete_group(settings)
        try:
            optimizer.check_group(settings)
        except ArgumentError as error:
            raise ValueError(f"{owner}: group {index} of the state dict is invalid: "
                             f"{error}") from None
        view = optimizer.view(settings)
        for position, (param, saved_id) in enumerate(zip(group["params"], saved["params"],
                                                         strict=True)):
            label = param_label(group, index, position)
            if saved_id not in state_dict["state"]:
                continue
            entry = state_dict["state"][saved_id]
            if not isinstance(entry, Mapping):
                raise ValueError(f"{owner}: the state of parameter {label} is {entry!r}, not a "
                                 "dict of tensors (ZeroRedundancyOptimizer.load_state_dict "
                                 "sets other ranks' entries of the dict it is given to None: "
                                 "load a fresh copy)")
            _check_shapes(owner, label, param, entry, state.shapes(view, param))


def _check_shapes(owner: str, label: str, param: Tensor, entry: Mapping[str, Any],
                  expected: Mapping[str, tuple[int, ...]]) -> None:
    """The rule's moments (torch's names), where floating point, have the shapes the rule
    declares for this param (its own, for an elementwise rule, which would otherwise
    broadcast them silently). Other entries are left to whoever wrote them (a state codec
    may keep per-block scales beside a moment)."""
    for key, shape in expected.items():
        value = entry.get(key)
        if isinstance(value, Tensor) and (value.is_floating_point() or value.is_complex()) \
                and tuple(value.shape) != shape:
            kept = "" if shape == tuple(param.shape) else f" and keeps {key!r} as {shape}"
            raise ValueError(f"{owner}: the saved {key!r} of parameter {label} has shape "
                             f"{tuple(value.shape)}, the parameter has shape "
                             f"{tuple(param.shape)}{kept}; valid: a state dict of this model")


def param_label(group: Mapping[str, Any], group_index: int, position: int) -> str:
    """A parameter's name if the group has names, else 'group g, index i'."""
    names = group.get("param_names")
    if names:
        return repr(names[position])
    return f"group {group_index}, index {position}"
