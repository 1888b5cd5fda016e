"""The reference engine: a rule run eagerly on one tensor at a time, and the state
handling every engine shares.

An engine advances every parameter of a group by one step, in place, and keeps torch's
state layout: each parameter's state is a dict of tensors named as torch names them, plus
``step``. The reference engine handles any dtype, complex params, sparse gradients and
every state codec (codecs.py); it is the oracle every faster engine is tested against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs
from optimlab.rules import Rule, State


def scalar_dtype() -> torch.dtype:
    """dtype of the ``step`` counter, as torch.optim chooses it."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def math_dtype(param: Tensor, hp: Mapping[str, Any]) -> torch.dtype:
    """dtype the rule computes in: the wider of the param's and a float ``state_dtype``."""
    real = param.real.dtype if param.is_complex() else param.dtype
    requested = hp.get("state_dtype")
    if requested is None or requested == torch.int8 or param.is_complex():
        return real
    return torch.promote_types(real, requested)


def ensure_state(rule: Rule, hp: Mapping[str, Any], param: Tensor, state: State) -> bool:
    """Create the state tensors that the group's options need (lazily, as torch does).

    Returns True when the moments were created now, i.e. this is the param's first step.
    A state stored in another form (another dtype, or 8-bit codes) is re-stored in the
    form this group's ``state_dtype`` asks for.
    """
    fresh = False
    if rule.counts_steps and "step" not in state:
        state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
    initial = rule.initial_values(hp)
    for key in rule.state_keys(hp):
        storage = codecs.storage_for(param, key, hp.get("state_dtype"))
        if key not in state:
            state.update(storage.create(param, key, initial.get(key, 0.0)))
            fresh = True
        elif not storage.holds(state, key):
            codecs.convert(state, key, storage, param)
    return fresh


def step_number(rule: Rule, state: State, fresh: bool) -> float:
    """t for this update: the stored counter + 1, or, for rules that keep no counter
    (torch's SGD), 1 on the first step and 2 afterwards (all they need to know)."""
    if rule.counts_steps:
        return float(state["step"]) + 1
    return 1.0 if fresh else 2.0


def is_number(value: Any) -> bool:
    """A hyperparameter that is a number (not a bool: bools are options)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plain_numbers(hp: Mapping[str, Any]) -> dict[str, Any]:
    """hp with 0-d tensor hyperparameters (a tensor lr, say) read as Python numbers."""
    return {k: v.item() if isinstance(v, Tensor) else v for k, v in hp.items()}


def _math(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """The real-valued view the rule sees: complex numbers as (re, im) pairs."""
    real = torch.view_as_real(tensor) if tensor.is_complex() else tensor
    return real.to(dtype)


def _store(dst: Tensor, value: Tensor) -> None:
    (torch.view_as_real(dst) if dst.is_complex() else dst).copy_(value)


def _storages(rule: Rule, hp: Mapping[str, Any], param: Tensor) -> dict[str, Any]:
    return {key: codecs.storage_for(param, key, hp.get("state_dtype"))
            for key in rule.state_keys(hp)}


def update_dense(rule: Rule, hp: Mapping[str, Any], param: Tensor, grad: Tensor,
                 state: State, storages: Mapping[str, Any] | None = None) -> None:
    """decode -> rule -> encode, every stored tensor written in place (so that views of
    it, such as the compiled engine's flat buffers, stay valid). ``storages``: how each
    moment is stored, when ``param`` is a piece of the tensor that decided it."""
    dtype = math_dtype(param, hp)
    storages = storages or _storages(rule, hp, param)
    moments = {}
    for key, storage in storages.items():
        parts = codecs.stored_parts(state, key)
        moments[key] = (_math(parts[0], dtype) if len(parts) == 1
                        else storage.decode(parts, dtype))
    new_param, new_moments = rule.update(_math(param, dtype), _math(grad, dtype), moments, hp)
    _store(param, new_param)
    for key, storage in storages.items():
        if isinstance(storage, codecs.FloatStorage):
            _store(state[key], new_moments[key])
            continue
        for name, value in zip(storage.parts(key), storage.encode(new_moments[key]),
                               strict=True):
            state[name].copy_(value)


def _update_rows(rule: Rule, hp: Mapping[str, Any], param: Tensor, grad: Tensor,
                 state: State) -> None:
    """Apply the rule to the rows a sparse gradient touches (exact when rule.row_local)."""
    grad = grad.coalesce()
    rows = tuple(grad.indices())
    dtype = math_dtype(param, hp)
    keys = rule.state_keys(hp)
    moments = {key: state[key][rows].to(dtype) for key in keys}
    new_param, new_moments = rule.update(param[rows].to(dtype), grad.values().to(dtype),
                                         moments, hp)
    param.index_put_(rows, new_param.to(param.dtype))
    for key in keys:
        state[key].index_put_(rows, new_moments[key].to(state[key].dtype))


def _stored_as_floats(rule: Rule, hp: Mapping[str, Any], param: Tensor) -> bool:
    return all(isinstance(s, codecs.FloatStorage) for s in _storages(rule, hp, param).values())


def update_one(rule: Rule, numbers: Mapping[str, Any], param: Tensor, grad: Tensor,
               state: State) -> None:
    """One step of one parameter (``numbers``: the group's hyperparameters as Python
    values)."""
    fresh = ensure_state(rule, numbers, param, state)
    step_hp = {**numbers, **rule.step_scalars(numbers, step_number(rule, state, fresh))}
    if grad.is_sparse and rule.row_local(step_hp) and _stored_as_floats(rule, step_hp, param):
        _update_rows(rule, step_hp, param, grad, state)
    else:
        update_dense(rule, step_hp, param, grad.to_dense() if grad.is_sparse else grad, state)
    if rule.counts_steps:
        state["step"] += 1


def reference_update(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
                     grads: Sequence[Tensor], states: Sequence[State],
                     cache: dict[str, Any] | None = None) -> None:
    """Run ``rule`` eagerly on each parameter in turn."""
    numbers = plain_numbers(hp)
    for param, grad, state in zip(params, grads, states, strict=True):
        update_one(rule, numbers, param, grad, state)
