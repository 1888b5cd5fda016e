"""A built kernel as Python calls it: pointer tables, the numbers, the thread count.

A :class:`Kernel` steps any number of tensors of one configuration in one C call.
:meth:`Kernel.bind` checks a group's params and stored state once and keeps their
pointers; the :class:`Bound` it returns is then called once per step with the gradients
and the numbers, and reads only the gradients' pointers (they change every step when
``zero_grad`` sets them to None).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from optimlab.ckernel.templates import BLOCK, STORAGES

#: the dtype each storage keeps its elements in (8-bit: the codes; their scales are fp32)
STORED_DTYPES: dict[str, tuple[torch.dtype, ...]] = {
    "f32": (torch.float32,), "f64": (torch.float64,), "bf16": (torch.bfloat16,),
    "f16": (torch.float16,), "s8": (torch.int8,), "u8": (torch.uint8,),
    "raw8": (torch.int8, torch.uint8)}


@dataclass(frozen=True)
class Configuration:
    """What one generated kernel is specialised to."""

    state_keys: tuple[str, ...]
    storages: tuple[str, ...]  # STORAGES names, one per state key
    param: str  # STORAGES name of the param's dtype
    grad: str
    numbers: tuple[str, ...]


class Kernel:
    """A built kernel: ``kernel(params, grads, stored, numbers)`` steps them all, in place.

    ``stored[i]`` lists param i's stored tensors: each state key's parts in order (the
    tensor for a float storage; the codes, then the block scales for 8-bit). ``numbers``
    maps each of ``configuration.numbers`` to a float (or 0-d tensor).
    """

    def __init__(self, configuration: Configuration, path: Path, library: ctypes.CDLL,
                 divides: int, roots: int) -> None:
        self.configuration = configuration
        self.path = path  # the shared library; its C source is beside it (.c)
        self.divides, self.roots = divides, roots  # per element, from the generator
        self.function = library.optimlab_step
        self.function.restype = ctypes.c_int
        self.function.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p),
                                  ctypes.POINTER(ctypes.c_int64),
                                  ctypes.POINTER(ctypes.c_double), ctypes.c_int]
        self._team = ctypes.c_int.in_dll(library, "optimlab_last_team")
        self._elements = (ctypes.c_int64 * 1024).in_dll(library, "optimlab_team_elements")
        self._last: Bound | None = None

    @property
    def last_team(self) -> int:
        """How many threads the last call ran on."""
        return self._team.value

    @property
    def last_split(self) -> list[int]:
        """How many elements each thread of the last call stepped."""
        return list(self._elements[:self._team.value])

    def bind(self, params: Sequence[Tensor], stored: Sequence[Sequence[Tensor]]) -> Bound:
        """Check ``params`` and ``stored`` once and keep their pointers."""
        return Bound(self, params, stored)

    def __call__(self, params: Sequence[Tensor], grads: Sequence[Tensor],
                 stored: Sequence[Sequence[Tensor]], numbers: Mapping[str, Any]) -> None:
        """One step of every param (the binding is kept while the same tensors come)."""
        last = self._last
        if last is None or not last.holds(params, stored):
            last = self._last = self.bind(params, stored)
        last(grads, numbers)


class Bound:
    """A kernel bound to a group's params and stored state; called with each step's
    gradients and numbers."""

    def __init__(self, kernel: Kernel, params: Sequence[Tensor],
                 stored: Sequence[Sequence[Tensor]]) -> None:
        config = kernel.configuration
        if len(stored) != len(params):
            raise ValueError(f"stored has {len(stored)} entries for {len(params)} params; "
                             "give one list of stored tensors per param")
        self.kernel, self.params = kernel, list(params)
        self.stored = [list(parts) for parts in stored]
        self.count = count = len(self.params)
        sizes = [_check_param(i, p, config.param) for i, p in enumerate(self.params)]
        self.sizes = sizes
        columns: list[list[int]] = [[p.data_ptr() for p in self.params], [0] * count]
        position = 0
        for key, storage in zip(config.state_keys, config.storages, strict=True):
            columns.extend(_stored_columns(self.stored, position, key, storage, sizes))
            position += STORAGES[storage].parts
        for i, parts in enumerate(self.stored):
            if len(parts) != position:
                raise ValueError(f"stored[{i}] has {len(parts)} tensors; the states "
                                 f"{list(config.state_keys)} stored as "
                                 f"{list(config.storages)} have {position}")
        roles = len(columns)
        self._ptrs = (ctypes.c_void_p * max(roles * count, 1))()
        for role, column in enumerate(columns):
            self._ptrs[role * count:(role + 1) * count] = column
        offsets = [0]
        for size in sizes:
            offsets.append(offsets[-1] + size)
        self._offsets = (ctypes.c_int64 * (count + 1))(*offsets)
        self._numbers = (ctypes.c_double * max(len(config.numbers), 1))()
        self._param_ptrs = columns[0]
        self._grad_dtype = _DTYPES[config.grad]

    def holds(self, params: Sequence[Tensor], stored: Sequence[Sequence[Tensor]]) -> bool:
        """Whether this binding is of these very tensors, their storage unmoved."""
        return len(params) == self.count == len(stored) and all(
            a is b for a, b in zip(params, self.params, strict=True)) and all(
            len(x) == len(y) and all(a is b for a, b in zip(x, y, strict=True))
            for x, y in zip(stored, self.stored, strict=True)) and self.intact()

    def intact(self) -> bool:
        """False if a param's storage was replaced since (``p.data = ...``)."""
        return [p.data_ptr() for p in self.params] == self._param_ptrs

    def __call__(self, grads: Sequence[Tensor], numbers: Mapping[str, Any]) -> None:
        """One step: ``grads[i]`` is params[i]'s gradient (contiguous, its dtype, on the
        CPU); ``numbers`` has every name of the kernel's configuration."""
        count = self.count
        if len(grads) != count:
            raise ValueError(f"{len(grads)} gradients for {count} params")
        self._call(self._grad_pointers(grads), numbers)

    def _call(self, grad_pointers: list[int], numbers: Mapping[str, Any]) -> None:
        count = self.count
        self._ptrs[count:2 * count] = grad_pointers
        names = self.kernel.configuration.numbers
        try:
            self._numbers[:len(names)] = [float(numbers[name]) for name in names]
        except KeyError as missing:
            raise KeyError(f"numbers lacks {missing}; the kernel needs {list(names)}") from None
        self.kernel.function(count, self._ptrs, self._offsets, self._numbers,
                             torch.get_num_threads())

    def step(self, numbers: Mapping[str, Any]) -> None:
        """One step with each bound param's ``.grad``. torch keeps a ``.grad`` of its
        param's dtype, size and device (autograd makes it so, and assigning another is
        refused), so only its layout is checked here: the cheapest call per step."""
        grads = [p.grad for p in self.params]
        try:
            if all(g.is_contiguous() for g in grads):
                self._call([g.data_ptr() for g in grads], numbers)
                return
        except (AttributeError, RuntimeError, NotImplementedError):  # None or sparse
            pass
        self(grads, numbers)

    def _grad_pointers(self, grads: Sequence[Tensor]) -> list[int]:
        """The gradients' pointers, once each is checked to be what the kernel reads (the
        checks cost most of the Python time of a step: one pass, cheapest first)."""
        dtype, sizes = self._grad_dtype, self.sizes
        try:
            if all(g.dtype is dtype and g.is_cpu and g.is_contiguous() and g.numel() == n
                   for g, n in zip(grads, sizes, strict=True)):
                return [g.data_ptr() for g in grads]
        except (AttributeError, RuntimeError, NotImplementedError):  # not dense tensors
            pass
        for i, (grad, size) in enumerate(zip(grads, sizes, strict=True)):
            _check_tensor(f"grads[{i}]", grad, (dtype,), size)
        raise AssertionError("unreachable: a gradient failed the check above")


