"""Optimizer state: the one owner of how a parameter's state is created, counted and
converted. Engines call it; none re-does it.

* **Creation** (``prepare``): the moments a configuration needs (``View.config.state_keys``),
  lazily as torch does, at zero, at the rule's ``initial_values`` or as a copy of the param
  (``Rule.copies_param``), in the storage the group's ``state_dtype`` asks for (codecs.py),
  on the param's device; a moment stored in another form is re-stored. torch's ``step``
  counter, where the rule keeps one: fp32 (fp64 under an fp64 default dtype, as
  torch.optim), on the CPU for CPU params and on the param's own device otherwise (where
  torch's fused and capturable kernels read it, and where reading it would sync).
* **Counting** (``step_number``, ``advance``): t for this update and the increment after
  it; for rules that keep no counter (torch's SGD), t is 1 on a buffer's first step and 2
  afterwards (torch's first-step rule: v₁ = g).
* **Conversion on load** (``restore``): a saved entry made ready for this group, whatever
  wrote it: a Python-number ``step`` (torch before 1.12) becomes a tensor; moments saved in
  another form (fp32 into bf16 state, 8-bit codes into fp32, optimlab 0.1's 8-bit layout)
  are re-stored in the group's, at load time, not at the next step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs
from optimlab.codecs import Storage
from optimlab.rules import State
from optimlab.views import View


def step_dtype() -> torch.dtype:
    """dtype of the ``step`` counter, as torch.optim chooses it."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step(param: Tensor, value: float = 0.0) -> Tensor:
    """A step counter for ``param``: on the CPU for CPU params, else on the param's device
    (fp32 there, as torch's fused kernels read it)."""
    if param.device.type == "cpu":
        return torch.tensor(value, dtype=step_dtype())
    return torch.tensor(value, dtype=torch.float32, device=param.device)


def shapes(view: View, param: Tensor) -> dict[str, tuple[int, ...]]:
    """The moments ``param`` keeps under ``view``'s configuration, with their shapes (the
    param's, unless the rule declares others: rules.Rule.state_shapes)."""
    keys = view.config.state_keys
    if view.rule.state_shapes is None:
        return {key: tuple(param.shape) for key in keys}
    return view.rule.shapes(view.hp(view.floats()), keys, param.shape)


def storages(view: View, param: Tensor) -> dict[str, Storage]:
    """How each moment of ``param`` is stored under ``view``'s configuration."""
    state_dtype = view.config.state_dtype
    return {key: codecs.storage_for(param, key, state_dtype) for key in shapes(view, param)}


def template(param: Tensor, shape: tuple[int, ...]) -> Tensor:
    """What a moment of ``shape`` is created like: the param itself where the shapes agree,
    else an uninitialised tensor of the param's dtype and device."""
    return param if tuple(param.shape) == shape else param.new_empty(shape)


def prepare(view: View, param: Tensor, state: State) -> bool:
    """Create or re-store the state ``view`` needs; True when a moment was created now
    (the param's first step, or its first since the configuration gained the moment)."""
    rule = view.rule
    fresh = False
    if rule.counts_steps and "step" not in state:
        state["step"] = new_step(param)
    initial = rule.initial_values(view.floats()) if view.config.state_keys else {}
    kept = shapes(view, param)
    for key, storage in storages(view, param).items():
        like = template(param, kept[key])
        if codecs.stored_form(state, key) is None:
            state.update(storage.create(like, key, initial.get(key, 0.0)))
            if key in rule.copies_param:
                _copy_param(state, key, storage, param)
            fresh = True
        elif not storage.holds(state, key):
            codecs.convert(state, key, storage, like)
    return fresh


def _copy_param(state: State, key: str, storage: Storage, param: Tensor) -> None:
    """A moment that starts as the param's value (schedule-free's z), in its storage."""
    real = torch.view_as_real(param) if param.is_complex() else param
    storage.encode_into(codecs.stored_parts(state, key, storage), real.detach())
def prepare_scalars(view: View, param: Tensor, state: State) -> None:
    """Create the step counter and the 0-d values the rule keeps beside it
    (``Rule.scalar_state``: NAdam's ``mu_product``, ASGD's ``eta`` and ``mu``), placed and
    typed as the counter is, at their initial values."""
    rule = view.rule
    if rule.counts_steps and "step" not in state:
        state["step"] = new_step(param)
    missing = [key for key in rule.scalar_state if key not in state]
    if missing:
        initial = rule.scalar_initial(view.floats())
        for key in missing:
            state[key] = new_step(param, initial[key])


