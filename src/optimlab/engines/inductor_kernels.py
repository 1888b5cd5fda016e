"""The compiled engine's kernels: the rule compiled by Inductor, once per configuration.

A ``KernelSpec`` names everything a kernel is specialised to: the group's configuration
(views.Config: the rule, its options, its state keys), how each moment is stored
(codecs.py), the numbers that enter as 0-d tensors (those the rule declares, and the
per-step numbers it derives), and the dtypes. The
kernel is ``decode -> rules.<algorithm> -> encode``, compiled by torch.compile with
dynamic sizes, so that one kernel serves every tensor of a configuration and a schedule
never recompiles. inductor.py lays a group's tensors out over these kernels.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import state
from optimlab.codecs import Storage
from optimlab.engines.eager import math_dtype
from optimlab.ir import hoisting
from optimlab.ir.hoisting import Split
from optimlab.rules import Rule
from optimlab.views import Config, View


def available(device: torch.device) -> bool:
    """Whether torch.compile can build kernels for ``device``: a C++ compiler for the CPU,
    Triton for CUDA."""
    return _available(device.type)


@functools.cache
def _available(device_type: str) -> bool:
    if device_type == "cpu":
        return any(shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++",
                                                   "clang++", "c++"))
    if device_type == "cuda":
        from torch.utils._triton import has_triton

        return has_triton()
    return False


@dataclass(frozen=True)
class KernelSpec:
    """Everything a compiled kernel is specialised to (one compile per distinct spec)."""

    config: Config
    storages: tuple[tuple[str, Storage], ...]  # (moment name, its storage), in state_keys order
    math_dtype: torch.dtype
    dtypes: tuple[torch.dtype, torch.dtype, str]  # param dtype, grad dtype, device type

    @property
    def rule(self) -> Rule:
        return self.config.rule

    @property
    def scalar_names(self) -> tuple[str, ...]:
        return (*self.rule.numbers, *self.rule.step_numbers)

    @property
    def block(self) -> int:
        """Elements the kernel takes together: whole blocks of the widest storage block."""
        return max((s.block for _, s in self.storages), default=1)

    @property
    def split(self) -> Split | None:
        """The rule split into per-step values and per-element body (hoisting.py), or
        None for a rule the trace cannot follow (the kernel then traces the rule itself,
        its numbers entering as fp64)."""
        return _split(self.config)

    @property
    def scalar_dtype(self) -> torch.dtype:
        return self.math_dtype if self.split is not None else torch.float64

    def scalar_values(self, hp: Mapping[str, Any], step: float) -> list[float]:
        """What the kernel's scalar inputs hold for ``step``."""
        values = {**hp, **self.rule.step_scalars(hp, step)}
        if self.split is None:
            return [values[name] for name in self.scalar_names]
        return self.split.host_values(values)


@functools.cache
def _split(config: Config) -> Split | None:
    rule = config.rule
    try:
        return hoisting.split(rule.update, dict(config.options),
                              (*rule.numbers, *rule.step_numbers), config.state_keys)
    except hoisting.UnsupportedRule:
        return None


def _rule_step(spec: KernelSpec, split: Split | None, param: Tensor, grad: Tensor,
               *tensors: Tensor) -> None:
    """decode -> rule -> encode, in place: the function that torch.compile turns into one
    kernel (``tensors``: the stored parts of each moment, then the scalars)."""
    stored_count = sum(len(s.parts(k)) for k, s in spec.storages)
    stored, scalars = tensors[:stored_count], tensors[stored_count:]
    moments, parts = {}, {}
    position = 0
    for key, storage in spec.storages:
        width = len(storage.parts(key))
        parts[key] = stored[position:position + width]
        position += width
        moments[key] = storage.kernel_decode(parts[key], spec.math_dtype)
    if split is None:
        hp = {**dict(spec.config.options), **dict(zip(spec.scalar_names, scalars,
                                                      strict=True))}
        new_param, new_moments = spec.rule.update(param.to(spec.math_dtype),
                                                  grad.to(spec.math_dtype), moments, hp)
    else:
        new_param, new_moments = split.element(param.to(spec.math_dtype),
                                               grad.to(spec.math_dtype), moments, scalars)
    param.copy_(new_param)
    for key, storage in spec.storages:
        storage.kernel_encode(parts[key], new_moments[key])


