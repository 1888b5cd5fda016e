"""State codecs: how a moment is stored. decode -> rule -> encode, the rule never knows.

A codec turns the stored form of one moment (``exp_avg``, ``sum``, ...) into the numbers
the rule computes with, and the rule's new numbers back into the stored form. Two forms:

* :class:`FloatStorage` — the moment as a float tensor of the param's shape (fp32, fp64,
  bf16, fp16): decoding is a cast up, encoding a cast down (round to nearest).
* :class:`Blockwise8bit` — the moment in 8 bits per element, ``state[key + "_codes"]``
  (int8 for signed moments, uint8 for non-negative ones, the param's shape), plus one fp32
  scale per block of ``BLOCK`` consecutive elements, ``state[key + "_absmax"]``, the
  block's largest magnitude s. The moment's own name (``exp_avg``) is absent, so that
  torch.optim refuses such a state dict (KeyError on its first step) instead of reading
  codes as moments; ``optimlab.porting.to_torch_state_dict`` decodes one. Each element is
  companded before rounding, so that small values keep resolution beside a large one (the
  "dynamic" part of dynamic quantisation):

      signed:        c = round(127 · sign(x) · √(|x| / s))      x = s · sign(c) · (c / 127)²
      non-negative:  c = round(255 · (x / s)^¼)                  x = s · (c / 255)⁴

  The second moment enters the step through √v, so (x / s)^¼ spaces the codes of √v
  evenly, the way the first moment's are. On moments spanning several decades: 0.74%
  relative error for the first moment and 0.37% for √v with blocks of 256; 64 gives
  0.62% but 2.125 bytes/param, 1024 gives 0.83% for 2.008; the step time does not
  depend on it (benchmarks/block_size.py, benchmarks/README.md).

Tensors with fewer than ``SMALL_TENSOR`` elements (biases, norms) keep their moments in
the param's dtype whatever ``state_dtype`` asks: they cost nothing and are the most
sensitive.

Every storage has one interface (``Storage``), so that no engine asks which one it has:
``create``/``holds``/``decode``/``encode_into`` over a moment's stored parts, and for
kernels over flat buffers, ``block`` (the elements that share a stored scale: a kernel
takes whole blocks), ``kernel_views``, ``kernel_decode``/``kernel_encode`` (pure tensor
math that torch.compile traces) and ``tail`` (the parts of a last, partial block).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

BLOCK = 256
SMALL_TENSOR = 4096
CODES_SUFFIX = "_codes"
ABSMAX_SUFFIX = "_absmax"
#: optimlab 0.1 kept 8-bit codes under the moment's own name and scales under "_scale";
#: such checkpoints still load (``stored_form``)
LEGACY_SCALE_SUFFIX = "_scale"
#: the moments that are >= 0 by construction
NONNEGATIVE_MOMENTS = frozenset({"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"})
#: the dtypes ``state_dtype`` may name; int8 selects the 8-bit blockwise codec
NARROW_DTYPES = (torch.bfloat16, torch.float16, torch.int8)


class Storage(Protocol):
    """How one moment is stored; see the module docstring."""

    block: int
    kind: str
    compute_dtype: torch.dtype

    def parts(self, key: str) -> tuple[str, ...]: ...
    def create(self, param: Tensor, key: str, fill: float) -> dict[str, Tensor]: ...
    def holds(self, state: Mapping[str, Tensor], key: str) -> bool: ...
    def decode(self, stored: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor: ...
    def encode(self, value: Tensor) -> tuple[Tensor, ...]: ...
    def encode_into(self, stored: tuple[Tensor, ...], value: Tensor) -> None: ...
    def kernel_views(self, stored: tuple[Tensor, ...], block: int) -> tuple[Tensor, ...]: ...
    def kernel_decode(self, views: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor: ...
    def kernel_encode(self, views: tuple[Tensor, ...], value: Tensor) -> None: ...
    def tail(self, stored: tuple[Tensor, ...], whole: int) -> tuple[Tensor, ...]: ...


def _real(tensor: Tensor) -> Tensor:
    """Complex numbers as (re, im) pairs, the form the rules compute with."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def whole_blocks(tensor: Tensor, block: int) -> Tensor:
    """A flat view of ``tensor``; for ``block`` > 1, its whole blocks shaped (n, block)."""
    if block == 1:
        return tensor.view(-1)
    whole = tensor.numel() // block * block
    return tensor.view(-1)[:whole].view(-1, block)