def scalar_runs(view: View, params: Sequence[Tensor], states: Sequence[State]
                ) -> list[tuple[list[int], dict[str, Any], dict[str, Any]]]:
    """A group whose rule keeps 0-d values per parameter (``Rule.scalar_state``), split
    into runs of parameters at the same step with the same values (one run, unless a
    parameter joined later or a checkpoint mixed them): for each run, its positions, the
    numbers ``scalar_step`` derives for this step, and the values to store after it.
    Under autograd or a torch.compile trace each parameter runs alone, its values read as
    tensors (no sync, no graph break)."""
    rule = view.rule
    traced = view.differentiable or _compiling()
    members: dict[Any, list[int]] = {}
    for position, (param, stored) in enumerate(zip(params, states, strict=True)):
        prepare_scalars(view, param, stored)
        alone = traced or param.device.type == "meta"  # meta tensors hold no value to read
        key = ("alone", position) if alone else (
            float(step_number(view, stored, False)),
            *(float(stored[k]) for k in rule.scalar_state))
        members.setdefault(key, []).append(position)
    runs = []
    for key, positions in members.items():
        stored = states[positions[0]]
        as_tensors = key[0] == "alone"
        # read as tensors, they are copies: the step's graph may hold them, and they are
        # overwritten in place after it
        values = {k: stored[k].clone() if as_tensors else stored[k] for k in rule.scalar_state}
        step = step_number(view, stored, False)
        if params[positions[0]].device.type == "meta":  # shapes only: stand-in values
            values = {k: torch.ones((), dtype=v.dtype) for k, v in values.items()}
            step = 1.0
        hp = view.hp(view.numbers if as_tensors else view.floats())
        numbers, kept = rule.scalar_step(hp, step, values)
        runs.append((positions, numbers, kept))
    return runs


def store_scalars(states: Sequence[State], kept: Mapping[str, Any]) -> None:
    """Write a run's new 0-d values (``scalar_runs``) into each of its states, in place."""
    for stored in states:
        for key, value in kept.items():
            if isinstance(value, Tensor):
                stored[key].copy_(value)
            else:
                stored[key].fill_(value)


def step_number(view: View, state: State, fresh: bool) -> float | Tensor:
    """t for this update. A Python float from a CPU counter; a 0-d tensor (no sync, no
    graph break) from a counter on another device, under torch.compile and under autograd
    (``differentiable=True``)."""
    if not view.rule.counts_steps:
        return 1.0 if fresh else 2.0
    step = state["step"]
    if step.device.type == "cpu" and not (view.differentiable or _compiling()):
        return float(step) + 1
    following = step + 1
    return following if step.device.type == "mps" else following.double()


def advance(view: View, states: Sequence[State]) -> None:
    """Count one step in each state (after the update, as torch does)."""
    if view.rule.counts_steps and states:
        torch._foreach_add_([s["step"] for s in states], 1)


def restore(view: View, param: Tensor, saved: Mapping[str, Any]) -> State:
    """A saved state entry, made ready for ``param`` under ``view``: tensors on the param's
    device, a numeric ``step`` as a tensor, moments in this group's storage. Entries this
    configuration does not read are kept as saved (moved to the param's device)."""
    state: State = {}
    for name, value in saved.items():
        if (name == "step" and view.rule.counts_steps) or name in view.rule.scalar_state:
            state[name] = new_step(param, float(value))
        elif isinstance(value, Tensor):
            state[name] = value.to(param.device)
        else:
            state[name] = value
    kept = shapes(view, param)
    for key, storage in storages(view, param).items():
        if codecs.stored_form(state, key) is not None:
            codecs.convert(state, key, storage, template(param, kept[key]))
    return state


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def shared_step_number(view: View, counters: Tensor | None, fresh: Sequence[bool]
                       ) -> float | None:
    """t for tensors stepped together by one kernel call, their counters stacked in
    ``counters``; None when they are not all at the same step."""
    if not view.rule.counts_steps:
        return None if len(set(fresh)) > 1 else (1.0 if fresh[0] else 2.0)
    if not bool((counters == counters[0]).all()):
        return None
    return float(counters[0]) + 1
