"""Engines: ways to run one rule (rules.py) over the tensors of a parameter group.

Every engine runs the same rule function and keeps torch's state layout:

* ``"reference"``: eager, one tensor at a time, any dtype, complex and sparse gradients,
  every state codec (reference.py). The oracle every other engine is tested against.
* ``"native"``: torch's own fused kernels where a configuration's equation is theirs
  (native.py); the reference engine for the rest.
* ``"compiled"``: ``torch.compile`` of the rule into one fused kernel per configuration
  (compiled.py); the reference engine for the tensors it cannot take.
* ``"auto"`` (the default): native where a configuration maps onto a fused kernel; else
  compiled, for groups of at least ``AUTO_COMPILE_ELEMENTS`` elements or
  ``AUTO_COMPILE_TENSORS`` tensors, where the eager step costs milliseconds (bandwidth, or
  ~50 µs of dispatch per tensor) and the seconds of compiling pay for themselves within a
  few thousand steps; else reference (a small model's eager step is a fraction of a
  millisecond). Where compiling is not possible (no C++ compiler for the CPU, no Triton
  for CUDA), auto warns once and uses the reference engine.

An engine is a function ``update(rule, hp, params, grads, states, cache)``; ``cache`` is a
dict the optimizer keeps per param group (never saved), where engines keep their layout.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor

from optimlab import compiled, native
from optimlab.reference import ensure_state, reference_update
from optimlab.rules import Rule, State

Engine = Callable[[Rule, Mapping[str, Any], Sequence[Tensor], Sequence[Tensor],
                   Sequence[State], dict[str, Any]], None]
Taker = Callable[[Rule, Mapping[str, Any], Sequence[Tensor], Sequence[Tensor],
                  Sequence[State], dict[str, Any]], list[int]]
AUTO_COMPILE_ELEMENTS = 1 << 20
AUTO_COMPILE_TENSORS = 100
_warned: set[str] = set()

__all__ = ["AUTO_COMPILE_ELEMENTS", "AUTO_COMPILE_TENSORS", "ENGINES", "ensure_state",
           "get_engine"]


def _chain(takers: Sequence[Taker], rule: Rule, hp: Mapping[str, Any],
           params: Sequence[Tensor], grads: Sequence[Tensor], states: Sequence[State],
           cache: dict[str, Any]) -> None:
    """Offer the tensors to each engine in turn; the reference engine steps what is left."""
    positions = list(range(len(params)))
    for index, taker in enumerate(takers):
        if not positions:
            return
        subset = _pick(positions, params, grads, states)
        left = taker(rule, hp, *subset, cache.setdefault(index, {}))
        positions = [positions[i] for i in left]
    if positions:
        reference_update(rule, hp, *_pick(positions, params, grads, states))


def _pick(positions: list[int], *lists: Sequence[Any]) -> tuple[list[Any], ...]:
    if len(positions) == len(lists[0]):
        return tuple(list(items) for items in lists)
    return tuple([items[i] for i in positions] for items in lists)


def native_update(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
                  grads: Sequence[Tensor], states: Sequence[State],
                  cache: dict[str, Any]) -> None:
    _chain([native.take], rule, hp, params, grads, states, cache)


def compiled_update(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
                    grads: Sequence[Tensor], states: Sequence[State],
                    cache: dict[str, Any]) -> None:
    _chain([compiled.take], rule, hp, params, grads, states, cache)


def auto_update(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
                grads: Sequence[Tensor], states: Sequence[State],
                cache: dict[str, Any]) -> None:
    """torch's kernel for what it computes; a compiled one for the rest of a big group."""
    _chain([native.take, _compiled_if_worth_it], rule, hp, params, grads, states, cache)


def _compiled_if_worth_it(rule: Rule, hp: Mapping[str, Any], params: Sequence[Tensor],
                          grads: Sequence[Tensor], states: Sequence[State],
                          cache: dict[str, Any]) -> list[int]:
    everything = list(range(len(params)))
    if len(params) < AUTO_COMPILE_TENSORS and \
            sum(p.numel() for p in params) < AUTO_COMPILE_ELEMENTS:
        return everything
    devices = {p.device for p in params}
    missing = sorted(str(d) for d in devices if not compiled.available(d))
    if missing:
        _warn_once("optimlab engine='auto': torch.compile cannot build kernels for "
                   f"{missing} (no C++ compiler on the CPU, or no Triton for CUDA); "
                   "using the reference engine there")
    return compiled.take(rule, hp, params, grads, states, cache)


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


ENGINES: dict[str, Engine] = {"auto": auto_update, "reference": reference_update,
                              "native": native_update, "compiled": compiled_update}


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise ValueError(f"engine={name!r} is not an engine; valid: {sorted(ENGINES)}")
    return ENGINES[name]
