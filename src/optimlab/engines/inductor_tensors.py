"""engine="compiled" for rules that are not elementwise: one compiled call per tensor.

A per-tensor, matrix or global rule (rules.Rule.structure) reads across the elements of
its tensor (a norm, a row mean, a matmul), so the tensors of a group cannot be joined end
to end as inductor.py joins an elementwise rule's. Here each tensor gets a call of its
own, on the tensor as it is (its shape kept), of the reference engine's own step,
``eager.update_dense`` (decode -> rule -> encode, in place, codecs included), compiled
whole by torch.compile. What stays fixed between calls:

* sizes are dynamic, so one kernel serves every shape of a kind: a kind is a
  ``TensorSpec`` (the configuration, each moment's storage, the dtypes, and which sizes
  are 1, which Dynamo always specialises), so a GPT's matrices share one kernel and its
  vectors another;
* the numbers (lr, betas, ...), a GLOBAL rule's reduction over the optimizer
  (``View.with_numbers``: LAMB's clip divisor) and the per-step numbers (bias
  corrections) enter as 0-d fp64 tensors, filled in place once per step, so a schedule
  never recompiles. They are computed on the host in double, as the reference engine's
  Python floats are.

A tensor the kernel cannot take (sparse or complex, non-contiguous, empty, a DTensor, on
a device torch.compile cannot build for) and every tensor after a kernel that fails to
compile go back to the caller, which runs the reference engine on them: compiling fails
before the kernel touches anything, so nothing is stepped twice.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import state
from optimlab.codecs import Storage
from optimlab.engines import plans
from optimlab.engines.eager import update_dense
from optimlab.engines.inductor_kernels import available, compile_apart
from optimlab.rules import State
from optimlab.views import Config, View

#: what torch.compile raises when it cannot trace or build a rule (as inductor.py), or
#: when one kernel has been compiled again too often (fullgraph turns Dynamo's fallback
#: to eager into this error)
TRACE_ERRORS = (torch._dynamo.exc.TorchDynamoException,
                torch._dynamo.exc.FailOnRecompileLimitHit)


@dataclass(frozen=True)
class TensorSpec:
    """Everything one per-tensor kernel is specialised to (one compile per distinct spec)."""

    config: Config
    storages: tuple[tuple[str, Storage], ...]  # (moment name, its storage), in state order
    scalar_names: tuple[str, ...]  # the view's numbers, then the rule's per-step numbers
    dtypes: tuple[torch.dtype, torch.dtype, str]  # param dtype, grad dtype, device type
    unit_sizes: tuple[tuple[bool, ...], ...]  # which sizes are 1: param, grad, stored parts

    @property
    def part_names(self) -> tuple[str, ...]:
        """The state entries the kernel reads and writes, in its argument order."""
        return tuple(name for key, storage in self.storages for name in storage.parts(key))


def _tensor_step(spec: TensorSpec, param: Tensor, grad: Tensor, *tensors: Tensor) -> None:
    """The reference engine's step of one tensor, with its state entries and numbers as
    arguments: the function torch.compile turns into one kernel."""
    names = spec.part_names
    stored = dict(zip(names, tensors[:len(names)], strict=True))
    hp = {**dict(spec.config.options),
          **dict(zip(spec.scalar_names, tensors[len(names):], strict=True))}
    update_dense(spec.config.rule, hp, param, grad, stored, dict(spec.storages))


class Launcher:
    """Calls one spec's compiled kernel; the first call compiles it."""

    def __init__(self, spec: TensorSpec) -> None:
        name = f"optimlab_{spec.config.rule.name}_tensor_{abs(hash(spec)) % 10**8}"
        self.kernel = compile_apart(functools.partial(_tensor_step, spec), name, dynamic=True)
        self.compiled = False

    def __call__(self, tensors: list[Tensor]) -> None:
        if self.compiled:
            self.kernel(*tensors)
            return
        # Dynamo gives sizes that are equal on the first call one symbol ("duck shaping"):
        # a first 768x768 matrix would compile a kernel for square matrices only
        with torch.fx.experimental._config.patch(use_duck_shape=False):
            self.kernel(*tensors)
        self.compiled = True


@functools.cache
def launcher(spec: TensorSpec) -> Launcher:
    return Launcher(spec)


