"""engine="compiled": the group's tensors laid out over Inductor's kernels.

How an elementwise rule's group is laid out (measured in benchmarks/; any other rule's
tensors get a compiled call each, inductor_tensors.py):

* a tensor of at least ``BUCKET_MAX`` elements, or with 8-bit moments, gets a kernel call
  of its own on flat views of its param, gradient and state, made once (a call costs
  ~30-40 µs of guards and wrappers); an 8-bit tensor's last, partial block is stepped by
  the reference engine with the same codec;
* smaller tensors share one call: their moments and step counters live in flat buffers
  owned by the engine, each param's state entries being views into them (so state_dict
  and load_state_dict see torch's layout); params and gradients are gathered into flat
  scratch buffers and params scattered back, with one ``_foreach_copy_`` each;
* tensors the kernel cannot take (sparse or complex gradients, non-contiguous layouts,
  DTensors, fewer than 2 elements) are returned to the caller, which runs them through
  the reference engine.

A plan is kept per group and rebuilt when the params, the configuration (options, state keys,
storage) or a state tensor changes (a load_state_dict, a state entry replaced by hand, a
param's storage replaced): plans.py, shared with the generated C engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs, state
from optimlab.engines import inductor_tensors, plans
from optimlab.engines.eager import update_dense
from optimlab.engines.inductor_kernels import KernelSpec, Scalars, available, launcher, spec_for
from optimlab.engines.plans import Members
from optimlab.rules import MATRIX, State
from optimlab.views import Config, View

__all__ = ["BUCKET_MAX", "available", "declines", "take"]

BUCKET_MAX = 1 << 16
#: what torch.compile raises when it cannot trace or build a rule (Dynamo's and
#: Inductor's errors: InductorError and BackendCompilerFailed derive from the first)
TRACE_ERRORS = (torch._dynamo.exc.TorchDynamoException,)


def _fits(spec: KernelSpec, param: Tensor, grad: Tensor) -> bool:
    """Whether the kernel can take this tensor as flat views (its state is checked once it
    exists: ``_state_fits``)."""
    if grad.is_sparse or param.is_complex() or grad.is_complex() or param.numel() < 2 or \
            type(param) not in (Tensor, torch.nn.Parameter) or grad.device != param.device \
            or not available(param.device):
        return False
    return param.is_contiguous() and grad.is_contiguous()


def _state_fits(spec: KernelSpec, stored: State) -> bool:
    return all(stored[name].is_contiguous() for key, s in spec.storages for name in s.parts(key))


def _flat(spec: KernelSpec, tensor: Tensor) -> Tensor:
    """A flat view; with blocked storage (8-bit), its whole blocks shaped (n, block)."""
    return codecs.whole_blocks(tensor, spec.block)


def _stored_views(spec: KernelSpec, stored: State) -> list[Tensor]:
    return [view for key, storage in spec.storages
            for view in storage.kernel_views(codecs.stored_parts(stored, key, storage),
                                             spec.block)]


@dataclass
class Tail:
    """The last, partial block of an 8-bit tensor, stepped eagerly by the reference
    engine with the same codec (fewer than BLOCK elements: cheap)."""

    param: Tensor
    state: State
    storages: dict[str, Any]

    @classmethod
    def of(cls, spec: KernelSpec, param: Tensor, stored: State) -> Tail | None:
        whole = param.numel() // spec.block * spec.block
        if whole == param.numel():
            return None
        pieces = {}
        for key, storage in spec.storages:
            parts = storage.tail(codecs.stored_parts(stored, key, storage), whole)
            pieces.update(zip(storage.parts(key), parts, strict=True))
        return cls(param.view(-1)[whole:], pieces, dict(spec.storages))

    def step(self, view: View, numbers: Mapping[str, Any], grad: Tensor, step: float) -> None:
        whole = grad.numel() - self.param.numel()
        update_dense(view.rule, view.step_hp(step, numbers), self.param,
                     grad.view(-1)[whole:], self.state, self.storages)


@dataclass
class Alone:
    """A tensor that gets a kernel call of its own, with its flat views made once."""

    index: int
    spec: KernelSpec
    fresh: bool
    param: Tensor
    param_view: Tensor
    stored: list[tuple[State, str, Tensor]]  # the state entries the views were made of
    stored_views: list[Tensor]
    tail: Tail | None

    @classmethod
    def make(cls, index: int, spec: KernelSpec, fresh: bool, param: Tensor,
             stored: State) -> Alone:
        names = [name for key, s in spec.storages for name in s.parts(key)]
        return cls(index, spec, fresh, param, _flat(spec, param),
                   [(stored, name, stored[name]) for name in names],
                   _stored_views(spec, stored), Tail.of(spec, param, stored))

    def step(self, view: View, numbers: Mapping[str, Any], scalars: Scalars, grad: Tensor,
             stored: State, token: object) -> None:
        spec = self.spec
        step = state.step_number(view, stored, self.fresh)
        launcher(spec)([self.param_view, _flat(spec, grad), *self.stored_views,
                        *scalars.get(spec, view.hp(numbers), step, grad.device, token)])
        if self.tail is not None:
            self.tail.step(view, numbers, grad, step)
        state.advance(view, [stored])
        self.fresh = False

    def intact(self) -> bool:
        """False if the param's storage or a state entry was replaced since."""
        return self.param_view.data_ptr() == self.param.data_ptr() and \
            all(entry.get(name) is tensor for entry, name, tensor in self.stored)


