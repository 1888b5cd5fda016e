"""Engines: ways to run one rule (rules/) over the tensors of a parameter group.

Every engine runs the same rule function on the group's view (views.py), with state
created and counted by state.py, and keeps torch's state layout. Each has a module named
for what it is (the name users pass is the one torch users know it by):

* ``"reference"``: the eager oracle, one tensor at a time, anything (eager.py). The oracle
  every other engine is tested against.
* ``"native"``: torch's own fused kernels where a configuration's equation is theirs
  (torch_fused.py); the reference engine for the rest.
* ``"compiled"``: the rule through torch.compile's Inductor, one fused kernel per
  configuration (inductor.py lays a group out, inductor_kernels.py compiles); a rule
  that is not elementwise gets a compiled call per tensor (inductor_tensors.py); the
  reference engine for the tensors it cannot take.
* ``"generated"``: the rule traced into C (ckernel/), one call per group over all its
  tensors, built by the system C compiler on first use and cached on disk
  (generated_c.py); CPU only, the reference engine for the rest.

The compiled and generated engines share how they keep a plan per group, stack step
counters and tell a first step (plans.py); both read the rule through one expression IR
(optimlab.ir: the trace, its op table, the per-step hoisting).
* ``"auto"`` (the default): the generated kernel on the CPU wherever a C compiler exists
  (any group size: building it costs well under a second, cached); then native where a
  configuration maps onto a fused kernel (CUDA); else compiled, for groups of at least
  ``AUTO_COMPILE_ELEMENTS`` elements or ``AUTO_COMPILE_TENSORS`` tensors, where the eager
  step costs milliseconds (bandwidth, or ~50 µs of dispatch per tensor) and the seconds of
  compiling pay for themselves within a few thousand steps; else reference. The same
  thresholds hold for rules that are not elementwise (a compiled call per tensor): on
  the char-transformer's 30 tensors (117k elements) that call took 0.7-0.8x the
  reference engine's step, for 10-50 s of compiling cold, and neither came near timm's
  foreach step (benchmarks/README.md). Where
  compiling is not possible (no C++ compiler for the CPU, no Triton for CUDA), auto warns
  once and uses the reference engine.

Whatever the engine, a step traced by ``torch.compile(optimizer.step)`` and a step under
autograd (``differentiable=True``) run the reference engine: its rule is plain tensor
math that the trace (or autograd) takes whole.

Each engine is a function ``take(view, params, grads, states, cache) -> positions``: it
steps the tensors it can and returns the positions of the others, which go to the next
engine of the chain. ``cache`` is a dict the optimizer keeps per param group and engine
(never saved), where engines keep their layout, keyed on ``view.config``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.engines import eager, generated_c, inductor, torch_fused
from optimlab.rules import State
from optimlab.views import Config, View

Take = Callable[[View, Sequence[Tensor], Sequence[Tensor], Sequence[State], dict[str, Any]],
                list[int]]
AUTO_COMPILE_ELEMENTS = 1 << 20
AUTO_COMPILE_TENSORS = 100
_warned: set[str] = set()


def _compiled_if_worth_it(view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
                          states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    everything = list(range(len(params)))
    if len(params) < AUTO_COMPILE_TENSORS and \
            sum(p.numel() for p in params) < AUTO_COMPILE_ELEMENTS:
        return everything
    missing = sorted({str(p.device) for p in params if not inductor.available(p.device)})
    if missing:
        _warn_once("optimlab engine='auto': torch.compile cannot build kernels for "
                   f"{missing} (no C++ compiler on the CPU, or no Triton for CUDA); "
                   "using the reference engine there")
    return inductor.take(view, params, grads, states, cache)


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


TAKERS: dict[str, Take] = {"generated": generated_c.take, "native": torch_fused.take,
                           "compiled": inductor.take,
                           "compiled_if_worth_it": _compiled_if_worth_it,
                           "reference": eager.take}
#: the takers each engine offers a group's tensors to, in turn
CHAINS: dict[str, tuple[str, ...]] = {
    "auto": ("generated", "native", "compiled_if_worth_it", "reference"),
    "generated": ("generated", "reference"),
    "native": ("native", "reference"),
    "compiled": ("compiled", "reference"),
    "reference": ("reference",),
}
ENGINES = tuple(CHAINS)


def _declines_nothing(config: Config) -> str | None:
    return None


#: each taker's answer, before it is offered a group: why it cannot run this
#: configuration's rule (its structure, or a rule torch has no kernel for), or None
DECLINES: dict[str, Callable[[Config], str | None]] = {
    "generated": generated_c.declines, "native": torch_fused.declines,
    "compiled": inductor.declines, "compiled_if_worth_it": inductor.declines,
    "reference": _declines_nothing}


def run(engine: str, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
        states: Sequence[State], cache: dict[str, Any],
        declined: dict[str, str] | None = None) -> dict[str, int]:
    """Step a group with ``engine``; returns how many tensors each engine stepped.

    Each engine of the chain first says whether it declines the configuration (its
    reason goes into ``declined``, and the tensors to the next engine); one that took
    the group but failed to build its kernel says why in its cache (``"reason"``)."""
    chain = CHAINS[engine]
    if view.differentiable or torch.compiler.is_compiling():
        chain = ("reference",)
    positions = list(range(len(params)))
    used: dict[str, int] = {}
    reasons = _declines(chain, view.config, cache)
    for name in chain:
        if not positions:
            break
        label = name.removesuffix("_if_worth_it")
        reason = reasons[name]
        if reason is not None:
            if declined is not None:
                declined[label] = reason
            continue
        subset = (params, grads, states) if len(positions) == len(params) else \
            [[items[i] for i in positions] for items in (params, grads, states)]
        engine_cache = cache.setdefault(name, {})
        left = TAKERS[name](view, *subset, engine_cache)
        if declined is not None and engine_cache.get("declined") == view.config:
            declined[label] = engine_cache["reason"]
        taken = len(positions) - len(left)
        if taken:
            used[label] = used.get(label, 0) + taken
        positions = [positions[i] for i in left]
    return used


def _declines(chain: tuple[str, ...], config: Config, cache: dict[str, Any]
              ) -> dict[str, str | None]:
    """Each engine's answer for ``config``, asked once while the group's configuration
    is the same object (views are kept between steps: optimlab.bookkeeping)."""
    kept = cache.get("declines")
    if kept is None or kept[0] is not config or kept[1] != chain:
        kept = cache["declines"] = (config, chain,
                                    {name: DECLINES[name](config) for name in chain})
    return kept[2]
