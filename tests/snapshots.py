"""Bitwise snapshots of params and optimizer state, for tests that claim "nothing changed"
or "exactly equal"."""

from __future__ import annotations

import copy
from typing import Any

import torch


def snapshot(params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> Any:
    """A deep copy of the params' values, the optimizer's state and its group settings."""
    state_dict = optimizer.state_dict()
    groups = [{k: v for k, v in g.items() if k != "skipped_steps"}
              for g in state_dict["param_groups"]]
    return copy.deepcopy(([p.detach() for p in params], state_dict["state"], groups))


def bitwise_equal(a: Any, b: Any) -> bool:
    """Equal structure, equal Python values, tensors equal bit for bit (NaN == NaN)."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(_bits(a), _bits(b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(bitwise_equal(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(bitwise_equal(x, y) for x, y in zip(a, b, strict=True)))
    return a == b


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as integers, so that NaNs and signed zeros compare exactly."""
    tensor = tensor.detach().contiguous()
    if tensor.is_complex():
        tensor = torch.view_as_real(tensor)
    if tensor.is_floating_point():
        return tensor.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()])
    return tensor