@dataclass
class Numbers:
    """The kernels' scalar inputs: one 0-d fp64 tensor per name and device, filled in
    place (never re-created, so the kernels' guards hold) when the optimizer step
    (``token``) or the step count changes."""

    names: tuple[str, ...]
    tensors: dict[torch.device, list[Tensor]] = field(default_factory=dict)
    filled: dict[torch.device, tuple[object, float]] = field(default_factory=dict)

    def get(self, view: View, numbers: Mapping[str, float], step: float | Tensor,
            device: torch.device, token: object) -> list[Tensor]:
        slot = self.tensors.get(device)
        if slot is None:
            slot = self.tensors[device] = [torch.zeros((), dtype=torch.float64, device=device)
                                           for _ in self.names]
        # a counter kept on the device gives t as a tensor: refill rather than compare
        # (which would wait for the device)
        if isinstance(step, Tensor) or self.filled.get(device) != (token, step):
            values = view.step_hp(step, numbers)
            for tensor, name in zip(slot, self.names, strict=True):
                tensor.fill_(values[name])
            self.filled[device] = (token, step)
        return slot


def _fits(param: Tensor, grad: Tensor) -> bool:
    """Whether the kernel can take this tensor (its state is checked once it exists)."""
    # a 0-d param compiled with dynamic shapes came out up to 1% off the reference engine
    # (LAMB, fp64; found by tests/test_engines.py): 0-d and empty tensors go to the
    # reference engine, which costs nothing at their size
    if grad.is_sparse or param.is_complex() or grad.is_complex() or param.dim() == 0 or \
            param.numel() == 0 or type(param) not in (Tensor, torch.nn.Parameter) or \
            grad.device != param.device or not available(param.device):
        return False
    return param.is_contiguous()


def _unit_sizes(tensors: Sequence[Tensor]) -> tuple[tuple[bool, ...], ...]:
    return tuple(tuple(size == 1 for size in t.shape) for t in tensors)


@dataclass
class Entry:
    """A tensor the plan steps: its kernel, and the tensors it was made of (replace one,
    by a load_state_dict or by hand, and the plan is made anew)."""

    index: int
    launcher: Launcher
    param: Tensor
    # the param as a plain tensor: Dynamo compiles an nn.Parameter for its exact shape
    target: Tensor
    address: int
    parts: list[Tensor]
    stored: State
    names: tuple[str, ...]
    fresh: bool

    def intact(self) -> bool:
        return self.param.data_ptr() == self.address and all(
            self.stored.get(name) is part for name, part in zip(self.names, self.parts,
                                                                strict=True))


@dataclass
class Plan(plans.Plan):
    """How one group's tensors are stepped: a call each, or left to the caller."""

    entries: list[Entry] = field(default_factory=list)
    rest: list[int] = field(default_factory=list)
    numbers: Numbers = field(default_factory=lambda: Numbers(()))

    @classmethod
    def build(cls, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
              states: Sequence[State], key: tuple[Any, ...]) -> Plan:
        plan = cls(key)
        plan.numbers = Numbers((*view.numbers, *view.rule.step_numbers))
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if not _fits(param, grad):
                plan.rest.append(i)
                continue
            # state is created only for what the kernel takes: the reference engine tells
            # a first step by the state it creates itself
            fresh = state.prepare(view, param, states[i])
            storages = tuple(state.storages(view, param).items())
            names = tuple(name for k, s in storages for name in s.parts(k))
            parts = [states[i][name] for name in names]
            if not all(p.is_contiguous() and p.device == param.device for p in parts):
                plan.rest.append(i)
                continue
            spec = TensorSpec(view.config, storages, plan.numbers.names,
                              (param.dtype, grad.dtype, param.device.type),
                              _unit_sizes([param, grad, *parts]))
            plan.entries.append(Entry(i, launcher(spec), param, param.detach(),
                                      param.data_ptr(), parts, states[i], names, fresh))
        return plan

    def intact(self) -> bool:
        return all(entry.intact() for entry in self.entries)

    def usable(self, key: tuple[Any, ...], grads: Sequence[Tensor]) -> bool:
        return super().usable(key, grads) and not any(g.is_sparse for g in grads)

    def run(self, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
            states: Sequence[State]) -> list[int]:
        """Step each entry with one call; a kernel that fails to compile leaves its tensor
        and every one after it to the caller."""
        rest, token, numbers = list(self.rest), object(), view.floats()
        stepped: list[State] = []
        try:
            for entry in self.entries:
                step = state.step_number(view, entry.stored, entry.fresh)
                grad = grads[entry.index]
                entry.launcher([entry.target, grad.contiguous(), *entry.parts,
                                *self.numbers.get(view, numbers, step, grad.device, token)])
                entry.fresh = False
                stepped.append(entry.stored)
        except TRACE_ERRORS as error:
            self.failure = f"torch.compile failed on rule {view.rule.name!r}: {error}"
            rest.extend(entry.index for entry in self.entries[len(stepped):])
        state.advance(view, stepped)
        return sorted(rest)


def take(view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
         states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    """Step every tensor a per-tensor kernel can take; return the positions of the rest
    (plans.take_with_plan)."""
    return plans.take_with_plan(Plan.build, (), view, params, grads, states, cache)