_DTYPES = {"f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16,
           "f16": torch.float16}


def _describe(tensor: Any) -> str:
    if not isinstance(tensor, Tensor):
        return repr(type(tensor).__name__)
    layout = "sparse" if tensor.is_sparse else "contiguous" if tensor.is_contiguous() \
        else "non-contiguous"
    return f"{tensor.dtype}, {tensor.numel()} elements, {layout}, on {tensor.device}"


def _check_tensor(name: str, tensor: Any, dtypes: tuple[torch.dtype, ...], numel: int) -> int:
    if not isinstance(tensor, Tensor) or tensor.dtype not in dtypes or tensor.is_sparse or \
            not tensor.is_contiguous() or tensor.device.type != "cpu" or \
            (numel >= 0 and tensor.numel() != numel):
        size = f" with {numel} elements" if numel >= 0 else ""
        raise ValueError(f"{name} must be a dense contiguous CPU tensor of "
                         f"{' or '.join(map(str, dtypes))}{size}; got {_describe(tensor)}")
    return tensor.numel()


def _check_param(index: int, param: Any, storage: str) -> int:
    return _check_tensor(f"params[{index}]", param, (_DTYPES[storage],), -1)


def _stored_columns(stored: list[list[Tensor]], position: int, key: str, storage: str,
                    sizes: list[int]) -> list[list[int]]:
    """The pointer columns of one state key (its parts start at ``position`` in each
    param's list): its array, and its block scales if 8-bit."""
    kind = STORAGES[storage]
    columns: list[list[int]] = [[] for _ in range(kind.parts)]
    for i, parts in enumerate(stored):
        if len(parts) <= position + kind.parts - 1:
            raise ValueError(f"stored[{i}] has {len(parts)} tensors; state {key!r} "
                             f"({storage}) needs parts {position}..{position + kind.parts - 1}")
        columns[0].append(parts[position].data_ptr())
        _check_tensor(f"stored[{i}][{position}] ({key!r})", parts[position],
                      STORED_DTYPES[storage], sizes[i])
        if kind.blocked:
            scales = parts[position + 1]
            _check_tensor(f"stored[{i}][{position + 1}] ({key!r} block scales)", scales,
                          (torch.float32,), math.ceil(sizes[i] / BLOCK))
            columns[1].append(scales.data_ptr())
    return columns