@functools.cache
def compiled_kernel(spec: KernelSpec) -> Any:
    """The compiled kernel of ``spec``, built once per process (Inductor also caches the
    generated code on disk, so a second process compiles in about a second)."""
    return compile_apart(functools.partial(_rule_step, spec, spec.split),
                         f"optimlab_{spec.rule.name}_kernel_{abs(hash(spec)) % 10**8}")


def compile_apart(step: Any, name: str, dynamic: bool | None = None) -> Any:
    """``step`` compiled whole (fullgraph) under a code object of its own, named ``name``:
    Dynamo keeps its compiled graphs per code object and gives up after a few, so a code
    object per spec keeps every configuration's kernel apart."""
    def kernel(*tensors: Tensor) -> None:
        step(*tensors)

    code = kernel.__code__.replace(co_name=name, co_qualname=name)
    unique = types.FunctionType(code, kernel.__globals__, name, None, kernel.__closure__)
    return torch.compile(unique, fullgraph=True, dynamic=dynamic, options=_inductor_options())


def _inductor_options() -> dict[str, Any]:
    """What a cold first compile need not do for one elementwise kernel:

    * Inductor's pattern matcher and joint-graph passes (attention, matmul fusions,
      constant folding) build their patterns on first use, ~3 s, and have nothing to do in
      an elementwise optimizer step;
    * Inductor probes the C++ compiler for each vector ISA the CPU reports, by building
      test programs: 7-9 s. On x86-64 Linux the ISAs come from the CPU's own flags
      (torch.cpu), and gcc and clang build them all, so the probe is skipped.
    """
    options: dict[str, Any] = {"pattern_matcher": False, "use_joint_graph_passes": False}
    if sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64"):
        options["cpp.vec_isa_ok"] = True
    return options


class Launcher:
    """Calls one compiled kernel, marking sizes dynamic on its first call."""

    def __init__(self, spec: KernelSpec) -> None:
        self.spec = spec
        self.kernel = compiled_kernel(spec)
        self.called = False

    def __call__(self, tensors: list[Tensor]) -> None:
        if not self.called:
            for tensor in tensors:
                if tensor.dim() > 0:
                    torch._dynamo.mark_dynamic(tensor, 0)
            self.called = True
        self.kernel(*tensors)


@functools.cache
def launcher(spec: KernelSpec) -> Launcher:
    return Launcher(spec)


def spec_for(view: View, param: Tensor, grad: Tensor) -> KernelSpec:
    """The kernel that steps ``param`` under this group's configuration."""
    storages = tuple(state.storages(view, param).items())
    return KernelSpec(view.config, storages, math_dtype(param, (s for _, s in storages)),
                      (param.dtype, grad.dtype, param.device.type))


@dataclass
class Scalars:
    """0-d tensors holding this step's numbers, filled in place (never re-created, so that
    the kernel sees the same inputs and never recompiles), once per step and step count."""

    tensors: dict[tuple[KernelSpec, torch.device], list[Tensor]] = field(default_factory=dict)
    filled: dict[tuple[KernelSpec, torch.device], tuple[object, float]] = field(
        default_factory=dict)

    def get(self, spec: KernelSpec, hp: Mapping[str, Any], step: float,
            device: torch.device, token: object) -> list[Tensor]:
        """The scalars for ``step`` (``hp``: the group's options and numbers as floats);
        ``token`` names the optimizer step being taken."""
        slot = self.tensors.get((spec, device))
        values = None
        if slot is None:
            # computed in double on the host (1 − β from an fp32 β = 0.9999 would be 1.6e-4
            # off), rounded once to the kernel's element type
            values = spec.scalar_values(hp, step)
            slot = self.tensors[spec, device] = [
                torch.zeros((), dtype=spec.scalar_dtype, device=device) for _ in values]
        if self.filled.get((spec, device)) != (token, step):
            values = values or spec.scalar_values(hp, step)
            for tensor, value in zip(slot, values, strict=True):
                tensor.fill_(value)
            self.filled[spec, device] = (token, step)
        return slot
