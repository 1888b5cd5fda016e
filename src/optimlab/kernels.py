"""Compiled kernels: the rule traced once per configuration into one fused loop.

A ``KernelSpec`` names everything a kernel is specialised to: the rule, its options
(bools and strings, which select a variant of the equation), how each moment is stored
(codecs.py), the names of the numbers that enter as 0-d tensors, and the dtypes. The
kernel is ``decode -> rules.<algorithm> -> encode``, compiled by torch.compile with
dynamic sizes, so that one kernel serves every tensor of a configuration and a schedule
never recompiles. compiled.py lays a group's tensors out over these kernels.
"""

from __future__ import annotations

import functools
import os
import shutil
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab import codecs
from optimlab.reference import is_number, math_dtype
from optimlab.rules import Rule

#: group entries that choose how torch.optim runs, or are spelled out elsewhere (betas as
#: beta1/beta2, state_dtype as the storages): not options of the kernel
NOT_OPTIONS = frozenset({"foreach", "fused", "capturable", "differentiable", "state_dtype",
                         "betas", "decoupled_weight_decay", "bias_correction"})


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

    rule: Rule
    options: tuple[tuple[str, Any], ...]
    storages: tuple[tuple[str, Any], ...]  # (moment name, its storage), in state_keys order
    scalar_names: tuple[str, ...]
    math_dtype: torch.dtype
    dtypes: tuple[torch.dtype, torch.dtype, str]  # param dtype, grad dtype, device type

    @property
    def blocked(self) -> bool:
        return any(isinstance(s, codecs.Blockwise8bit) for _, s in self.storages)


def _rule_step(spec: KernelSpec, param: Tensor, grad: Tensor, *tensors: Tensor) -> None:
    """decode -> rule -> encode, in place: the function that torch.compile turns into one
    kernel (``tensors``: the stored parts of each moment, then the scalars)."""
    stored_count = sum(len(s.parts(k)) for k, s in spec.storages)
    stored, scalars = tensors[:stored_count], tensors[stored_count:]
    hp = {**dict(spec.options), **dict(zip(spec.scalar_names, scalars, strict=True))}
    moments, parts = {}, {}
    position = 0
    for key, storage in spec.storages:
        width = len(storage.parts(key))
        parts[key] = stored[position:position + width]
        position += width
        moments[key] = (storage.decode_blocks(*parts[key]).to(spec.math_dtype)
                        if isinstance(storage, codecs.Blockwise8bit)
                        else parts[key][0].to(spec.math_dtype))
    new_param, new_moments = spec.rule.update(param.to(spec.math_dtype),
                                              grad.to(spec.math_dtype), moments, hp)
    param.copy_(new_param)
    for key, storage in spec.storages:
        if isinstance(storage, codecs.Blockwise8bit):
            codes, scale = storage.encode_blocks(new_moments[key].float())
            parts[key][0].copy_(codes)
            parts[key][1].copy_(scale)
        else:
            parts[key][0].copy_(new_moments[key])


@functools.cache
def compiled_kernel(spec: KernelSpec) -> Any:
    """The compiled kernel of ``spec``, built once per process (Inductor also caches the
    generated code on disk, so a second process compiles in about a second)."""
    step = functools.partial(_rule_step, spec)

    def kernel(*tensors: Tensor) -> None:
        step(*tensors)

    # Dynamo keeps its compiled graphs per code object and gives up after a few; a code
    # object of its own per spec keeps every configuration's kernel apart.
    name = f"optimlab_{spec.rule.name}_kernel_{abs(hash(spec)) % 10**8}"
    code = kernel.__code__.replace(co_name=name, co_qualname=name)
    unique = types.FunctionType(code, kernel.__globals__, name, None, kernel.__closure__)
    return torch.compile(unique, fullgraph=True)


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


def kernel_options(numbers: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The group's options that select a variant of the equation."""
    return tuple(sorted((k, v) for k, v in numbers.items()
                        if k not in NOT_OPTIONS and not is_number(v)))


def spec_for(rule: Rule, numbers: Mapping[str, Any], param: Tensor, grad: Tensor
             ) -> KernelSpec:
    """The kernel that steps ``param`` under this group's settings."""
    storages = tuple((key, codecs.storage_for(param, key, numbers.get("state_dtype")))
                     for key in rule.state_keys(numbers))
    scalars = {**numbers, **rule.step_scalars(numbers, 1.0)}
    names = tuple(sorted(k for k, v in scalars.items() if k not in NOT_OPTIONS
                         and is_number(v)))
    mdtype = torch.promote_types(math_dtype(param, numbers), torch.float32)
    return KernelSpec(rule, kernel_options(numbers), storages, names, mdtype,
                      (param.dtype, grad.dtype, param.device.type))


@dataclass
class Scalars:
    """0-d tensors holding this step's numbers, filled in place (never re-created, so that
    the kernel sees the same inputs and never recompiles), once per step and step count."""

    tensors: dict[tuple[KernelSpec, torch.device], list[Tensor]] = field(default_factory=dict)
    filled: dict[tuple[KernelSpec, torch.device], tuple[object, float]] = field(
        default_factory=dict)

    def get(self, spec: KernelSpec, numbers: Mapping[str, Any], step: float,
            device: torch.device, token: object) -> list[Tensor]:
        """The scalars for ``step``; ``token`` names the optimizer step being taken."""
        slot = self.tensors.get((spec, device))
        if slot is None:
            # fp64, as torch.optim's Python floats: 1 − β computed in fp32 from β = 0.9999
            # would be 1.6e-4 off; each scalar is rounded only where it meets a tensor
            slot = self.tensors[spec, device] = [
                torch.zeros((), dtype=torch.float64, device=device)
                for _ in spec.scalar_names]
        if self.filled.get((spec, device)) != (token, step):
            values = {**numbers, **spec.rule.step_scalars(numbers, step)}
            for tensor, name in zip(slot, spec.scalar_names, strict=True):
                tensor.fill_(values[name])
            self.filled[spec, device] = (token, step)
        return slot
