"""Engines: ways to run one rule (rules.py) over the tensors of a parameter group.

An engine is a function ``update(rule, hp, params, grads, states)`` that advances every
parameter of a group by one step, in place, and keeps torch's state layout: each
parameter's state is a dict of tensors named as torch names them, plus ``step``.

* ``reference``: eager, one tensor at a time, any dtype, complex and sparse gradients.
  It is the oracle every faster engine is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.rules import Rule, State

Engine = Callable[
    [Rule, Mapping[str, Any], Sequence[Tensor], Sequence[Tensor], Sequence[State]], None]


def scalar_dtype() -> torch.dtype:
    """dtype of the ``step`` counter, as torch.optim chooses it."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def storage_dtype(param: Tensor, hp: Mapping[str, Any]) -> torch.dtype:
    """dtype the state of ``param`` is kept in: ``state_dtype`` if set, else the param's."""
    requested = hp.get("state_dtype")
    return param.dtype if requested is None or param.is_complex() else requested


def math_dtype(param: Tensor, hp: Mapping[str, Any]) -> torch.dtype:
    """dtype the rule computes in: the wider of the param's and the state's."""
    if param.is_complex():
        return param.real.dtype
    return torch.promote_types(param.dtype, storage_dtype(param, hp))


def ensure_state(rule: Rule, hp: Mapping[str, Any], param: Tensor, state: State) -> bool:
    """Create the state tensors that the group's options need (lazily, as torch does).

    Returns True when the moments were created now, i.e. this is the param's first step.
    A state loaded in another dtype is converted to the storage dtype.
    """
    fresh = False
    if rule.counts_steps and "step" not in state:
        state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
    dtype = storage_dtype(param, hp)
    initial = rule.initial_values(hp)
    for key in rule.state_keys(hp):
        if key not in state:
            value = initial.get(key, 0.0)
            fill = complex(value, value) if param.is_complex() else value
            state[key] = torch.full_like(param, fill, dtype=dtype)
            fresh = True
        elif state[key].dtype != dtype:
            state[key] = state[key].to(dtype)
    return fresh


def step_number(rule: Rule, state: State, fresh: bool) -> float:
    """t for this update: the stored counter + 1, or, for rules that keep no counter
    (torch's SGD), 1 on the first step and 2 afterwards (all they need to know)."""
    if rule.counts_steps:
        return float(state["step"]) + 1
    return 1.0 if fresh else 2.0


def plain_numbers(hp: Mapping[str, Any]) -> dict[str, Any]:
    """hp with 0-d tensor hyperparameters (a tensor lr, say) read as Python numbers."""
    return {k: v.item() if isinstance(v, Tensor) else v for k, v in hp.items()}


def _math(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """The real-valued view the rule sees: complex numbers as (re, im) pairs."""
    real = torch.view_as_real(tensor) if tensor.is_complex() else tensor
    return real.to(dtype)


def _store(dst: Tensor, value: Tensor) -> None:
    (torch.view_as_real(dst) if dst.is_complex() else dst).copy_(value)


def _update_dense(rule: Rule, hp: Mapping[str, Any], param: Tensor, grad: Tensor,
                  state: State) -> None:
    dtype = math_dtype(param, hp)
    keys = rule.state_keys(hp)
    moments = {key: _math(state[key], dtype) for key in keys}
    new_param, new_moments = rule.update(_math(param, dtype), _math(grad, dtype), moments, hp)
    _store(param, new_param)
    for key in keys:
        _store(state[key], new_moments[key])


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


def reference_update(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
                     grads: Sequence[Tensor], states: Sequence[State]) -> None:
    """Run ``rule`` eagerly on each parameter in turn."""
    numbers = plain_numbers(hp)
    for param, grad, state in zip(params, grads, states, strict=True):
        fresh = ensure_state(rule, numbers, param, state)
        step_hp = {**numbers, **rule.step_scalars(numbers, step_number(rule, state, fresh))}
        if grad.is_sparse and rule.row_local(step_hp):
            _update_rows(rule, step_hp, param, grad, state)
        else:
            _update_dense(rule, step_hp, param, grad.to_dense() if grad.is_sparse else grad,
                          state)
        if rule.counts_steps:
            state["step"] += 1


ENGINES: dict[str, Engine] = {"reference": reference_update}


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise ValueError(f"engine={name!r} is not an engine; valid: {sorted(ENGINES)}")
    return ENGINES[name]
