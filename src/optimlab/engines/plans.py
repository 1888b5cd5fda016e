"""What the engines that lay a group out over kernels share (inductor.py, generated_c.py).

Both keep, per param group, a *plan*: which tensors each kernel call steps, made once and
kept while the group's params (by identity), its configuration (views.Config) and every
state entry the plan adopted stay what they were. Both step tensors of one call together,
with their ``step`` counters stacked into one tensor (each param's ``state["step"]`` a view
of it, torch's layout kept), so that a call reads one counter and adds to all at once;
both tell a first step (the moments created now) from the state they create, and leave
a group of tensors not at one step to be stepped one by one or by the next engine.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import state
from optimlab.rules import State
from optimlab.views import Config, View


def elementwise_only(config: Config, how: str) -> str | None:
    """An engine's ``declines`` when ``how`` it runs a group (joined end to end, one flat
    C loop) keeps the meaning of elementwise rules only."""
    if not config.rule.elementwise:
        return (f"rule {config.rule.name!r} is {config.rule.structure} (its state or "
                f"update reads across elements): {how} and takes elementwise rules only")
    return None


@dataclass
class Members:
    """Tensors stepped by one kernel call: their step counters, stacked, and whether
    their moments were created this step (``fresh``).

    ``entries``, ``keys``, ``held`` list the state entries the call reads through tensors
    it holds (the stacked counter's views, flat buffers' views, or the entries themselves):
    replace one (a load_state_dict, an entry set by hand) and the plan no longer holds."""

    fresh: list[bool]
    counters: Tensor | None = None
    # the adopted entries, as three parallel lists: (state, key) held the tensor
    entries: list[State] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    held: list[Tensor] = field(default_factory=list)
    # t of the last step counted, and the counters' version after it: while no one has
    # written them since, the next t is known without reading them
    counted: tuple[float, int] | None = None

    @classmethod
    def of(cls, view: View, states: Sequence[State], fresh: list[bool]) -> Members:
        members = cls(list(fresh))
        if view.rule.counts_steps:
            members.counters = torch.stack([stored["step"] for stored in states])
            members.adopt(states, "step", list(members.counters.unbind()))
        return members

    def adopt(self, states: Sequence[State], key: str, tensors: Sequence[Tensor]) -> None:
        """Make ``tensors[i]`` the entry ``key`` of ``states[i]``, and watch it."""
        for stored, tensor in zip(states, tensors, strict=True):
            stored[key] = tensor
            self.entries.append(stored)
            self.keys.append(key)
            self.held.append(tensor)

    def intact(self) -> bool:
        """False if an adopted state entry was replaced since (one pass in C: this runs
        at every step)."""
        return all(map(operator.is_, map(dict.get, self.entries, self.keys), self.held))

    def step_number(self, view: View) -> float | None:
        """t for this call, or None when the members are not all at one step."""
        counted = self.counted
        if counted is not None and self.counters is not None and \
                self.counters._version == counted[1]:
            return counted[0] + 1
        return state.shared_step_number(view, self.counters, self.fresh)

    def advance(self, step: float) -> None:
        """Count the step ``step`` the call took, in every member's counter."""
        if self.counters is not None:
            self.counters += 1
            self.counted = (step, self.counters._version)
        self.fresh = [False] * len(self.fresh)


@dataclass
class Plan:
    """How one group's tensors are stepped (an engine's subclass says how): ``key`` is
    what it was made for; ``failure`` says why its kernels could not be built (the engine
    then declines this configuration), ``holds`` False makes the next step lay the group
    out anew."""

    key: tuple[Any, ...]
    failure: str | None = field(default=None, init=False)
    holds: bool = field(default=True, init=False)

    def intact(self) -> bool:
        raise NotImplementedError

    def usable(self, key: tuple[Any, ...], grads: Sequence[Tensor]) -> bool:
        return key == self.key and self.intact()

    def run(self, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
            states: Sequence[State]) -> list[int]:
        raise NotImplementedError


Build = Callable[[View, Sequence[Tensor], Sequence[Tensor], Sequence[State], tuple[Any, ...]],
                 Plan]


def take_with_plan(build: Build, declines_on: tuple[type[Exception], ...], view: View,
                   params: Sequence[Tensor], grads: Sequence[Tensor],
                   states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    """Step a group through its kept plan (built anew when it no longer fits); return the
    positions left to the next engine. Nothing under torch.compile (the caller's trace
    takes the rule itself) or autograd; nothing for a configuration whose kernel failed
    to build (``declines_on`` raised by ``build``, or ``Plan.failure``): the reason is
    kept in ``cache``, once."""
    if torch.compiler.is_compiling() or view.differentiable or \
            cache.get("declined") == view.config:
        return list(range(len(params)))
    key = (tuple(map(id, params)), view.config)
    plan = cache.get("plan")
    if plan is None or not plan.usable(key, grads):
        try:
            plan = cache["plan"] = build(view, params, grads, states, key)
        except declines_on as error:
            cache.pop("plan", None)
            cache["declined"], cache["reason"] = view.config, f"{type(error).__name__}: {error}"
            return list(range(len(params)))
    rest = plan.run(view, params, grads, states)
    if plan.failure is not None:
        cache["declined"], cache["reason"] = view.config, plan.failure
    if plan.failure is not None or not plan.holds:
        del cache["plan"]
    return rest