def _launch(spec: KernelSpec, view: View, numbers: Mapping[str, Any], scalars: Scalars,
            param: Tensor, grad: Tensor, stored: State, fresh: bool, token: object) -> None:
    """One kernel call on one tensor's flat views."""
    step = state.step_number(view, stored, fresh)
    tensors = [_flat(spec, param), _flat(spec, grad), *_stored_views(spec, stored),
               *scalars.get(spec, view.hp(numbers), step, param.device, token)]
    launcher(spec)(tensors)
    state.advance(view, [stored])


class Bucket:
    """Tensors smaller than ``BUCKET_MAX`` of one spec, stepped by one kernel call.

    Their moments and step counters are moved into flat buffers, and each param's state
    entries become views of them (plans.Members); params and gradients are copied into
    flat scratch buffers before the call and params copied back after it.
    """

    def __init__(self, view: View, spec: KernelSpec, params: list[Tensor],
                 states: list[State], fresh: list[bool]) -> None:
        self.spec, self.params = spec, params
        self.members = Members.of(view, states, fresh)
        sizes = [p.numel() for p in params]
        first = params[0]
        self.flat_param = torch.empty(sum(sizes), dtype=first.dtype, device=first.device)
        self.flat_grad = torch.empty_like(self.flat_param, dtype=spec.dtypes[1])
        self.param_views = _shaped_views(self.flat_param, params)
        self.grad_views = _shaped_views(self.flat_grad, params)
        self.moments: list[Tensor] = []
        for key, storage in spec.storages:
            for name in storage.parts(key):
                flat = torch.cat([stored[name].reshape(-1) for stored in states])
                self.members.adopt(states, name, _shaped_views(flat, params))
                self.moments.append(flat)

    def step(self, view: View, numbers: Mapping[str, Any], scalars: Scalars,
             grads: list[Tensor], token: object) -> bool:
        """One step of every member; False (nothing done) if they are not at one step."""
        step = self.members.step_number(view)
        if step is None:
            return False
        torch._foreach_copy_(self.param_views, self.params)
        torch._foreach_copy_(self.grad_views, grads)
        tensors = [self.flat_param, self.flat_grad, *self.moments,
                   *scalars.get(self.spec, view.hp(numbers), step, self.flat_param.device,
                                token)]
        launcher(self.spec)(tensors)
        torch._foreach_copy_(self.params, self.param_views)
        self.members.advance(step)
        return True


def _shaped_views(flat: Tensor, like: list[Tensor]) -> list[Tensor]:
    pieces = flat.split([t.numel() for t in like])
    return [piece.view(t.shape) for piece, t in zip(pieces, like, strict=True)]