@dataclass(frozen=True)
class FloatStorage:
    """A moment kept as a float tensor of ``dtype``."""

    dtype: torch.dtype
    block = 1

    @property
    def kind(self) -> str:
        """The storage's name in kernels' loop templates: f32, f64, bf16, f16 (else the
        dtype's own name, e.g. complex64, which no C template keeps)."""
        names = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16",
                 torch.float16: "f16"}
        return names.get(self.dtype, str(self.dtype).removeprefix("torch."))

    @property
    def compute_dtype(self) -> torch.dtype:
        """The least precision the rule computes this moment in."""
        return self.dtype.to_real() if self.dtype.is_complex else self.dtype

    def parts(self, key: str) -> tuple[str, ...]:
        return (key,)

    def create(self, param: Tensor, key: str, fill: float) -> dict[str, Tensor]:
        value = complex(fill, fill) if param.is_complex() else fill
        return {key: torch.full_like(param, value, dtype=self.dtype)}

    def holds(self, state: Mapping[str, Tensor], key: str) -> bool:
        """True if ``state`` already holds ``key`` in this form."""
        value = state.get(key)
        return value is not None and value.dtype == self.dtype and \
            stored_form(state, key) == self

    def decode(self, stored: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor:
        return _real(stored[0]).to(dtype)

    def encode(self, value: Tensor) -> tuple[Tensor, ...]:
        """The stored parts of ``value`` (new tensors)."""
        return (value.to(self.dtype),)

    def encode_into(self, stored: tuple[Tensor, ...], value: Tensor) -> None:
        _real(stored[0]).copy_(value)

    def kernel_views(self, stored: tuple[Tensor, ...], block: int) -> tuple[Tensor, ...]:
        return (whole_blocks(stored[0], block),)

    def kernel_decode(self, views: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor:
        return views[0].to(dtype)

    def kernel_encode(self, views: tuple[Tensor, ...], value: Tensor) -> None:
        views[0].copy_(value)

    def tail(self, stored: tuple[Tensor, ...], whole: int) -> tuple[Tensor, ...]:
        return (stored[0].view(-1)[whole:],)


@dataclass(frozen=True)
class Blockwise8bit:
    """A moment kept as 8-bit companded codes with one fp32 absmax scale per block."""

    signed: bool
    block = BLOCK

    @property
    def kind(self) -> str:
        return "s8" if self.signed else "u8"

    compute_dtype = torch.float32

    @property
    def code_dtype(self) -> torch.dtype:
        return torch.int8 if self.signed else torch.uint8

    def parts(self, key: str) -> tuple[str, ...]:
        return (key + CODES_SUFFIX, key + ABSMAX_SUFFIX)

    def create(self, param: Tensor, key: str, fill: float) -> dict[str, Tensor]:
        value = torch.full((param.numel(),), fill, dtype=torch.float32, device=param.device)
        codes, scale = self.encode(value)
        return dict(zip(self.parts(key), (codes.view(param.shape), scale), strict=True))

    def holds(self, state: Mapping[str, Tensor], key: str) -> bool:
        return stored_form(state, key) == self and key not in state

    def decode(self, stored: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor:
        """The moment, in the shape of its codes; any number of elements."""
        codes, scale = stored
        return unpad(self.decode_blocks(blocks(codes), scale.view(-1, 1)),
                     codes.shape).to(dtype)

    def encode(self, value: Tensor) -> tuple[Tensor, Tensor]:
        """(codes in the shape of ``value``, one scale per block)."""
        codes, scale = self.encode_blocks(blocks(value.float()))
        return unpad(codes, value.shape), scale.view(-1)

    def encode_into(self, stored: tuple[Tensor, ...], value: Tensor) -> None:
        for target, part in zip(stored, self.encode(value), strict=True):
            target.copy_(part.view(target.shape))

    def kernel_views(self, stored: tuple[Tensor, ...], block: int) -> tuple[Tensor, ...]:
        codes, scale = stored
        view = whole_blocks(codes, self.block)
        return view, scale[:view.shape[0]].view(-1, 1)

    def kernel_decode(self, views: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor:
        return self.decode_blocks(*views).to(dtype)

    def kernel_encode(self, views: tuple[Tensor, ...], value: Tensor) -> None:
        codes, scale = self.encode_blocks(value.float())
        views[0].copy_(codes)
        views[1].copy_(scale)

    def tail(self, stored: tuple[Tensor, ...], whole: int) -> tuple[Tensor, ...]:
        codes, scale = stored
        return codes.view(-1)[whole:], scale[whole // self.block:]

    def decode_blocks(self, codes: Tensor, scale: Tensor) -> Tensor:
        """x from codes shaped (blocks, BLOCK) and scales shaped (blocks, 1)."""
        c = codes.to(torch.float32)
        if self.signed:
            return c * c.abs() * (scale * (1 / 127**2))
        c2 = c * c
        return c2 * c2 * (scale * (1 / 255**4))

    def encode_blocks(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(codes, scales) of x shaped (blocks, BLOCK); a block of zeros has scale 0."""
        if self.signed:
            scale = x.abs().amax(dim=1, keepdim=True)
            unit = x * (1 / torch.where(scale > 0, scale, 1.0))
            codes = torch.round(127 * torch.sign(unit) * torch.sqrt(unit.abs()))
        else:
            scale = x.amax(dim=1, keepdim=True)
            unit = x * (1 / torch.where(scale > 0, scale, 1.0))
            codes = torch.round(255 * torch.sqrt(torch.sqrt(unit)))
        return codes.to(self.code_dtype), scale


def blocks(tensor: Tensor) -> Tensor:
    """``tensor`` flattened and zero-padded to whole blocks, shaped (blocks, BLOCK)."""
    flat = tensor.reshape(-1)
    return F.pad(flat, (0, -flat.numel() % BLOCK)).view(-1, BLOCK)


def unpad(blocked: Tensor, shape: torch.Size) -> Tensor:
    return blocked.reshape(-1)[:shape.numel()].view(shape)


def storage_for(param: Tensor, key: str, state_dtype: torch.dtype | None) -> Storage:
    """How the moment ``key`` of ``param`` is kept, given the group's ``state_dtype``.

    None: the param's dtype (as torch). A narrower dtype (bf16, fp16, int8) applies to
    tensors of at least ``SMALL_TENSOR`` elements only; smaller ones keep the param's.
    """
    if state_dtype is None or param.is_complex():
        return FloatStorage(param.dtype)
    if state_dtype in NARROW_DTYPES and param.numel() < SMALL_TENSOR:
        return FloatStorage(param.dtype)
    if state_dtype == torch.int8:
        return Blockwise8bit(signed=key not in NONNEGATIVE_MOMENTS)
    return FloatStorage(state_dtype)


@dataclass(frozen=True)
class _Legacy8bit(Blockwise8bit):
    """optimlab 0.1's 8-bit layout (codes under the moment's name), read on load only."""

    def parts(self, key: str) -> tuple[str, ...]:
        return (key, key + LEGACY_SCALE_SUFFIX)


def stored_form(state: Mapping[str, Tensor], key: str) -> Storage | None:
    """The storage that ``state`` holds ``key`` in, or None if it does not hold it."""
    codes = state.get(key + CODES_SUFFIX)
    if codes is not None and key + ABSMAX_SUFFIX in state:
        return Blockwise8bit(signed=codes.dtype == torch.int8)
    value = state.get(key)
    if not isinstance(value, Tensor):
        return None
    if value.dtype in (torch.int8, torch.uint8) and key + LEGACY_SCALE_SUFFIX in state:
        return _Legacy8bit(signed=value.dtype == torch.int8)
    real = value.real.dtype if value.is_complex() else value.dtype
    return FloatStorage(value.dtype) if real.is_floating_point else None


def stored_parts(state: Mapping[str, Tensor], key: str,
                 storage: Storage | None = None) -> tuple[Tensor, ...]:
    """The stored tensors of ``key`` in ``state`` (in ``storage``'s form, or its own)."""
    storage = storage or stored_form(state, key)
    if storage is None:
        raise KeyError(key)
    return tuple(state[name] for name in storage.parts(key))


def decoded(state: Mapping[str, Tensor], key: str, dtype: torch.dtype) -> Tensor:
    """The moment ``key`` as numbers of ``dtype``, whatever form it is stored in (complex
    moments as complex tensors)."""
    storage = stored_form(state, key)
    if storage is None:
        raise KeyError(key)
    parts = stored_parts(state, key, storage)
    if parts[0].is_complex():
        return parts[0].to(dtype)
    return storage.decode(parts, dtype)


def convert(state: dict[str, Tensor], key: str, storage: Storage, param: Tensor) -> None:
    """Re-store the moment ``key`` of ``state`` in ``storage``'s form (a checkpoint saved
    with another ``state_dtype``, by torch.optim, or by optimlab 0.1)."""
    if storage.holds(state, key):
        return
    old = stored_form(state, key)
    dtype = param.dtype if param.is_complex() else torch.promote_types(
        param.dtype, torch.float32)
    value = decoded(state, key, dtype).to(param.device).view(param.shape)
    for name in old.parts(key) if old is not None else ():
        state.pop(name, None)
    state.update(storage.create(param, key, 0.0))
    parts = stored_parts(state, key, storage)
    if value.is_complex():
        parts[0].copy_(value)
    else:
        storage.encode_into(parts, value)
