"""State codecs: how a moment is stored. decode -> rule -> encode, the rule never knows.

A codec turns the stored form of one moment (``exp_avg``, ``sum``, ...) into the numbers
the rule computes with, and the rule's new numbers back into the stored form. Two forms:

* :class:`FloatStorage` — the moment as a float tensor of the param's shape (fp32, fp64,
  bf16, fp16): decoding is a cast up, encoding a cast down (round to nearest).
* :class:`Blockwise8bit` — the moment in 8 bits per element, ``state[key]`` (int8 for
  signed moments, uint8 for non-negative ones, the param's shape), plus one fp32 scale per
  block of ``BLOCK`` consecutive elements, ``state[key + "_scale"]``, the block's largest
  magnitude s. Each element is companded before rounding, so that small values keep
  resolution beside a large one (the "dynamic" part of dynamic quantisation):

      signed:        c = round(127 · sign(x) · √(|x| / s))      x = s · sign(c) · (c / 127)²
      non-negative:  c = round(255 · (x / s)^¼)                  x = s · (c / 255)⁴

  The second moment enters the step through √v, so (x / s)^¼ spaces the codes of √v
  evenly, the way the first moment's are. On moments spanning several decades: 0.74%
  relative error for the first moment and 0.37% for √v with blocks of 256; 64 gives
  0.62% but 2.125 bytes/param, 1024 gives 0.83% for 2.008; the step time does not
  depend on it (benchmarks/block_size.py, benchmarks/README.md).

Tensors with fewer than ``SMALL_TENSOR`` elements (biases, norms) keep their moments in
the param's dtype whatever ``state_dtype`` asks: they cost nothing and are the most
sensitive. The functions below are pure tensor math, so the reference engine runs them
eagerly and the compiled engine traces them into its kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

BLOCK = 256
SMALL_TENSOR = 4096
SCALE_SUFFIX = "_scale"
#: the moments that are >= 0 by construction
NONNEGATIVE_MOMENTS = frozenset({"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"})
#: the dtypes ``state_dtype`` may name; int8 selects the 8-bit blockwise codec
NARROW_DTYPES = (torch.bfloat16, torch.float16, torch.int8)


@dataclass(frozen=True)
class FloatStorage:
    """A moment kept as a float tensor of ``dtype``."""

    dtype: torch.dtype

    def parts(self, key: str) -> tuple[str, ...]:
        return (key,)

    def create(self, param: Tensor, key: str, fill: float) -> dict[str, Tensor]:
        value = complex(fill, fill) if param.is_complex() else fill
        return {key: torch.full_like(param, value, dtype=self.dtype)}

    def holds(self, state: Mapping[str, Tensor], key: str) -> bool:
        """True if ``state`` already holds ``key`` in this form."""
        return key in state and state[key].dtype == self.dtype and \
            key + SCALE_SUFFIX not in state

    def decode(self, stored: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor:
        return stored[0].to(dtype)

    def encode(self, value: Tensor) -> tuple[Tensor, ...]:
        return (value.to(self.dtype),)


@dataclass(frozen=True)
class Blockwise8bit:
    """A moment kept as 8-bit companded codes with one fp32 absmax scale per block."""

    signed: bool

    @property
    def code_dtype(self) -> torch.dtype:
        return torch.int8 if self.signed else torch.uint8

    def parts(self, key: str) -> tuple[str, ...]:
        return (key, key + SCALE_SUFFIX)

    def create(self, param: Tensor, key: str, fill: float) -> dict[str, Tensor]:
        value = torch.full((param.numel(),), fill, dtype=torch.float32, device=param.device)
        codes, scale = self.encode(value)
        return {key: codes.view(param.shape), key + SCALE_SUFFIX: scale}

    def holds(self, state: Mapping[str, Tensor], key: str) -> bool:
        scale = state.get(key + SCALE_SUFFIX)
        return key in state and state[key].dtype == self.code_dtype and scale is not None \
            and scale.dtype == torch.float32

    def decode(self, stored: tuple[Tensor, ...], dtype: torch.dtype) -> Tensor:
        """The moment, in the shape of its codes; any number of elements."""
        codes, scale = stored
        return unpad(self.decode_blocks(blocks(codes), scale.view(-1, 1)),
                     codes.shape).to(dtype)

    def encode(self, value: Tensor) -> tuple[Tensor, ...]:
        """(codes in the shape of ``value``, one scale per block)."""
        codes, scale = self.encode_blocks(blocks(value.float()))
        return unpad(codes, value.shape), scale.view(-1)

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


def storage_for(param: Tensor, key: str, state_dtype: torch.dtype | None) -> (
        FloatStorage | Blockwise8bit):
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


def stored_parts(state: Mapping[str, Tensor], key: str) -> tuple[Tensor, ...]:
    """The stored tensors of ``key`` in ``state``, whatever their form."""
    scale = state.get(key + SCALE_SUFFIX)
    return (state[key],) if scale is None else (state[key], scale)


def decoded(state: Mapping[str, Tensor], key: str, dtype: torch.dtype) -> Tensor:
    """The moment ``key`` as numbers of ``dtype``, whatever form it is stored in."""
    parts = stored_parts(state, key)
    if len(parts) == 1:
        return parts[0].to(dtype)
    codes = parts[0]
    return Blockwise8bit(signed=codes.dtype == torch.int8).decode(parts, dtype)


def convert(state: dict[str, Tensor], key: str, storage: FloatStorage | Blockwise8bit,
            param: Tensor) -> None:
    """Re-store the moment ``key`` of ``state`` in ``storage``'s form (a checkpoint saved
    with another ``state_dtype``, or by torch.optim)."""
    if storage.holds(state, key):
        return
    dtype = param.dtype if param.is_complex() else torch.promote_types(
        param.dtype, torch.float32)
    value = decoded(state, key, dtype)
    state.pop(key + SCALE_SUFFIX, None)
    for name, tensor in zip(storage.parts(key), storage.encode(value), strict=True):
        state[name] = tensor