@dataclass
class Plan(plans.Plan):
    """How one group's tensors are stepped: alone, in buckets, or left to the caller."""

    alone: list[Alone] = field(default_factory=list)
    buckets: list[tuple[list[int], Bucket]] = field(default_factory=list)
    rest: list[int] = field(default_factory=list)
    scalars: Scalars = field(default_factory=Scalars)

    @classmethod
    def build(cls, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
              states: Sequence[State], key: tuple[Any, ...]) -> Plan:
        rest: list[int] = []
        alone, small = [], {}
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            spec = spec_for(view, param, grad)
            if not _fits(spec, param, grad):
                rest.append(i)
            elif param.numel() >= BUCKET_MAX or spec.block > 1:
                alone.append((i, spec))
            else:
                small.setdefault(spec, []).append(i)
        for spec, indices in list(small.items()):
            if sum(params[i].numel() for i in indices) < 2:  # sizes 0 and 1 recompile
                rest.extend(small.pop(spec))
        # state is created only for what the kernel takes: the reference engine tells a
        # first step by the state it creates itself
        fresh = {i: state.prepare(view, params[i], states[i])
                 for i in [i for i, _ in alone] + [i for v in small.values() for i in v]}
        plan = cls(key)
        for i, spec in alone:
            if _state_fits(spec, states[i]):
                plan.alone.append(Alone.make(i, spec, fresh[i], params[i], states[i]))
            else:
                rest.append(i)
        for spec, indices in small.items():
            unfit = [i for i in indices if not _state_fits(spec, states[i])]
            rest.extend(unfit)
            members = [i for i in indices if i not in unfit]
            if members:
                bucket = Bucket(view, spec, [params[i] for i in members],
                                [states[i] for i in members], [fresh[i] for i in members])
                plan.buckets.append((members, bucket))
        plan.rest = sorted(rest)
        return plan

    def intact(self) -> bool:
        return all(b.members.intact() for _, b in self.buckets) and \
            all(a.intact() for a in self.alone)

    def usable(self, key: tuple[Any, ...], grads: Sequence[Tensor]) -> bool:
        return super().usable(key, grads) and not any(g.is_sparse for g in grads)

    def run(self, view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
            states: Sequence[State]) -> list[int]:
        """Step the plan's members; a kernel that fails to compile (Dynamo or Inductor
        refusing the rule) leaves its tensors, and every one after it, to the caller:
        compiling fails before the kernel touches anything."""
        rest, token, numbers = list(self.rest), object(), view.floats()
        pending = [alone.index for alone in self.alone] + \
            [i for indices, _ in self.buckets for i in indices]
        try:
            for alone in self.alone:
                grad = grads[alone.index]
                if grad.is_contiguous():
                    alone.step(view, numbers, self.scalars, grad, states[alone.index], token)
                else:
                    rest.append(alone.index)
                pending.remove(alone.index)
            for indices, bucket in self.buckets:
                self._step_bucket(view, numbers, params, grads, states, indices, bucket,
                                  token)
                del pending[:len(indices)]
        except TRACE_ERRORS as error:
            self.failure = f"torch.compile failed on rule {view.rule.name!r}: {error}"
            rest.extend(pending)
        return sorted(rest)

    def _step_bucket(self, view: View, numbers: Mapping[str, Any], params: Sequence[Tensor],
                     grads: Sequence[Tensor], states: Sequence[State], indices: list[int],
                     bucket: Bucket, token: object) -> None:
        if bucket.step(view, numbers, self.scalars, [grads[i] for i in indices], token):
            return
        for i, fresh in zip(indices, bucket.members.fresh, strict=True):
            _launch(bucket.spec, view, numbers, self.scalars, params[i],
                    grads[i].contiguous(), states[i], fresh, token)
        bucket.members.fresh = [False] * len(indices)


def take(view: View, params: Sequence[Tensor], grads: Sequence[Tensor],
         states: Sequence[State], cache: dict[str, Any]) -> list[int]:
    """Step every tensor the compiled kernels can take; return the positions of the rest
    (plans.take_with_plan). A rule that is not elementwise gets a call per tensor
    (inductor_tensors.py)."""
    if not view.rule.elementwise:
        return inductor_tensors.take(view, params, grads, states, cache)
    return plans.take_with_plan(Plan.build, (), view, params, grads, states, cache)


def declines(config: Config) -> str | None:
    """Why this engine does not run ``config``'s rule. An elementwise rule's tensors are
    joined end to end, a per-tensor or global rule's stepped one by one; a rule
    torch.compile cannot build is handed on when its kernel fails to compile. Declined:
    a matrix rule (Muon's bf16 Newton–Schulz, fused by Inductor, rounds differently from
    torch's eager bf16 matmuls, beyond the agreement the engines keep) and a rule that
    reads numbers from the stored param (``tensor_scalars``: Adafactor's ε₁, which may be
    None until then)."""
    rule = config.rule
    if rule.structure == MATRIX:
        return (f"rule {rule.name!r} is matrix: its bf16 matmuls compiled by Inductor round "
                "differently from torch's eager ones; the reference engine runs it")
    if rule.tensor_scalars is not None:
        return (f"rule {rule.name!r} is {rule.structure} and reads numbers from each param "
                "as stored (tensor_scalars), which the compiled call per tensor does not take "
                "yet")
    return None
