"""engine="generated": the rule generated as C (ckernel/), one call per group on the CPU.

ckernel traces the rule of rules.py into C, places it in the loop of the group's storages
(fp32, fp64, bf16, fp16, 8-bit blockwise), builds it with the system C compiler (cached
on disk) and steps every tensor of a group in one call, split over torch's threads. This
module lays a group out over those calls:

* a tensor is taken when it is a dense, contiguous CPU tensor of fp32, fp64, bf16 or fp16
  (not a subclass such as DTensor) whose gradient is too, in its dtype; the rest go back
  to the caller (the next engine of the chain);
* taken tensors are grouped by what their kernel is specialised to (param dtype, how each
  moment is stored) and by their step: one call per such group, its members' ``step``
  counters moved into one flat tensor (each state entry a view of it, torch's layout
  kept), so that a step reads one counter and adds to all at once;
* a plan is kept per group and rebuilt when the params, the configuration (views.Config)
  or a state entry changes (load_state_dict, a state entry replaced, momentum 0 -> 0.9):
  plans.py, shared with the compiled engine.

A rule the generator cannot express (``ckernel.UnsupportedRule``), or a compiler failure,
leaves the group to the next engine, once, with the reason kept in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import ckernel, codecs, state
from optimlab.engines import plans
from optimlab.engines.plans import Members
from optimlab.rules import State
from optimlab.views import Config, View

__all__ = ["available", "take"]

KERNEL_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def available() -> bool:
    """Whether C kernels can be built here (a C compiler that links OpenMP)."""
    return ckernel.available()


def _fits(param: Tensor, grad: Tensor) -> bool:
    return param.device.type == "cpu" and param.dtype in KERNEL_DTYPES and \
        type(param) in (Tensor, torch.nn.Parameter) and param.is_contiguous() and \
        param.numel() > 0 and not grad.is_sparse and grad.dtype == param.dtype and \
        grad.device == param.device and grad.is_contiguous()


@dataclass
class Call:
    """One kernel call: its members (positions in the group), their bound kernel, and
    their stacked step counters and freshness (plans.Members)."""

    indices: list[int]
    bound: Any
    members: Members

    def run(self, view: View, numbers: dict[str, float], grads: Sequence[Tensor]) -> bool:
        """One step of every member; False (nothing done) if they are not at one step
        or a gradient is not what the kernel reads."""
        step = self.members.step_number(view)
        if step is None:
            return False
        hp = view.hp(numbers)
        values = {**numbers, **view.rule.step_scalars(hp, step)}
        try:
            self.bound([grads[i] for i in self.indices], values)
        except ValueError:  # a gradient of another dtype or layout: checked before the call
            return False
        self.members.advance(step)
        return True


def _kernel(view: View, param: Tensor, storages: dict[str, codecs.Storage]) -> Any:
    config = view.config
    return ckernel.kernel_for(
        view.rule.update, dict(config.options),
        (*view.rule.numbers, *view.rule.step_numbers), config.state_keys,
        [s.kind for s in storages.values()], param.dtype, param.dtype)


def _call(view: View, indices: list[int], params: Sequence[Tensor],
          states: Sequence[State], fresh: list[bool], kernel: Any) -> Call:
    members = [states[i] for i in indices]
    stored, names = [], []
    for i in indices:
        storages = state.storages(view, params[i])
        stored.append([part for key, s in storages.items()
                       for part in codecs.stored_parts(states[i], key, s)])
        names.append([name for key, s in storages.items() for name in s.parts(key)])
    call = Call(indices, kernel.bind([params[i] for i in indices], stored),
                Members.of(view, members, fresh))
    for entry, keys in zip(members, names, strict=True):  # bound by pointer: watched
        for name in keys:
            call.members.adopt([entry], name, [entry[name]])
    return call


@dataclass
class Plan(plans.Plan):
    """How one group's tensors are stepped: in calls, or left to the caller."""

    calls: list[Call] = field(default_factory=list)
    rest: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
              states: Sequence[State], key: tuple[Any, ...]) -> Plan:
        rest, groups = [], {}
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if not _fits(param, grad) or not _step_fits(view, states[i]):
                rest.append(i)
                continue
            fresh = state.prepare(view, param, states[i])
            storages = state.storages(view, param)
            if not all(p.is_contiguous() for k, s in storages.items()
                       for p in codecs.stored_parts(states[i], k, s)):
                rest.append(i)
                continue
            step = float(states[i]["step"]) if view.rule.counts_steps else fresh
            kinds = tuple(s.kind for s in storages.values())
            groups.setdefault((param.dtype, kinds, step), []).append((i, fresh))
        plan = cls(key, rest=sorted(rest))
        for members in groups.values():
            indices = [i for i, _ in members]
            kernel = _kernel(view, params[indices[0]], state.storages(view, params[indices[0]]))
            plan.calls.append(_call(view, indices, params, states, [f for _, f in members],
                                    kernel))
        return plan

    def intact(self) -> bool:
        return all(call.members.intact() for call in self.calls)

    def run(self, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
            states: Sequence[State]) -> list[int]:
        """Step every call; returns the positions left to the caller (a call that could
        not run leaves its members to the caller for this step, and the plan is laid out
        anew at the next: ``holds``)."""
        numbers, rest = view.floats(), list(self.rest)
        for call in self.calls:
            if not call.run(view, numbers, grads):
                rest.extend(call.indices)
                self.holds = False
        return sorted(rest)


def _step_fits(view: View, stored: State) -> bool:
    """A counter, if the rule keeps one, on the CPU where the kernel's caller reads it."""
    step = stored.get("step")
    return not view.rule.counts_steps or step is None or step.device.type == "cpu"


def declines(config: Config) -> str | None:
    """Why this engine does not run ``config``'s rule, or None: one flat C loop runs every
    tensor of a group, so only an elementwise rule keeps its meaning."""
    return plans.elementwise_only(config, "the generated C loop runs one flat index over "
                                  "a group")


def take(view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
         states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    """Step every tensor a generated kernel can take; return the positions of the rest
    (plans.take_with_plan; a rule the generator cannot express, or a compiler failure,
    declines the configuration)."""
    if not available():
        return list(range(len(params)))
    return plans.take_with_plan(Plan.build, (ckernel.UnsupportedRule, ckernel.BuildError),
                                view, params, grads, states, cache)
